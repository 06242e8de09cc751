#include "agents/command_table.h"

#include <cstdint>

namespace swarmfs {

std::string_view trim(std::string_view s) {
    while (!s.empty() && isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::vector<std::string> split_words(std::string_view s) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
        size_t j = i;
        while (j < s.size() && !isspace(static_cast<unsigned char>(s[j]))) ++j;
        if (j > i) out.emplace_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

static Status run_line(const CommandTable& table, std::string_view line) {
    auto words = split_words(line);
    const std::string& name = words[0];
    for (const auto& cmd : table) {
        if (cmd.name != name) continue;
        CommandArgs args;
        args.words.assign(words.begin() + 1, words.end());
        std::string_view rest = trim(line);
        rest.remove_prefix(name.size());
        args.rest = std::string(trim(rest));
        if (args.words.size() < cmd.min_args || args.words.size() > cmd.max_args)
            return make_error(EINVAL, "usage: " + cmd.usage);
        return cmd.run(args);
    }
    std::string known;
    for (const auto& cmd : table) known += (known.empty() ? "" : ", ") + cmd.name;
    return make_error(EINVAL, "unknown command \"" + name + "\" (commands: " + known + ")");
}

Status run_commands(const CommandTable& table, std::string_view text) {
    size_t start = 0;
    bool any = false;
    while (start <= text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = trim(text.substr(start, end - start));
        if (!line.empty() && line.front() != '#') {
            any = true;
            if (auto s = run_line(table, line); !s) return s;
        }
        start = end + 1;
    }
    if (!any) return make_error(EINVAL, "empty command");
    return {};
}

}  // namespace swarmfs
