#include "agents/tools/tool_registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <future>
#include <optional>
#include <set>

#include "agents/sandbox.h"
#include "agents/tools/exec_tool.h"
#include "agents/tools/json_schema.h"
#include "agents/tools/mcp_client.h"

namespace swarmfs {

namespace {
using json = nlohmann::json;

Error bad(const std::string& where, const std::string& why) {
    return make_error(EINVAL, where + ": " + why);
}

struct Entry {
    std::string name;
    bool mcp = false;
    std::vector<std::string> argv;
    std::string description;
    json parameters = json{{"type", "object"}, {"properties", json::object()}};
    std::map<std::string, std::string> env;
    double timeout = 30, start_timeout = 60;
    std::optional<std::set<std::string>> only;  // "tools" of an mcp entry
    ToolServerBox box;  // "read" of any entry; "sandbox" and "net" of an mcp entry
};

std::optional<Error> read_argv(const json& v, const std::string& where, Entry& e) {
    if (!v.is_array() || v.empty())
        return bad(where,
                   "must be a non-empty array of strings, e.g. [\"./bin/tool\", \"--flag\"]");
    e.argv.clear();
    for (auto& a : v) {
        if (!a.is_string()) return bad(where, "must contain only strings");
        e.argv.push_back(a.get<std::string>());
    }
    if (e.argv[0].empty()) return bad(where, "the command (first element) is empty");
    return std::nullopt;
}

std::optional<Error> read_seconds(const json& v, const std::string& where, double& out) {
    if (!v.is_number() || !(v.get<double>() > 0) || v.get<double>() > 86400)
        return bad(where, "must be a number of seconds > 0 (at most 86400)");
    out = v.get<double>();
    return std::nullopt;
}

using KeyReader = std::function<std::optional<Error>(const json&, const std::string&, Entry&)>;

const KeyReader read_env = [](const json& v, const std::string& where,
                              Entry& e) -> std::optional<Error> {
    if (!v.is_object()) return bad(where, "must be an object of strings");
    for (auto& [k, x] : v.items()) {
        if (!x.is_string()) return bad(where + "." + k, "must be a string");
        if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
            return bad(where, "\"" + k + "\" is not a variable name");
        e.env[k] = x.get<std::string>();
    }
    return std::nullopt;
};
const KeyReader read_timeout = [](const json& v, const std::string& where, Entry& e) {
    return read_seconds(v, where, e.timeout);
};

// Host folders a sandboxed run shows read-only besides the workdir: where
// the program lives, its modules, its data.
const KeyReader read_paths = [](const json& v, const std::string& where,
                                Entry& e) -> std::optional<Error> {
    if (!v.is_array()) return bad(where, "must be an array of absolute paths");
    for (auto& p : v) {
        if (!p.is_string() || p.get<std::string>().empty() || p.get<std::string>()[0] != '/')
            return bad(where, "must contain only absolute paths, got " + p.dump());
        e.box.read.push_back(p.get<std::string>());
    }
    return std::nullopt;
};

const std::map<std::string, KeyReader>& exec_keys() {
    static const std::map<std::string, KeyReader> table = {
        {"exec", read_argv},
        {"description",
         [](const json& v, const std::string& where, Entry& e) -> std::optional<Error> {
             if (!v.is_string()) return bad(where, "must be a string");
             e.description = v.get<std::string>();
             return std::nullopt;
         }},
        {"parameters",
         [](const json& v, const std::string& where, Entry& e) -> std::optional<Error> {
             if (!v.is_object() || v.value("type", json()) != "object")
                 return bad(where,
                            "must be a JSON Schema whose top level is {\"type\": \"object\", "
                            "\"properties\": {...}} (function arguments are an object)");
             if (Status st = check_schema(v); !st) return bad(where, st.error().message);
             e.parameters = v;
             return std::nullopt;
         }},
        {"timeout", read_timeout},
        {"env", read_env},
        {"read", read_paths},
    };
    return table;
}

const std::map<std::string, KeyReader>& mcp_keys() {
    static const std::map<std::string, KeyReader> table = {
        {"mcp", read_argv},
        {"timeout", read_timeout},
        {"start_timeout", [](const json& v, const std::string& where,
                             Entry& e) { return read_seconds(v, where, e.start_timeout); }},
        {"env", read_env},
        {"sandbox",
         [](const json& v, const std::string& where, Entry& e) -> std::optional<Error> {
             auto p = SandboxPolicy::from_json(v);
             if (!p) return bad(where, p.error().message);
             e.box.policy = *p;
             return std::nullopt;
         }},
        {"net",
         [](const json& v, const std::string& where, Entry& e) -> std::optional<Error> {
             if (!v.is_boolean()) return bad(where, "must be true or false");
             e.box.net = v.get<bool>();
             return std::nullopt;
         }},
        {"read", read_paths},
        {"tools",
         [](const json& v, const std::string& where, Entry& e) -> std::optional<Error> {
             if (!v.is_array()) return bad(where, "must be an array of the server's tool names");
             e.only.emplace();
             for (auto& t : v) {
                 if (!t.is_string()) return bad(where, "must contain only strings");
                 e.only->insert(t.get<std::string>());
             }
             return std::nullopt;
         }},
    };
    return table;
}

std::string known_keys(const std::map<std::string, KeyReader>& table) {
    std::string out;
    for (auto& [k, r] : table) out += (out.empty() ? "" : ", ") + k;
    return out;
}

Result<Entry> parse_entry(const std::string& name, const json& v, const std::string& workdir) {
    std::string where = "tools." + name;
    if (!valid_tool_name(name) || name.find("__") != std::string::npos)
        return bad("tools", "\"" + name +
                                "\" is not a valid tool name (1-64 of A-Z a-z 0-9 _ -, without "
                                "\"__\", which joins an MCP server's name to its tools' names)");
    if (!v.is_object()) return bad(where, "must be an object with \"exec\" or \"mcp\"");
    bool has_exec = v.contains("exec"), has_mcp = v.contains("mcp");
    if (has_exec && has_mcp)
        return bad(where, "has both \"exec\" and \"mcp\"; an entry is one or the other");
    if (!has_exec && !has_mcp)
        return bad(where,
                   "needs \"exec\" (a command run per call, e.g. [\"./bin/tool\"]) or \"mcp\" (an "
                   "MCP server command, e.g. [\"npx\", \"-y\", \"@scope/server\"])");
    Entry e;
    e.name = name;
    e.mcp = has_mcp;
    const auto& table = has_mcp ? mcp_keys() : exec_keys();
    for (auto& [key, value] : v.items()) {
        auto it = table.find(key);
        if (it == table.end())
            return bad(where, "unknown key \"" + key + "\" (known keys of " +
                                  (has_mcp ? "an mcp" : "an exec") +
                                  " entry: " + known_keys(table) + ")");
        if (auto err = it->second(value, where + "." + key, e)) return *err;
    }
    if (resolve_tool_command(e.argv[0], workdir).empty())
        return make_error(
            ENOENT, where + ": command not found: " + e.argv[0] +
                        (e.argv[0].find('/') != std::string::npos ? " (relative to " + workdir + ")"
                                                                  : " (not on PATH)"));
    return e;
}

// An MCP tool name as an OpenAI function name allows it.
std::string sanitize(const std::string& name) {
    std::string out = name;
    for (char& ch : out) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (!ok) ch = '_';
    }
    return out;
}

// Runs fn on the loop thread and waits for it, at most `seconds`.
bool run_on_loop(EventLoop& loop, std::function<void()> fn, double seconds) {
    if (loop.in_loop()) {
        fn();
        return true;
    }
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    loop.post([fn = std::move(fn), done] {
        fn();
        done->set_value();
    });
    return f.wait_for(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000))) ==
           std::future_status::ready;
}
}  // namespace

