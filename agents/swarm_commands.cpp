// The command tables of the three ctl files: root ctl, agents/NAME/ctl and
// conv/N/ctl. One row per command; run_commands() does the parsing.
#include <climits>
#include <cstdint>

#include "agents/swarm.h"

namespace swarmfs {

using json = nlohmann::json;

namespace {
// "spawn NAME {json}" or "spawn NAME key=value ...".
Result<json> spawn_config(const std::vector<std::string>& words, const std::string& rest) {
    std::string_view tail = trim(std::string_view(rest).substr(words[0].size()));
    if (tail.empty()) return json();  // null: the swarm's defaults
    if (tail.front() == '{') {
        json j = json::parse(tail, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            return make_error(EINVAL, "spawn: the config is not a valid JSON object");
        return j;
    }
    json j = json::object();
    for (size_t i = 1; i < words.size(); ++i) {
        auto eq = words[i].find('=');
        if (eq == std::string::npos || eq == 0)
            return make_error(EINVAL, "spawn: expected key=value, got \"" + words[i] + "\"");
        std::string key = words[i].substr(0, eq), value = words[i].substr(eq + 1);
        json v = json::parse(value, nullptr, false);
        if (v.is_discarded()) v = value;
        if (key == "exec" && v.is_string()) v = split_words(v.get<std::string>());
        j[key] = v;
    }
    return j;
}
}  // namespace

CommandTable Swarm::swarm_commands() {
    return {
        {"spawn", "spawn NAME [JSON | key=value ...]", 1, SIZE_MAX,
         [this](const CommandArgs& a) -> Status {
             auto cfg = spawn_config(a.words, a.rest);
             if (!cfg) return cfg.error();
             if (cfg->is_null()) return create_agent(a.words[0]);
             return create_agent(a.words[0], *cfg);
         }},
        {"kill", "kill NAME", 1, 1,
         [this](const CommandArgs& a) { return remove_agent(a.words[0], true); }},
    };
}

CommandTable Swarm::agent_commands(const std::string& name) {
    auto set_run_state = [this, name](const char* command) -> Status {
        std::lock_guard dl(declare_mu_);
        if (!has_agent(name)) return make_error(ENOENT, "no agent " + name);
        return commit("agent_ctl", {{"agent", name}, {"command", command}});
    };
    auto stop = [this, name, set_run_state]() -> Status {
        if (auto s = set_run_state("stop"); !s) return s;
        std::lock_guard lk(mu_);
        if (Agent* a = find_agent(name)) cancel_turn(*a, "stopped by ctl");
        return {};
    };
    return {
        {"stop", "stop", 0, 0, [stop](const CommandArgs&) { return stop(); }},
        {"start", "start", 0, 0, [set_run_state](const CommandArgs&) { return set_run_state("start"); }},
        {"restart", "restart", 0, 0,
         [stop, set_run_state](const CommandArgs&) -> Status {
             if (auto s = stop(); !s) return s;
             return set_run_state("start");
         }},
    };
}

CommandTable Swarm::conv_commands(int64_t id) {
    return {
        {"agent", "agent NAME", 1, 1,
         [this, id](const CommandArgs& a) -> Status {
             std::lock_guard dl(declare_mu_);
             if (!has_agent(a.words[0])) return make_error(ENOENT, "no agent " + a.words[0]);
             return commit("conv_routed", {{"conv", id}, {"agent", a.words[0]}});
         }},
        {"close", "close", 0, 0,
         [this, id](const CommandArgs&) { return commit("conv_closed", {{"conv", id}}); }},
    };
}

}  // namespace swarmfs
