#include "agents/tools/tool.h"

namespace swarmfs {

nlohmann::json spec_json(const ToolSpec& spec) {
    return {
        {"name", spec.name}, {"description", spec.description}, {"parameters", spec.parameters}};
}

nlohmann::json openai_tool_json(const ToolSpec& spec) {
    return {{"type", "function"}, {"function", spec_json(spec)}};
}

Result<nlohmann::json> parse_tool_arguments(std::string_view text) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
        return nlohmann::json::object();
    try {
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::parse_error& e) {
        std::string what = e.what();
        auto pos = what.find("parse error");
        return make_error(EINVAL, "arguments are not valid JSON: " +
                                      (pos == std::string::npos ? what : what.substr(pos)));
    }
}

bool valid_tool_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char ch : name) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace swarmfs
