// Model turns: the agent's context goes to an OpenAI-compatible provider,
// streamed text goes to output/out as it arrives, tool calls run (in
// parallel) and their results go back to the model, until it answers with
// text or hands the conversation off (transfer_to_NAME). Everything runs on
// the event loop; a turn waiting on the network holds no thread.
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <utility>

#include "agents/swarm.h"

namespace swarmfs {

using json = nlohmann::json;

namespace {
const std::string kTransfer = "transfer_to_";

// Rough token count: the usual four characters a token.
int64_t estimate_tokens(const json& m) {
    int64_t chars = 0;
    if (m.contains("content") && m["content"].is_string())
        chars += m["content"].get<std::string>().size();
    if (m.contains("tool_calls")) chars += m["tool_calls"].dump().size();
    return chars / 4 + 4;
}

// The transcript entry as the provider wants it (no bookkeeping fields).
std::optional<json> wire_message(const json& m) {
    std::string role = m.value("role", "");
    if (role == "user") return json{{"role", "user"}, {"content", m.value("content", "")}};
    if (role == "assistant") {
        json w = {{"role", "assistant"}};
        if (m.contains("tool_calls") && !m["tool_calls"].empty()) {
            w["tool_calls"] = m["tool_calls"];
            w["content"] = m.contains("content") && m["content"].is_string() &&
                                   !m["content"].get<std::string>().empty()
                               ? m["content"]
                               : json(nullptr);
        } else {
            w["content"] = m.value("content", "");
        }
        return w;
    }
    if (role == "tool")
        return json{{"role", "tool"},
                    {"tool_call_id", m.value("tool_call_id", "")},
                    {"content", m.value("content", "")}};
    return std::nullopt;  // handoff and error records are ours, not the model's
}
}  // namespace

Status Swarm::check_references(const AgentConfig& c) const {
    if (!c.provider.empty() && !opts_.providers.contains(c.provider)) {
        std::string known;
        for (auto& [k, v] : opts_.providers.items()) known += (known.empty() ? "" : ", ") + k;
        return make_error(
            EINVAL, "config: unknown provider \"" + c.provider + "\" (providers: " +
                        (known.empty() ? "none; declare them in the swarm file" : known) + ")");
    }
    if (!c.provider.empty() && c.model.empty())
        return make_error(EINVAL, "config: a model agent needs \"model\"");
    if (tools_) {
        for (auto& t : c.tools)
            if (!tools_->get(t)) return make_error(EINVAL, "config: unknown tool \"" + t + "\"");
    }
    return {};
}

Result<ChatOptions> Swarm::provider_options(const AgentConfig& c) const {
    if (!opts_.providers.contains(c.provider))
        return make_error(EINVAL, "unknown provider " + c.provider);
    const json& p = opts_.providers[c.provider];
    ChatOptions o;
    o.base_url = p.value("base_url", "");
    std::string env = p.value("api_key_env", "");
    if (!env.empty()) {
        const char* key = getenv(env.c_str());
        if (key) o.api_key = key;
    }
    o.model = c.model;
    // One swarm file serves OpenAI, Ollama or a local server: the endpoint
    // and model can come from the environment, read at each request as the key is.
    auto from_env = [&](const char* key, std::string& field) {
        std::string var = p.value(key, "");
        if (var.empty()) return;
        if (const char* v = getenv(var.c_str()); v && *v) field = v;
    };
    from_env("base_url_env", o.base_url);
    from_env("model_env", o.model);
    o.connect_timeout = p.value("connect_timeout", o.connect_timeout);
    o.first_byte_timeout = p.value("first_byte_timeout", o.first_byte_timeout);
    o.idle_timeout = p.value("idle_timeout", o.idle_timeout);
    o.total_timeout = p.value("total_timeout", o.total_timeout);
    o.max_retries = p.value("max_retries", o.max_retries);
    o.backoff_initial = p.value("backoff_initial", o.backoff_initial);
    o.backoff_max = p.value("backoff_max", o.backoff_max);
    o.extra = c.params;
    return o;
}

json Swarm::model_context(const AgentConfig& cfg, const QueuedMessage& m,
                          const json& turn_messages) const {
    std::vector<json> history;
    std::vector<std::string> transcript;
    if (auto c = m.conv ? conv_ptr(m.conv) : nullptr) {
        std::lock_guard lk(c->mu);
        transcript = c->transcript;
    }
    if (m.conv) {
        // Parsed from a copy, so a long conversation does not hold its lock.
        for (auto& line : transcript) {
            json e = json::parse(line, nullptr, false);
            if (e.is_discarded()) continue;
            if (auto w = wire_message(e)) history.push_back(std::move(*w));
        }
        // The transcript holds finished turns; this one's message follows
        // (a forwarded one is already there, with the first agent's part).
        if (!m.forwarded) history.push_back({{"role", "user"}, {"content", m.text}});
    } else {
        history.push_back({{"role", "user"}, {"content", m.text}});
    }
    for (auto& e : turn_messages)
        if (auto w = wire_message(e)) history.push_back(std::move(*w));

    // Keep the system prompt and the latest exchanges: drop whole exchanges
    // (a user message and what answered it), oldest first, until it fits.
    json system;
    int64_t budget = cfg.context_window;
    if (!cfg.instructions.empty()) {
        system = {{"role", "system"}, {"content", cfg.instructions}};
        budget -= estimate_tokens(system);
    }
    int64_t total = 0;
    for (auto& h : history) total += estimate_tokens(h);
    size_t start = 0;
    while (total > budget) {
        size_t next = start + 1;
        while (next < history.size() && history[next].value("role", "") != "user") ++next;
        if (next >= history.size()) break;  // the latest exchange always stays
        for (size_t i = start; i < next; ++i) total -= estimate_tokens(history[i]);
        start = next;
    }
    json out = json::array();
    if (!system.is_null()) out.push_back(system);
    for (size_t i = start; i < history.size(); ++i) out.push_back(history[i]);
    return out;
}

json Swarm::model_tools(const std::string& agent, const CapabilitySet& caps) const {
    json tools = json::array();
    for (auto& t : tools_->names())
        if (caps.allows(Capability::Kind::tool, t))
            if (auto tool = tools_->get(t)) tools.push_back(openai_tool_json(tool->spec()));
    std::vector<std::string> targets;
    for (auto& c : caps.entries()) {
        if (c.kind != Capability::Kind::handoff) continue;
        if (!c.wildcard()) {
            targets.push_back(c.target);
            continue;
        }
        for (auto& n : agent_names())
            if (n != agent) targets.push_back(n);
    }
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    for (auto& h : targets) {
        std::string about = "continues this conversation";
        if (auto target = agent_ptr(h)) {
            std::lock_guard lk(target->mu);
            if (!target->config.description.empty()) about = target->config.description;
        }
        tools.push_back({{"type", "function"},
                         {"function",
                          {{"name", kTransfer + h},
                           {"description", "Hand the conversation to agent " + h + ": " + about},
                           {"parameters", {{"type", "object"}, {"properties", json::object()}}}}}});
    }
    return tools;
}

void Swarm::call_model(Turn& t) {
    if (!t.events.empty()) log_->post(std::exchange(t.events, {}));
    // Building the request (parsing the transcript, trimming it to the
    // window) is a worker's job, from copies; the turn stays the loop's.
    CapabilitySet caps;
    {
        std::lock_guard lk(t.agent->mu);
        caps = t.agent->caps;
    }
    pool_->submit([this, id = t.id, cfg = t.config, msg = t.msg, done = t.messages,
                   name = t.agent->name, caps = std::move(caps)] {
        json messages = model_context(cfg, msg, done);
        json tools = model_tools(name, caps);
        loop_->post([this, id, messages = std::move(messages), tools = std::move(tools)] {
            send_model_request(id, messages, tools);
        });
    });
}

void Swarm::send_model_request(int64_t id, json messages, json tools) {
    Turn* t = live_turn(id);
    // A turn cancelled while its request was being built has ended already.
    if (!t || shut_down_ || t->cancel_kind != CancelKind::none) return;
    auto opts = provider_options(t->config);
    if (!opts) return finish_turn(id, false, opts.error().message);
    Agent& a = *t->agent;
    // The provider's rate limits: the turn waits for capacity (holding its
    // worker, no thread) rather than failing; status says it is waiting.
    uint64_t estimate = 0;
    for (auto& m : messages) estimate += static_cast<uint64_t>(estimate_tokens(m));
    if (auto lim = limiters_.find(t->config.provider); lim != limiters_.end()) {
        auto wait = lim->second->acquire(estimate, std::chrono::steady_clock::now());
        if (wait.count() > 0) {
            if (!t->rate_waiting) {
                Event e;
                e.kind = "rate_limited";
                e.data = {{"agent", a.name},
                          {"turn", id},
                          {"msg", t->msg.msg},
                          {"provider", t->config.provider}};
                log_->post({std::move(e)});
                t->rate_waiting = true;
                std::lock_guard lk(a.mu);
                ++a.rate_waiting;
            }
            double secs = std::chrono::duration<double>(wait).count();
            loop_->after(secs,
                         [this, id, messages = std::move(messages), tools = std::move(tools)] {
                             send_model_request(id, messages, tools);
                         });
            return;
        }
        t->rate_estimate = estimate;
    }
    if (t->rate_waiting) {
        t->rate_waiting = false;
        std::lock_guard lk(a.mu);
        --a.rate_waiting;
    }
    t->call = chat_->start(
        std::move(*opts), std::move(messages), std::move(tools),
        [this, id](std::string_view delta) {
            in_turn(id, [&](Turn& x) { on_turn_stdout(x, delta); });
        },
        [this, id](const ChatResult& r) { in_turn(id, [&](Turn&) { on_model_done(id, r); }); },
        [this, id, name = a.name, msg = t->msg.msg](int attempt, double delay,
                                                    const std::string& reason) {
            Event e;
            e.kind = "model_retry";
            e.data = {{"agent", name},      {"turn", id},     {"msg", msg},
                      {"attempt", attempt}, {"delay", delay}, {"reason", reason}};
            log_->post({std::move(e)});
        });
}

void Swarm::on_model_done(int64_t id, const ChatResult& r) {
    if (shut_down_) return;  // left unfinished: it runs again at the next start
    Turn* t = live_turn(id);
    if (!t) return;
    Agent& a = *t->agent;
    const std::string& name = a.name;
    t->call = 0;
    if (auto lim = limiters_.find(t->config.provider); lim != limiters_.end())
        lim->second->settle(std::exchange(t->rate_estimate, 0),
                            static_cast<uint64_t>(r.prompt_tokens + r.completion_tokens),
                            std::chrono::steady_clock::now());
    t->tokens_in += r.prompt_tokens;
    t->tokens_out += r.completion_tokens;
    if (!t->cancel_reason.empty() || !r.ok)
        return finish_turn(id, false,
                           t->cancel_reason.empty() ? "model: " + r.error : t->cancel_reason);
    json assistant = {{"role", "assistant"}, {"agent", name}, {"content", r.content}};
    if (!r.tool_calls.empty()) {
        json calls = json::array();
        for (auto& c : r.tool_calls)
            calls.push_back({{"id", c.id},
                             {"type", "function"},
                             {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
        assistant["tool_calls"] = calls;
    }
    t->messages.push_back(assistant);
    if (r.tool_calls.empty()) return finish_turn(id, true, "");
    if (++t->rounds >= t->config.max_tool_rounds)
        return finish_turn(id, false,
                           "model: still calling tools after " + std::to_string(t->rounds) +
                               " rounds (max_tool_rounds)");
    // One tool message per call, in order; filled in as the calls answer.
    size_t base = t->messages.size();
    for (auto& c : r.tool_calls)
        t->messages.push_back({{"role", "tool"},
                               {"agent", name},
                               {"tool_call_id", c.id},
                               {"name", c.name},
                               {"content", ""}});
    t->tools_pending = static_cast<int>(r.tool_calls.size());
    const QueuedMessage& m = t->msg;
    // Checked against what the agent holds now: a pledge made during the
    // turn holds, and whatever a tool result told the model, it can call
    // only what was granted.
    CapabilitySet caps;
    {
        std::lock_guard lk(a.mu);
        caps = a.caps;
    }
    std::vector<std::pair<size_t, ToolResult>> immediate;
    for (size_t i = 0; i < r.tool_calls.size(); ++i) {
        const ToolCall& c = r.tool_calls[i];
        if (c.name.rfind(kTransfer, 0) == 0) {
            std::string target = c.name.substr(kTransfer.size());
            ToolResult res;
            if (!m.conv) {
                res.content = "handoffs need a conversation; this message came to the inbox";
            } else if (!caps.allows(Capability::Kind::handoff, target)) {
                res.content =
                    "capability refused: agent " + name + " does not hold handoff:" + target;
            } else if (!agent_ptr(target)) {
                res.content = "no agent " + target;
            } else {
                res.ok = true;
                if (t->handoff_to.empty()) t->handoff_to = target;
                res.content = "Transferred to " + target + ", who continues the conversation.";
            }
            if (!res.ok) {
                // The model is told, and so is whoever watches err and the log.
                std::string why = "handoff refused: " + c.name + ": " + res.content;
                refuse(name, "handoff:" + target, make_error(EPERM, why),
                       {{"turn", id}, {"msg", m.msg}});
            }
            immediate.emplace_back(base + i, res);
            continue;
        }
        if (!caps.allows(Capability::Kind::tool, c.name)) {
            std::string why = "capability refused: agent " + name + " does not hold tool:" + c.name;
            refuse(name, "tool:" + c.name, make_error(EPERM, why), {{"turn", id}, {"msg", m.msg}});
            immediate.emplace_back(base + i, ToolResult{false, why});
            continue;
        }
        auto tool = tools_->get(c.name);
        if (!tool) {
            immediate.emplace_back(
                base + i, ToolResult{false, "no tool " + c.name + " is available to " + name});
            continue;
        }
        json args = c.arguments.empty() ? json::object() : json::parse(c.arguments, nullptr, false);
        if (args.is_discarded()) {
            immediate.emplace_back(
                base + i, ToolResult{false, "the arguments are not valid JSON: " + c.arguments});
            continue;
        }
        size_t index = base + i;
        tool->call(
            std::move(args),
            [this, id, index](ToolResult res) {
                in_turn(id, [&](Turn&) { on_tool_done(id, index, std::move(res)); });
            },
            tool_context(name, &t->config));
    }
    for (auto& [index, res] : immediate) on_tool_done(id, index, std::move(res));
}

void Swarm::on_tool_done(int64_t id, size_t index, ToolResult res) {
    if (shut_down_) return;
    Turn* t = live_turn(id);
    if (!t || index >= t->messages.size()) return;
    json& msg = t->messages[index];
    if (guard_tool_result(*t, msg.value("name", ""), res)) return;  // it stopped the agent
    if (redactor_) res.content = redactor_->redact(res.content);
    msg["content"] = res.ok ? res.content : "error: " + res.content;
    if (!res.ok) msg["is_error"] = true;
    Event e;
    e.kind = "tool_called";
    e.data = {{"agent", t->agent->name},
              {"turn", id},
              {"msg", t->msg.msg},
              {"tool", msg.value("name", "")},
              {"ok", res.ok}};
    t->events.push_back(std::move(e));
    if (--t->tools_pending > 0) return;
    if (!t->cancel_reason.empty()) return finish_turn(id, false, t->cancel_reason);
    // A handoff: the target continues the same message; finish_turn forwards it.
    if (!t->handoff_to.empty()) return finish_turn(id, true, "");
    call_model(*t);
}

// ---------------------------------------------------------------- tools/

std::vector<std::string> Swarm::tool_names() const {
    return tools_ ? tools_->names() : std::vector<std::string>{};
}

Result<std::string> Swarm::tool_spec(const std::string& name) const {
    auto t = tools_ ? tools_->get(name) : nullptr;
    if (!t) return make_error(ENOENT, "no tool " + name);
    return spec_json(t->spec()).dump(2) + "\n";
}

void Swarm::call_tool(const std::string& name, std::string args_json,
                      std::function<void(Result<std::string>)> done) {
    run_tool("", name, std::move(args_json), std::move(done));
}

void Swarm::run_tool(const std::string& agent, const std::string& name, std::string args_json,
                     std::function<void(Result<std::string>)> done) {
    auto t = tools_ ? tools_->get(name) : nullptr;
    if (!t) return done(make_error(ENOENT, "no tool " + name));
    json args = json::parse(args_json, nullptr, false);
    if (args.is_discarded()) {
        report(agent, make_error(EINVAL, "tool " + name + ": arguments are not valid JSON"));
        return done(std::string("error: arguments are not valid JSON\n"));
    }
    std::optional<AgentConfig> cfg;
    if (auto a = agent.empty() ? nullptr : agent_ptr(agent)) {
        std::lock_guard lk(a->mu);
        cfg = a->config;
    }
    t->call(
        std::move(args),
        [this, agent, name, done](ToolResult r) {
            if (!r.ok) report(agent, make_error(EIO, "tool " + name + ": " + r.content));
            std::string text = r.ok ? r.content : "error: " + r.content;
            if (text.empty() || text.back() != '\n') text += "\n";
            done(std::move(text));
        },
        tool_context(agent, cfg ? &*cfg : nullptr));
}

}  // namespace swarmfs