ToolRegistry::ToolRegistry(EventLoop& loop, std::string workdir)
    : loop_(loop), workdir_(std::move(workdir)) {}

ToolRegistry::~ToolRegistry() {
    std::vector<std::shared_ptr<McpServer>> servers;
    {
        std::lock_guard lk(mu_);
        servers.swap(servers_);
        tools_.clear();
    }
    stop_servers(servers, "the tool registry is shutting down");
}

void ToolRegistry::stop_servers(const std::vector<std::shared_ptr<McpServer>>& servers,
                                const std::string& why) {
    if (servers.empty()) return;
    bool ran = run_on_loop(
        loop_,
        [servers, why] {
            for (auto& s : servers) s->stop(why);
        },
        5);
    if (!ran) {
        // The loop is stopped or stuck: at least leave no server running.
        spdlog::warn("tools: the event loop did not stop the MCP servers; killing them");
        for (auto& s : servers) s->kill_now();
    }
}

namespace {
// An exec tool runs in its caller's sandbox, which shows the workdir, the
// system folders and the entry's "read" folders: a program elsewhere is
// not there. Said once at load rather than as "No such file" at each call.
void warn_if_unseen(const std::string& name, const std::string& argv0, const std::string& workdir,
                    const std::vector<std::string>& read) {
    std::string program = resolve_tool_command(argv0, workdir);
    if (program.empty() || program[0] != '/') return;
    SandboxSpec box;
    box.workdir = workdir;
    box.read = read;
    if (sandbox_shows(box, program)) return;
    spdlog::warn(
        "tools.{}: {} is outside the workdir ({}) and the system folders, so a sandboxed "
        "call cannot see it; add its folder to the entry's \"read\"",
        name, program, workdir);
}
}  // namespace

