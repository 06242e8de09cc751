// Where an agent's processes run: its exec turns and the exec tools it
// calls start inside its sandbox (agents/sandbox.h), as its own uid, with
// its view as their only window on the swarm. Off is a choice the owner
// makes explicitly, and it is logged every time it takes effect.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <set>

#include "agents/swarm.h"

namespace swarmfs {

using json = nlohmann::json;

namespace {
// Tools the owner calls through tools/NAME/call run as nobody: sandboxed
// like an agent's, with no view of the swarm.
constexpr uid_t kNobody = 65534;

bool inside(const std::string& path, const std::string& dir) {
    return !dir.empty() && (path == dir || path.rfind(dir + "/", 0) == 0);
}
}  // namespace

SandboxPolicy Swarm::sandbox_policy(const AgentConfig& c) const {
    return c.sandbox ? *c.sandbox : default_sandbox_;
}

SandboxSpec Swarm::base_sandbox(const SandboxPolicy& p) const {
    SandboxSpec s;
    s.limits = p.limits;
    s.workdir = opts_.workdir;
    // The log, the vault's real folder and anything else of the server's.
    if (!opts_.state_dir.empty()) s.hide.push_back(opts_.state_dir);
    if (!opts_.vault_dir.empty() && !inside(opts_.vault_dir, opts_.state_dir))
        s.hide.push_back(opts_.vault_dir);
    if (!opts_.swarm_file.empty()) s.hide.push_back(opts_.swarm_file);
    s.mount = opts_.mountpoint;
    return s;
}

std::optional<SandboxSpec> Swarm::sandbox_spec(const std::string& agent,
                                               const AgentConfig* c) const {
    SandboxPolicy p = c ? sandbox_policy(*c) : default_sandbox_;
    if (!p.enabled) return std::nullopt;
    SandboxSpec s = base_sandbox(p);
    if (agent.empty()) {
        if (geteuid() == 0) s.uid = s.gid = kNobody;
        return s;
    }
    if (!opts_.views_dir.empty()) s.view = opts_.views_dir + "/" + agent;
    auto caps = caps_of(agent);
    s.net = caps && caps->allows(Capability::Kind::net);
    s.uid = s.gid = sandbox_uid(agent);
    return s;
}

Status Swarm::sandbox_exec(const SandboxSpec& box, ExecSpec& spec,
                           const std::vector<std::string>& keep) const {
    std::set<std::string> secret;
    for (auto& [name, p] : opts_.providers.items())
        if (auto var = p.value("api_key_env", ""); !var.empty()) secret.insert(var);
    static const std::regex secret_name("KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL",
                                        std::regex::icase);
    std::erase_if(spec.env, [&](const std::string& kv) {
        std::string name = kv.substr(0, kv.find('='));
        if (std::find(keep.begin(), keep.end(), name) != keep.end()) return false;
        return secret.count(name) > 0 || std::regex_search(name, secret_name);
    });
    auto argv = sandbox_argv(box, spec.argv);
    if (!argv) return argv.error();
    spec.argv = std::move(*argv);
    // Inside, the swarm is the view at /swarm, if there is one.
    std::erase_if(spec.env, [](const std::string& kv) { return kv.rfind("SWARMFS_MNT=", 0) == 0; });
    if (!box.view.empty()) spec.env.push_back("SWARMFS_MNT=/swarm");
    return {};
}

ToolContext Swarm::tool_context(const std::string& agent, const AgentConfig* c) const {
    ToolContext ctx;
    ctx.agent = agent;
    std::vector<std::string> keep;
    if (c)
        for (auto& [k, v] : c->env) keep.push_back(k);
    if (auto box = sandbox_spec(agent, c))
        ctx.wrap = [this, box = std::move(*box), keep](ExecSpec& spec,
                                                       const std::vector<std::string>& read) {
            if (read.empty()) return sandbox_exec(box, spec, keep);
            SandboxSpec with = box;
            with.read.insert(with.read.end(), read.begin(), read.end());
            return sandbox_exec(with, spec, keep);
        };
    return ctx;
}

Result<std::function<Status(ExecSpec&)>> Swarm::tool_server_sandbox(const ToolServerBox& b) {
    SandboxPolicy p = b.policy.value_or(default_sandbox_);
    if (!p.enabled) {
        std::string why = "sandbox off: MCP server " + b.name +
                          " runs unconfined, as the server's user, with the host's files and "
                          "network";
        spdlog::warn("{}", why);
        Event e;
        e.kind = "sandbox_off";
        e.data = {{"tool", b.name}, {"message", why}};
        log_->post({std::move(e)});
        return std::function<Status(ExecSpec&)>();
    }
    // A server lives as long as the swarm, and RLIMIT_CPU counts every
    // call it ever served: unless its entry sets limits, only a week of
    // CPU time ends it, not the per-command minute. And RLIMIT_AS counts
    // address space reserved, not used: node (the usual MCP runtime)
    // reserves about 1 GiB before it does anything, and its garbage
    // collector aborts the process when it cannot reserve more.
    if (!b.policy) {
        p.limits.cpu_seconds = 604800;
        p.limits.memory_bytes = std::max<int64_t>(p.limits.memory_bytes, int64_t{4} << 30);
    }
    SandboxSpec box = base_sandbox(p);
    box.net = b.net;
    box.read = b.read;
    // A uid of its own, past the agents' range (so no agent's): RLIMIT_NPROC
    // counts every thread of a uid on the host, and one a runtime like node
    // shares with other servers (or the host's own nobody) runs out.
    if (geteuid() == 0) box.uid = box.gid = opts_.uid_base + 1000000 + tool_servers_++;
    // Refused now, with the entry's name, rather than at every start.
    if (auto argv = sandbox_argv(box, {"true"}); !argv) return argv.error();
    return std::function<Status(ExecSpec&)>(
        [this, box = std::move(box), keep = b.env_keys](ExecSpec& spec) {
            return sandbox_exec(box, spec, keep);
        });
}

void Swarm::log_sandbox_off(const std::string& agent, const AgentConfig& c) {
    if (sandbox_policy(c).enabled) return;
    std::string why = "sandbox off: agent " + agent +
                      "'s processes run unconfined, as the server's user, with the host's files "
                      "and network, and the file server cannot tell them from the owner";
    spdlog::warn("{}", why);
    Event e;
    e.kind = "sandbox_off";
    e.data = {{"agent", agent}, {"message", why}};
    log_->post({std::move(e)});
}

}  // namespace swarmfs
