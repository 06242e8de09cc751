#include "agents/agent_config.h"

#include <algorithm>
#include <functional>

#include "agents/json_document.h"
#include "agents/tools/tool.h"

namespace swarmfs {

namespace {
using json = nlohmann::json;

Error bad(const std::string& why) { return make_error(EINVAL, "config: " + why); }

// Keys a user may set, each with its own reader: adding a key is one row.
using KeyReader = std::function<std::optional<Error>(const json&, AgentConfig&)>;

std::optional<Error> read_string(const json& v, std::string& out, const char* key) {
    if (!v.is_string()) return bad(std::string(key) + " must be a string");
    out = v.get<std::string>();
    return std::nullopt;
}

const std::map<std::string, KeyReader>& key_readers() {
    static const std::map<std::string, KeyReader> table = {
        {"exec",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_array() || v.empty())
                 return bad(
                     "exec must be a non-empty array of strings, e.g. [\"tr\", \"a-z\", \"A-Z\"]");
             c.exec.clear();
             for (auto& a : v) {
                 if (!a.is_string()) return bad("exec must contain only strings");
                 c.exec.push_back(a.get<std::string>());
             }
             if (c.exec[0].empty()) return bad("exec[0] (the command) is empty");
             return std::nullopt;
         }},
        {"handoffs",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_array()) return bad("handoffs must be an array of agent names");
             c.handoffs.clear();
             for (auto& a : v) {
                 if (!a.is_string() || !valid_agent_name(a.get<std::string>()))
                     return bad("handoffs must contain agent names, got " + a.dump());
                 c.handoffs.push_back(a.get<std::string>());
             }
             return std::nullopt;
         }},
        {"provider",
         [](const json& v, AgentConfig& c) { return read_string(v, c.provider, "provider"); }},
        {"model", [](const json& v, AgentConfig& c) { return read_string(v, c.model, "model"); }},
        {"tools",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_array()) return bad("tools must be an array of tool names");
             c.tools.clear();
             for (auto& t : v) {
                 if (!t.is_string() || !valid_tool_name(t.get<std::string>()))
                     return bad("tools must contain tool names, got " + t.dump());
                 c.tools.push_back(t.get<std::string>());
             }
             return std::nullopt;
         }},
        {"context_window",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_number_integer() || v.get<int64_t>() < 256)
                 return bad("context_window must be an integer of at least 256 (tokens)");
             c.context_window = v.get<int64_t>();
             return std::nullopt;
         }},
        {"max_tool_rounds",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 100)
                 return bad("max_tool_rounds must be an integer from 1 to 100");
             c.max_tool_rounds = v.get<int64_t>();
             return std::nullopt;
         }},
        {"params",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_object())
                 return bad("params must be an object (e.g. {\"temperature\": 0.2})");
             for (const char* k : {"messages", "tools", "stream", "model"})
                 if (v.contains(k)) return bad(std::string("params may not set ") + k);
             c.params = v;
             return std::nullopt;
         }},
        {"instructions",
         [](const json& v, AgentConfig& c) {
             return read_string(v, c.instructions, "instructions");
         }},
        {"description",
         [](const json& v, AgentConfig& c) {
             return read_string(v, c.description, "description");
         }},
        {"priority",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             auto p = v.is_string() ? parse_priority(v.get<std::string>()) : std::nullopt;
             if (!p) return bad("priority must be \"interactive\", \"default\" or \"background\"");
             c.priority = *p;
             return std::nullopt;
         }},
        {"subscribe",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_array()) return bad("subscribe must be an array of topic names");
             c.subscribe.clear();
             for (auto& t : v) {
                 if (!t.is_string() || !valid_agent_name(t.get<std::string>()))
                     return bad(
                         "subscribe must contain topic names (letters, digits, _ . -), got " +
                         t.dump());
                 c.subscribe.push_back(t.get<std::string>());
             }
             return std::nullopt;
         }},
        {"budget",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_number_integer() || v.get<int64_t>() < 0)
                 return bad("budget must be a whole number of tokens (0: no limit)");
             c.budget = v.get<int64_t>();
             return std::nullopt;
         }},
        {"concurrency",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1024)
                 return bad("concurrency must be a whole number of turns at once, 1..1024");
             c.concurrency = v.get<int>();
             return std::nullopt;
         }},
        {"turn_timeout",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_number() || v.get<double>() < 0)
                 return bad("turn_timeout must be a number of seconds (0: no limit)");
             c.turn_timeout = v.get<double>();
             return std::nullopt;
         }},
        {"restart",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             const char* shape =
                 "restart must be {\"max_restarts\": N, \"period\": SECONDS}, e.g. "
                 "{\"max_restarts\": 5, \"period\": 30}";
             if (!v.is_object()) return bad(shape);
             for (auto& [k, x] : v.items()) {
                 if (k == "max_restarts" && x.is_number_integer() && x.get<int64_t>() >= 0)
                     c.max_restarts = x.get<int64_t>();
                 else if (k == "period" && x.is_number() && x.get<double>() > 0)
                     c.restart_period = x.get<double>();
                 else
                     return bad(shape);
             }
             return std::nullopt;
         }},
        {"caps",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             auto caps = CapabilitySet::from_json(v);
             if (!caps) return bad("caps: " + caps.error().message);
             c.caps = std::move(*caps);
             return std::nullopt;
         }},
        {"unveil",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             auto u = UnveilMap::from_json(v);
             if (!u) return bad("unveil: " + u.error().message);
             // An agent always sees its own folder; the rest of the swarm is
             // reached through capabilities, so only the vault is unveiled.
             for (auto& [path, mode] : u->entries())
                 if (path != "/vault" && path.rfind("/vault/", 0) != 0)
                     return bad("unveil: " + path +
                                " is not under /vault (only vault paths are unveiled; "
                                "send:, publish:, tool: and handoff: grant the rest)");
             c.unveil = std::move(*u);
             return std::nullopt;
         }},
        {"owns",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_array()) return bad("owns must be an array of vault folder names");
             c.owns.clear();
             for (auto& f : v) {
                 if (!f.is_string() || !valid_agent_name(f.get<std::string>()))
                     return bad("owns must contain top-level vault folder names (no /), got " +
                                f.dump());
                 c.owns.push_back(f.get<std::string>());
             }
             std::sort(c.owns.begin(), c.owns.end());
             c.owns.erase(std::unique(c.owns.begin(), c.owns.end()), c.owns.end());
             return std::nullopt;
         }},
        {"sandbox",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             auto p = SandboxPolicy::from_json(v);
             if (!p) return bad(p.error().message);
             c.sandbox = *p;
             return std::nullopt;
         }},
        {"env",
         [](const json& v, AgentConfig& c) -> std::optional<Error> {
             if (!v.is_object()) return bad("env must be an object of strings");
             c.env.clear();
             for (auto& [k, x] : v.items()) {
                 if (!x.is_string()) return bad("env." + k + " must be a string");
                 if (k.empty() || k.find('=') != std::string::npos)
                     return bad("env key \"" + k + "\" is not a variable name");
                 c.env[k] = x.get<std::string>();
             }
             return std::nullopt;
         }},
    };
    return table;
}
}  // namespace

