// The guard in the kernel: incoming messages and tool results are scanned
// by the swarm's rules (agents/guard.h) before an agent or a model sees
// them, and secrets are taken out of what agents stream and of every event
// before it reaches the log.
#include <spdlog/spdlog.h>

#include "agents/swarm.h"

extern char** environ;

namespace swarmfs {

using json = nlohmann::json;

namespace {
const std::string kTransfer = "transfer_to_";

void redact_strings(json& j, const Redactor& r) {
    if (j.is_string()) {
        const auto& s = j.get_ref<const std::string&>();
        if (!r.secret_spans(s).empty()) j = r.redact(s);
    } else if (j.is_structured()) {
        for (auto& v : j) redact_strings(v, r);
    }
}
}  // namespace

Status Swarm::init_guard() {
    auto g =
        opts_.guard.is_null() ? Result<Guard>(Guard::defaults()) : Guard::from_json(opts_.guard);
    if (!g) return make_error(EINVAL, "swarm file: " + g.error().message);
    guard_ = std::move(*g);
    // Providers' API keys are secrets whatever their variables are called.
    std::vector<std::string> keys;
    for (auto& [name, p] : opts_.providers.items()) {
        std::string var = p.value("api_key_env", "");
        if (const char* v = var.empty() ? nullptr : getenv(var.c_str()); v && *v) keys.push_back(v);
    }
    auto r = guard_.redactor(environ, keys);
    if (!r) return make_error(EINVAL, "swarm file: guard: " + r.error().message);
    redactor_ = std::make_shared<const Redactor>(std::move(*r));
    if (!redactor_->empty())
        log_->set_filter([r = redactor_](Event& e) { redact_strings(e.data, *r); });
    return {};
}

GuardContext Swarm::guard_context(const std::string& agent) const {
    GuardContext ctx;
    ctx.redactor = redactor_.get();
    if (agent.empty()) return ctx;  // a publication: no one's tools to judge by
    for (auto& t : tool_names()) ctx.all_tools.push_back(t);
    for (auto& n : agent_names()) ctx.all_tools.push_back(kTransfer + n);
    if (auto caps = caps_of(agent)) {
        for (auto& t : ctx.all_tools) {
            bool transfer = t.rfind(kTransfer, 0) == 0;
            if (transfer ? caps->allows(Capability::Kind::handoff, t.substr(kTransfer.size()))
                         : caps->allows(Capability::Kind::tool, t))
                ctx.held_tools.push_back(t);
        }
    }
    return ctx;
}

void Swarm::guard_event(const std::string& agent, const GuardMatch& m, GuardSource src,
                        json extra) {
    Event e;
    e.kind = "guard";
    e.data = {{"rule", m.rule},
              {"action", std::string(guard_action_name(m.action))},
              {"source", std::string(guard_source_name(src))},
              {"excerpt", m.excerpt}};
    if (!agent.empty()) e.data["agent"] = agent;
    if (!m.detail.empty()) e.data["detail"] = m.detail;
    if (extra.is_object()) e.data.update(extra);
    spdlog::warn("guard: rule {} ({}) fired on a {} for {}", m.rule, guard_action_name(m.action),
                 guard_source_name(src), agent.empty() ? "a topic" : agent);
    log_->post({std::move(e)});
}

void Swarm::guard_stop(const std::string& agent, const std::string& why) {
    if (agent.empty()) return;
    {
        std::lock_guard dl(declare_mu_);
        if (!has_agent(agent)) return;
        if (auto st = commit("agent_ctl", {{"agent", agent}, {"command", "stop"}}); !st) return;
    }
    cancel_agent_turns(agent, CancelKind::stop, why);
}

Status Swarm::guard_message(const std::string& agent, std::string_view text) {
    auto matches = guard_.scan(text, GuardSource::message, guard_context(agent));
    if (matches.empty()) return {};
    for (auto& m : matches) guard_event(agent, m, GuardSource::message, nullptr);
    const GuardMatch& top = matches.front();  // strongest first
    if (top.action == GuardAction::flag) return {};
    std::string why = "guard: rule " + top.rule + " " +
                      (top.action == GuardAction::stop ? "stopped the agent on" : "dropped") +
                      " this message";
    if (top.action == GuardAction::stop) guard_stop(agent, why);
    return report(agent, make_error(EPERM, why));
}

bool Swarm::guard_tool_result(Turn& t, const std::string& tool, ToolResult& res) {
    const std::string& agent = t.agent->name;
    auto matches = guard_.scan(res.content, GuardSource::tool_result, guard_context(agent));
    if (matches.empty()) return false;
    json where = {{"turn", t.id}, {"msg", t.msg.msg}, {"tool", tool}};
    for (auto& m : matches) guard_event(agent, m, GuardSource::tool_result, where);
    const GuardMatch& top = matches.front();
    if (top.action == GuardAction::flag) return false;
    // The model never sees a dropped result, only that it was dropped.
    res.ok = false;
    res.content = "the result of " + tool + " was withheld by the guard (rule " + top.rule + ")";
    if (top.action == GuardAction::drop) return false;
    std::string why = "guard: rule " + top.rule + " stopped the agent on a result of " + tool;
    report(agent, make_error(EPERM, why));
    guard_stop(agent, why);
    return true;
}

}  // namespace swarmfs