Status ToolRegistry::load(const nlohmann::json& section) {
    if (loop_.in_loop())
        return make_error(EDEADLK, "tools: load() waits for the event loop; not on its thread");
    if (!section.is_null() && !section.is_object())
        return bad("tools", "must be an object {\"NAME\": {\"exec\": [...]} or {\"mcp\": [...]}}");

    std::vector<Entry> entries;
    if (section.is_object()) {
        for (auto& [name, v] : section.items()) {
            auto e = parse_entry(name, v, workdir_);
            if (!e) return e.error();
            entries.push_back(std::move(*e));
        }
    }

    std::map<std::string, std::shared_ptr<Tool>> tools;
    std::vector<std::shared_ptr<McpServer>> servers;
    std::vector<const Entry*> server_entries;
    double longest = 0;
    for (auto& e : entries) {
        if (!e.mcp) {
            ExecToolConfig c;
            c.spec = {e.name, e.description, e.parameters};
            c.argv = e.argv;
            c.env = e.env;
            c.timeout = e.timeout;
            c.workdir = workdir_;
            c.read = e.box.read;
            warn_if_unseen(e.name, c.argv[0], workdir_, c.read);
            tools[e.name] = make_exec_tool(loop_, std::move(c));
            continue;
        }
        McpServerConfig c;
        c.name = e.name;
        c.argv = e.argv;
        c.env = e.env;
        c.workdir = workdir_;
        c.call_timeout = e.timeout;
        c.start_timeout = e.start_timeout;
        if (server_sandbox_) {
            ToolServerBox box = e.box;
            box.name = e.name;
            for (auto& [k, v] : e.env) box.env_keys.push_back(k);
            auto wrap = server_sandbox_(box);
            if (!wrap)
                return make_error(wrap.error().code,
                                  "tools." + e.name + ": " + wrap.error().message);
            c.wrap = std::move(*wrap);
        }
        longest = std::max(longest, e.start_timeout);
        servers.push_back(McpServer::create(loop_, std::move(c)));
        server_entries.push_back(&e);
    }

    // Start every server at once; each has its own time limit.
    struct Listing {
        std::mutex mu;
        std::condition_variable cv;
        size_t left = 0;
        std::vector<std::optional<Result<std::vector<McpToolInfo>>>> results;
    };
    auto listing = std::make_shared<Listing>();
    listing->left = servers.size();
    listing->results.resize(servers.size());
    if (!servers.empty()) {
        loop_.post([servers, listing] {
            for (size_t i = 0; i < servers.size(); ++i) {
                servers[i]->start([listing, i](Result<std::vector<McpToolInfo>> r) {
                    std::lock_guard lk(listing->mu);
                    listing->results[i] = std::move(r);
                    --listing->left;
                    listing->cv.notify_all();
                });
            }
        });
        std::unique_lock lk(listing->mu);
        bool all = listing->cv.wait_for(
            lk, std::chrono::milliseconds(static_cast<int64_t>((longest + 5) * 1000)),
            [&] { return listing->left == 0; });
        if (!all) {
            lk.unlock();
            stop_servers(servers, "load failed");
            return make_error(ETIMEDOUT, "tools: the event loop did not start the MCP servers");
        }
    }
    for (size_t i = 0; i < servers.size(); ++i) {
        auto& r = *listing->results[i];
        if (!r) {
            stop_servers(servers, "load failed");
            return make_error(r.error().code,
                              "tools." + server_entries[i]->name + ": " + r.error().message);
        }
    }

    for (size_t i = 0; i < servers.size(); ++i) {
        const Entry& e = *server_entries[i];
        std::set<std::string> seen;
        for (auto& info : listing->results[i]->value()) {
            seen.insert(info.name);
            if (e.only && !e.only->count(info.name)) continue;
            std::string name = e.name + "__" + sanitize(info.name);
            if (name.size() > 64) {
                spdlog::warn("tools.{}: skipping tool \"{}\": {} is longer than 64 characters",
                             e.name, info.name, name);
                continue;
            }
            if (tools.count(name)) {
                spdlog::warn("tools.{}: skipping tool \"{}\": the name {} is taken", e.name,
                             info.name, name);
                continue;
            }
            json params = info.input_schema;
            params.erase("$schema");
            if (!params.contains("type")) params["type"] = "object";
            bool validate = true;
            if (Status st = check_schema(params); !st) {
                validate = false;
                spdlog::warn("tools.{}: tool \"{}\": {}; the server checks its arguments itself",
                             e.name, info.name, st.error().message);
            }
            ToolSpec spec{name, info.description, std::move(params)};
            tools[name] =
                make_mcp_tool(servers[i], std::move(spec), info.name, e.timeout, validate);
        }
        if (e.only) {
            for (auto& want : *e.only) {
                if (!seen.count(want)) {
                    stop_servers(servers, "load failed");
                    return bad("tools." + e.name + ".tools",
                               "the server has no tool \"" + want + "\"");
                }
            }
        }
        spdlog::info("tools.{}: MCP server {} (protocol {}) ready", e.name,
                     servers[i]->server_info().value("name", std::string("?")),
                     servers[i]->protocol_version());
    }

    std::vector<std::shared_ptr<McpServer>> old;
    {
        std::lock_guard lk(mu_);
        tools_.swap(tools);
        old.swap(servers_);
        servers_ = std::move(servers);
    }
    stop_servers(old, "replaced by a new tools section");
    return {};
}

std::vector<std::string> ToolRegistry::names() const {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    for (auto& [name, tool] : tools_) out.push_back(name);
    return out;
}

std::shared_ptr<Tool> ToolRegistry::get(const std::string& name) const {
    std::lock_guard lk(mu_);
    auto it = tools_.find(name);
    return it == tools_.end() ? nullptr : it->second;
}

}  // namespace swarmfs