Result<AgentConfig> AgentConfig::from_json(const json& j) {
    if (!j.is_object()) return bad("must be a JSON object");
    AgentConfig c;
    for (auto& [key, value] : j.items()) {
        auto it = key_readers().find(key);
        if (it == key_readers().end()) {
            std::string known;
            for (auto& [k, r] : key_readers()) known += (known.empty() ? "" : ", ") + k;
            return bad("unknown key \"" + key + "\" (known keys: " + known + ")");
        }
        if (auto err = it->second(value, c)) return *err;
    }
    return c;
}

namespace {
Status check_config(const json& j) {
    auto c = AgentConfig::from_json(j);
    if (!c) return c.error();
    return {};
}
}  // namespace

Result<AgentConfig> AgentConfig::parse(std::string_view text) {
    auto j = parse_json_document(text, "config", check_config);
    if (!j) return j.error();
    return from_json(*j);
}

Status AgentConfig::check_partial(std::string_view text) {
    return check_json_draft(text, "config", check_config);
}

nlohmann::json AgentConfig::to_json() const {
    json j = json::object();
    if (!exec.empty()) j["exec"] = exec;
    if (!instructions.empty()) j["instructions"] = instructions;
    if (!description.empty()) j["description"] = description;
    if (!handoffs.empty()) j["handoffs"] = handoffs;
    if (!provider.empty()) j["provider"] = provider;
    if (!model.empty()) j["model"] = model;
    if (!tools.empty()) j["tools"] = tools;
    if (context_window != 8192) j["context_window"] = context_window;
    if (max_tool_rounds != 8) j["max_tool_rounds"] = max_tool_rounds;
    if (!params.empty()) j["params"] = params;
    if (!env.empty()) j["env"] = env;
    if (priority != Priority::normal) j["priority"] = std::string(priority_name(priority));
    if (!subscribe.empty()) j["subscribe"] = subscribe;
    if (budget) j["budget"] = budget;
    if (concurrency != 1) j["concurrency"] = concurrency;
    if (turn_timeout) j["turn_timeout"] = turn_timeout;
    if (max_restarts != 5 || restart_period != 30)
        j["restart"] = {{"max_restarts", max_restarts}, {"period", restart_period}};
    if (!caps.empty()) j["caps"] = caps.to_json();
    if (!unveil.empty()) j["unveil"] = unveil.to_json();
    if (!owns.empty()) j["owns"] = owns;
    if (sandbox) j["sandbox"] = sandbox->enabled ? sandbox->to_json() : json(false);
    return j;
}

CapabilitySet AgentConfig::granted() const {
    json all = caps.to_json();
    for (auto& t : tools) all.push_back("tool:" + t);
    for (auto& h : handoffs) all.push_back("handoff:" + h);
    // Each entry was validated when the config was read.
    auto set = CapabilitySet::from_json(all);
    return set ? *set : CapabilitySet{};
}

UnveilMap AgentConfig::granted_unveil() const {
    if (owns.empty()) return unveil;
    json all = unveil.to_json();
    for (auto& f : owns)
        if (!all.contains("/vault/" + f)) all["/vault/" + f] = "rw";
    auto map = UnveilMap::from_json(all);
    return map ? *map : unveil;
}

std::string AgentConfig::to_text() const { return to_json().dump(2) + "\n"; }

bool valid_agent_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.front() == '.' || name.back() == '~') return false;
    for (char ch : name) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        if (!ok) return false;
    }
    return true;
}

}  // namespace swarmfs
