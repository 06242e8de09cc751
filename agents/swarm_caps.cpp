// Capabilities in the kernel: what each agent holds now (its grant, narrowed
// by pledges), vault ownership, and the calls made on an agent's behalf
// through its view (views/NAME), each checked against what it holds at the
// moment of the call, not when a file was opened.
#include <unistd.h>

#include <algorithm>

#include "agents/swarm.h"

namespace swarmfs {

using json = nlohmann::json;

namespace {

Error denied(const std::string& agent, const std::string& cap, const std::string& what) {
    return make_error(
        EPERM, "capability refused: agent " + agent + " does not hold " + cap + " (" + what + ")");
}
}  // namespace

void Swarm::apply_grant(Agent& a, const AgentConfig& before) {
    CapabilitySet granted = a.config.granted();
    UnveilMap unveil = a.config.granted_unveil();
    // Editing instructions or priority is not a new grant: a pledge stays.
    if (a.pledged && granted == before.granted() && unveil == before.granted_unveil()) return;
    // A narrower grant (a revoke) narrows the pledge too: what the agent
    // gave up stays given up. Only a wider grant replaces the pledge.
    if (a.pledged && before.granted().narrow(granted) && before.granted_unveil().narrow(unveil)) {
        a.caps = a.caps.intersect(granted);
        a.unveil = a.unveil.intersect(unveil);
        return;
    }
    a.caps = std::move(granted);
    a.unveil = std::move(unveil);
    a.pledged = false;
}

void Swarm::index_owner(const std::string& agent, const std::vector<std::string>& owns) {
    std::unique_lock lk(reg_mu_);
    std::erase_if(vault_owners_, [&](auto& kv) { return kv.second == agent; });
    for (auto& f : owns) vault_owners_.emplace(f, agent);
}

Status Swarm::check_ownership(const std::string& name, const AgentConfig& cfg) const {
    std::shared_lock lk(reg_mu_);
    for (auto& f : cfg.owns) {
        auto it = vault_owners_.find(f);
        if (it != vault_owners_.end() && it->second != name)
            return make_error(EINVAL, "config: owns: vault folder " + f + " is owned by " +
                                          it->second + " (one owner per folder)");
    }
    return {};
}

std::string Swarm::vault_owner(const std::string& folder) const {
    std::shared_lock lk(reg_mu_);
    auto it = vault_owners_.find(folder);
    return it == vault_owners_.end() ? std::string() : it->second;
}

Result<CapabilitySet> Swarm::caps_of(const std::string& agent) const {
    auto a = agent_ptr(agent);
    if (!a) return make_error(ENOENT, "no agent " + agent);
    std::lock_guard lk(a->mu);
    return a->caps;
}

Result<UnveilMap> Swarm::unveil_of(const std::string& agent) const {
    auto a = agent_ptr(agent);
    if (!a) return make_error(ENOENT, "no agent " + agent);
    std::lock_guard lk(a->mu);
    return a->unveil;
}

Result<std::string> Swarm::caps_text(const std::string& agent) const {
    auto a = agent_ptr(agent);
    if (!a) return make_error(ENOENT, "no agent " + agent);
    std::lock_guard lk(a->mu);
    std::string s = a->caps.to_text();
    for (auto& [path, mode] : a->unveil.entries())
        s += "unveil " + std::string(mode_name(mode)) + " " + path + "\n";
    for (auto& f : a->config.owns) s += "owns /vault/" + f + "\n";
    if (a->pledged) s += "pledged\n";
    return s;
}

Mode Swarm::vault_mode(const std::string& agent, const std::string& path) const {
    auto a = agent_ptr(agent);
    if (!a) return Mode::none;
    std::string full = "/vault" + (path == "/" ? std::string() : path);
    std::string top = vault_top_folder(path);
    std::lock_guard lk(a->mu);
    Mode m = a->unveil.mode_for(full);
    // One owner per folder: whatever the unveil map says, only the owner
    // writes there (and nobody but the swarm's owner at the top level).
    bool owner =
        !top.empty() && std::binary_search(a->config.owns.begin(), a->config.owns.end(), top);
    if (m == Mode::rw && !owner) m = Mode::r;
    return m;
}

Error Swarm::refuse(const std::string& agent, const std::string& capability, Error e,
                    const json& extra) {
    double ts = now_seconds();
    uint64_t unlogged = 0;
    if (auto a = agent_ptr(agent)) {
        std::lock_guard lk(a->mu);
        a->last_error = e.message;
        // The caller gets its errno whatever happens here; only the record
        // is rate-limited.
        if (!a->refusal_budget.try_take(1, TokenBucket::Clock::now())) {
            ++a->refusals_unlogged;
            return e;
        }
        unlogged = std::exchange(a->refusals_unlogged, 0);
        add_err_line(*a,
                     unlogged ? e.message + " (and " + std::to_string(unlogged) +
                                    " more refusals before it, not recorded)"
                              : e.message,
                     ts);
    }
    Event ev;
    ev.kind = "refused";
    ev.ts = ts;
    ev.data = {
        {"agent", agent}, {"capability", capability}, {"message", e.message}, {"errno", e.code}};
    if (unlogged) ev.data["unlogged"] = unlogged;
    if (extra.is_object()) ev.data.update(extra);
    log_->post({std::move(ev)});
    return e;
}

Status Swarm::can_send_as(const std::string& from, const std::string& to) {
    auto caps = caps_of(from);
    if (!caps) return caps.error();
    if (!caps->allows(Capability::Kind::send, to))
        return refuse(from, "send:" + to,
                      denied(from, "send:" + to, "write to agents/" + to + "/inbox"));
    return can_send(to);
}

Status Swarm::send_as(const std::string& from, const std::string& to, std::string text) {
    if (auto s = can_send_as(from, to); !s) return s;
    return enqueue(to, 0, std::move(text), from);
}

Status Swarm::check_publish_as(const std::string& from, const std::string& topic) {
    auto caps = caps_of(from);
    if (!caps) return caps.error();
    if (!caps->allows(Capability::Kind::publish, topic))
        return refuse(from, "publish:" + topic,
                      denied(from, "publish:" + topic, "publish to events/" + topic));
    return check_topic(topic);
}

Status Swarm::publish_as(const std::string& from, const std::string& topic, std::string text) {
    if (auto s = check_publish_as(from, topic); !s) return s;
    return publish(topic, std::move(text));
}

void Swarm::call_tool_as(const std::string& agent, const std::string& tool, std::string args_json,
                         std::function<void(Result<std::string>)> done) {
    auto caps = caps_of(agent);
    if (!caps) return done(caps.error());
    if (!caps->allows(Capability::Kind::tool, tool))
        return done(refuse(agent, "tool:" + tool,
                           denied(agent, "tool:" + tool, "call tools/" + tool + "/call")));
    run_tool(agent, tool, std::move(args_json), std::move(done));
}

// A refusal by capability (EPERM) is recorded as one; anything else is an
// ordinary error of the ctl file.
Status Swarm::ctl_failed(const std::string& agent, const std::string& what, Error e) {
    e.message = what + ": " + e.message;
    if (e.code == EPERM) return refuse(agent, what, std::move(e));
    return report(agent, std::move(e));
}

Status Swarm::agent_ctl_as(const std::string& agent, std::string_view commands) {
    if (!has_agent(agent)) return make_error(ENOENT, "no agent " + agent);
    auto s = run_commands(pledge_commands(agent), commands);
    if (!s) return ctl_failed(agent, "ctl", s.error());
    return s;
}

Status Swarm::conv_ctl_as(const std::string& agent, int64_t id, std::string_view commands) {
    auto c = conv_ptr(id);
    if (!c) return make_error(ENOENT, "no conversation " + std::to_string(id));
    {
        std::lock_guard lk(c->mu);
        if (c->agent != agent)
            return refuse(agent, "conv",
                          make_error(EACCES, "conversation " + std::to_string(id) +
                                                 " is not served by " + agent));
    }
    CommandTable table;
    for (auto& cmd : conv_commands(id))
        if (cmd.name == "handoff") table.push_back(cmd);
    auto s = run_commands(table, commands);
    if (!s) return ctl_failed(agent, "conv " + std::to_string(id) + " ctl", s.error());
    return s;
}

std::vector<int64_t> Swarm::conversations_of(const std::string& agent) const {
    std::vector<int64_t> ids;
    for (auto& c : all_convs()) {
        std::lock_guard lk(c->mu);
        if (c->agent == agent) ids.push_back(c->id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

uid_t Swarm::sandbox_uid(const std::string& agent) const {
    // Only root can give a process another uid; a server run by a user
    // leaves its agents' processes with its own.
    if (geteuid() != 0) return 0;
    auto a = agent_ptr(agent);
    if (!a) return 0;
    return opts_.uid_base + static_cast<uid_t>(a->key % 1000000);
}

std::optional<std::string> Swarm::agent_for_uid(uid_t uid) const {
    if (uid < opts_.uid_base || uid >= opts_.uid_base + 1000000) return std::nullopt;
    std::shared_lock lk(reg_mu_);
    auto it = agent_keys_.find(uid - opts_.uid_base);
    if (it == agent_keys_.end()) return std::nullopt;
    return it->second;
}

CommandTable Swarm::pledge_commands(const std::string& name) {
    // Both narrow what the agent holds now; the result is logged, so a
    // pledge survives a restart of the server. The owner's next grant (a
    // config that changes caps, tools, handoffs, unveil or owns) replaces it.
    auto commit_pledge = [this, name](const CapabilitySet& caps, const UnveilMap& unveil) {
        return commit("agent_pledged",
                      {{"agent", name}, {"caps", caps.to_json()}, {"unveil", unveil.to_json()}});
    };
    return {
        {"pledge", "pledge [CAPABILITY ...] (what to keep; everything else is dropped)", 0,
         SIZE_MAX,
         [this, name, commit_pledge](const CommandArgs& a) -> Status {
             auto wanted = CapabilitySet::from_json(json(a.words));
             if (!wanted) return make_error(EINVAL, "pledge: " + wanted.error().message);
             std::lock_guard dl(declare_mu_);
             auto held = caps_of(name);
             auto unveil = unveil_of(name);
             if (!held || !unveil) return make_error(ENOENT, "no agent " + name);
             auto narrowed = held->narrow(*wanted);
             if (!narrowed) return make_error(EPERM, "pledge: " + narrowed.error().message);
             return commit_pledge(*narrowed, *unveil);
         }},
        {"unveil", "unveil PATH r|rw|none", 2, 2,
         [this, name, commit_pledge](const CommandArgs& a) -> Status {
             const std::string& path = a.words[0];
             const std::string& mode = a.words[1];
             if (mode != "r" && mode != "rw" && mode != "none")
                 return make_error(EINVAL, "unveil: mode must be r, rw or none, got " + mode);
             std::lock_guard dl(declare_mu_);
             auto held = caps_of(name);
             auto unveil = unveil_of(name);
             if (!held || !unveil) return make_error(ENOENT, "no agent " + name);
             json j = unveil->to_json();
             std::string key =
                 path.size() > 1 && path.back() == '/' ? path.substr(0, path.size() - 1) : path;
             if (mode == "none") {
                 if (!j.contains(key))
                     return make_error(EINVAL, "unveil: " + path +
                                                   " is not an unveiled path (none drops a "
                                                   "whole entry; see the caps file)");
                 j.erase(key);
             } else {
                 j[key] = mode;
             }
             auto wanted = UnveilMap::from_json(j);
             if (!wanted) return make_error(EINVAL, "unveil: " + wanted.error().message);
             auto narrowed = unveil->narrow(*wanted);
             if (!narrowed) return make_error(EPERM, "unveil: " + narrowed.error().message);
             return commit_pledge(*held, *narrowed);
         }},
    };
}

}  // namespace swarmfs
