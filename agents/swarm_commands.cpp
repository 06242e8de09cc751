// The command tables of the three ctl files: root ctl, agents/NAME/ctl and
// conv/N/ctl. One row per command; run_commands() does the parsing.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <thread>

#include "agents/swarm.h"

namespace swarmfs {

using json = nlohmann::json;

namespace {
// One value of key=value: a "quoted string", a JSON array or object (which
// may contain spaces), or a bare word taken as JSON if it parses (numbers,
// true) and as a string otherwise.
Result<json> take_value(std::string_view& in) {
    if (in.empty()) return json("");
    if (in.front() == '"' || in.front() == '[' || in.front() == '{') {
        int depth = 0;
        bool quoted = false;
        for (size_t i = 0; i < in.size(); ++i) {
            char c = in[i];
            if (quoted) {
                if (c == '\\')
                    ++i;
                else if (c == '"')
                    quoted = false;
            } else if (c == '"') {
                quoted = true;
            } else if (c == '[' || c == '{') {
                ++depth;
            } else if (c == ']' || c == '}') {
                --depth;
            }
            if (!quoted && depth == 0) {
                json v = json::parse(in.substr(0, i + 1), nullptr, false);
                if (v.is_discarded())
                    return make_error(EINVAL,
                                      "spawn: bad value " + std::string(in.substr(0, i + 1)));
                in.remove_prefix(i + 1);
                return v;
            }
        }
        return make_error(EINVAL, "spawn: unterminated value " + std::string(in));
    }
    size_t end = 0;
    while (end < in.size() && !isspace(static_cast<unsigned char>(in[end]))) ++end;
    std::string word(in.substr(0, end));
    in.remove_prefix(end);
    json v = json::parse(word, nullptr, false);
    return v.is_discarded() ? json(word) : v;
}

// "spawn NAME", "spawn NAME {json}" or "spawn NAME key=value ...".
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
    while (!(tail = trim(tail)).empty()) {
        size_t eq = tail.find('=');
        size_t space = tail.find_first_of(" \t");
        if (eq == std::string_view::npos || eq == 0 ||
            (space != std::string_view::npos && space < eq))
            return make_error(EINVAL, "spawn: expected key=value, got \"" +
                                          std::string(tail.substr(0, space)) + "\"");
        std::string key(tail.substr(0, eq));
        tail.remove_prefix(eq + 1);
        auto v = take_value(tail);
        if (!v) return v.error();
        if (key == "exec" && v->is_string()) *v = split_words(v->get<std::string>());
        j[key] = *v;
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
        // Granting is the owner's alone: an agent's own ctl can only pledge.
        {"grant", "grant NAME CAPABILITY ...", 2, SIZE_MAX,
         [this](const CommandArgs& a) -> Status {
             std::vector<std::string> caps(a.words.begin() + 1, a.words.end());
             if (auto c = CapabilitySet::from_json(json(caps)); !c)
                 return make_error(EINVAL, "grant: " + c.error().message);
             if (auto st = update_config(a.words[0],
                                         [&](AgentConfig& c) {
                                             json all = c.caps.to_json();
                                             for (auto& w : caps) all.push_back(w);
                                             if (auto set = CapabilitySet::from_json(all))
                                                 c.caps = *set;
                                         });
                 !st)
                 return st;
             // Granting what the config already grants still gives it back
             // to an agent that pledged it away.
             std::lock_guard dl(declare_mu_);
             auto ag = agent_ptr(a.words[0]);
             if (!ag) return make_error(ENOENT, "no agent " + a.words[0]);
             json held;
             UnveilMap unveil;
             {
                 std::lock_guard lk(ag->mu);
                 if (!ag->pledged) return {};
                 held = ag->caps.to_json();
                 unveil = ag->unveil;
             }
             for (auto& w : caps) held.push_back(w);
             auto set = CapabilitySet::from_json(held);
             if (!set) return set.error();
             return commit(
                 "agent_pledged",
                 {{"agent", a.words[0]}, {"caps", set->to_json()}, {"unveil", unveil.to_json()}});
         }},
        {"revoke", "revoke NAME CAPABILITY ...", 2, SIZE_MAX,
         [this](const CommandArgs& a) -> Status {
             std::vector<Capability> gone;
             for (size_t i = 1; i < a.words.size(); ++i) {
                 auto c = Capability::parse(a.words[i]);
                 if (!c) return make_error(EINVAL, "revoke: " + c.error().message);
                 gone.push_back(*c);
             }
             // A capability can come from caps, tools or handoffs: revoke
             // takes it from wherever the config granted it.
             auto held_in = [](const AgentConfig& c, const Capability& g) {
                 auto& e = c.caps.entries();
                 auto in = [&](const std::vector<std::string>& l) {
                     return std::find(l.begin(), l.end(), g.target) != l.end();
                 };
                 return std::find(e.begin(), e.end(), g) != e.end() ||
                        (g.kind == Capability::Kind::tool && in(c.tools)) ||
                        (g.kind == Capability::Kind::handoff && in(c.handoffs));
             };
             {
                 auto ag = agent_ptr(a.words[0]);
                 if (!ag) return make_error(ENOENT, "no agent " + a.words[0]);
                 std::lock_guard lk(ag->mu);
                 for (auto& g : gone)
                     if (!held_in(ag->config, g))
                         return make_error(
                             EINVAL, "revoke: " + a.words[0] + " was not granted " + g.to_string());
             }
             return update_config(a.words[0], [&](AgentConfig& c) {
                 json kept = json::array();
                 for (auto& cap : c.caps.entries())
                     if (std::find(gone.begin(), gone.end(), cap) == gone.end())
                         kept.push_back(cap.to_string());
                 for (auto& g : gone) {
                     if (g.kind == Capability::Kind::tool) std::erase(c.tools, g.target);
                     if (g.kind == Capability::Kind::handoff) std::erase(c.handoffs, g.target);
                 }
                 if (auto set = CapabilitySet::from_json(kept)) c.caps = *set;
             });
         }},
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
        cancel_agent_turns(name, CancelKind::stop, "stopped by ctl");
        // The write returns once the cancelled turns have ended and are
        // recorded, so what `stop` did is visible in status, err and log right after.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (std::chrono::steady_clock::now() < deadline) {
            if (auto a = agent_ptr(name)) {
                std::lock_guard lk(a->mu);
                if (a->running == 0) break;
            } else {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return {};
    };
    CommandTable table = {
        {"stop", "stop", 0, 0, [stop](const CommandArgs&) { return stop(); }},
        {"start", "start", 0, 0,
         [set_run_state](const CommandArgs&) { return set_run_state("start"); }},
        {"restart", "restart", 0, 0,
         [stop, set_run_state](const CommandArgs&) -> Status {
             if (auto s = stop(); !s) return s;
             return set_run_state("restart");
         }},
        {"priority", "priority interactive|default|background", 1, 1,
         [this, name](const CommandArgs& a) -> Status {
             auto p = parse_priority(a.words[0]);
             if (!p)
                 return make_error(EINVAL,
                                   "priority: expected interactive, default or background, "
                                   "got \"" +
                                       a.words[0] + "\"");
             return update_config(name, [&](AgentConfig& c) { c.priority = *p; });
         }},
        {"budget", "budget TOKENS (0: no limit)", 1, 1,
         [this, name](const CommandArgs& a) -> Status {
             const std::string& w = a.words[0];
             char* end = nullptr;
             long long n = strtoll(w.c_str(), &end, 10);
             if (w.empty() || *end || n < 0)
                 return make_error(EINVAL,
                                   "budget: expected a whole number of tokens, got \"" + w + "\"");
             return update_config(name, [&](AgentConfig& c) { c.budget = n; });
         }},
    };
    for (auto& c : pledge_commands(name)) table.push_back(std::move(c));
    return table;
}

CommandTable Swarm::conv_commands(int64_t id) {
    return {
        {"agent", "agent NAME", 1, 1,
         [this, id](const CommandArgs& a) -> Status {
             std::lock_guard dl(declare_mu_);
             if (!has_agent(a.words[0])) return make_error(ENOENT, "no agent " + a.words[0]);
             return commit("conv_routed", {{"conv", id}, {"agent", a.words[0]}});
         }},
        {"handoff", "handoff NAME", 1, 1,
         [this, id](const CommandArgs& a) -> Status {
             const std::string& to = a.words[0];
             std::lock_guard dl(declare_mu_);
             std::string from;
             {
                 auto c = conv_ptr(id);
                 if (!c) return make_error(ENOENT, "no conversation " + std::to_string(id));
                 {
                     std::lock_guard cl(c->mu);
                     from = c->agent;
                 }
                 auto src = from.empty() ? nullptr : agent_ptr(from);
                 if (!src)
                     return make_error(EDESTADDRREQ, "conversation has no agent to hand off from");
                 if (!agent_ptr(to)) return make_error(ENOENT, "no agent " + to);
                 std::lock_guard lk(src->mu);
                 if (!src->caps.allows(Capability::Kind::handoff, to))
                     return make_error(EPERM, "agent " + from + " may not hand off to " + to +
                                                  " (it does not hold handoff:" + to + ")");
             }
             return commit("conv_handoff", {{"conv", id}, {"from", from}, {"to", to}});
         }},
        {"close", "close", 0, 0,
         [this, id](const CommandArgs&) {
             return commit("conv_closed", {{"conv", id}});
         }},
    };
}

}  // namespace swarmfs
