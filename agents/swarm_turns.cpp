// Turns: taking the next message of an agent, running it, and recording how
// it ended. Everything here runs on the event loop thread, so a running
// child holds no thread; state changes take the Swarm's mutex briefly.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <optional>
#include <utility>

#include "agents/swarm.h"

extern char** environ;

namespace swarmfs {

using json = nlohmann::json;

void Swarm::start_turn(Agent& a) {
    const QueuedMessage& m = a.queue.front();
    set_running(a, true);
    a.turn = ++turn_seq_;
    a.turn_began = now_seconds();
    count_start_locked(a, m);
    a.turn_output.clear();
    a.stderr_text.clear();
    a.stderr_shown = 0;
    a.cancel_reason.clear();
    a.cancel_kind = CancelKind::none;
    if (a.config.turn_timeout > 0) {
        // The wall-clock limit: past it the turn is cancelled as a crash.
        double limit = a.config.turn_timeout;
        std::string who = a.name;
        int64_t t = a.turn;
        a.turn_timer = loop_->after(limit, [this, who, t, limit] {
            std::lock_guard lk(mu_);
            Agent* x = find_agent(who);
            if (x && x->running && x->turn == t) {
                x->turn_timer = 0;
                char buf[64];
                snprintf(buf, sizeof buf, "turn timed out after %g s (turn_timeout)", limit);
                cancel_turn(*x, CancelKind::crash, buf);
            }
        });
    }
    a.handoff_to.clear();
    int64_t turn = a.turn;
    std::string name = a.name;

    json d = {{"turn", turn}, {"msg", m.msg}, {"agent", name}};
    if (m.conv) d["conv"] = m.conv;
    Event started;
    started.kind = "turn_started";
    started.data = d;
    log_->post({std::move(started)});
    a.call = 0;
    a.turn_messages = json::array();
    a.rounds = 0;
    a.tools_pending = 0;
    a.turn_tokens_in = a.turn_tokens_out = 0;
    a.turn_events.clear();
    if (a.config.is_model()) {
        start_model_turn(a);
        refresh_streams(a);
        return;
    }

    ExecSpec spec;
    spec.argv = a.config.exec;
    spec.cwd = opts_.workdir;
    spec.input = m.text;
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (auto& [k, v] : a.config.env) env[k] = v;
    env["SWARMFS_AGENT"] = name;
    env["SWARMFS_TURN"] = std::to_string(turn);
    env["SWARMFS_MSG"] = std::to_string(m.msg);
    env["SWARMFS_INSTRUCTIONS"] = a.config.instructions;
    for (auto& [k, v] : opts_.exec_env) env[k] = v;
    env.erase("SWARMFS_TOPIC");
    if (!m.topic.empty()) env["SWARMFS_TOPIC"] = m.topic;
    env.erase("SWARMFS_CONV");
    env.erase("SWARMFS_VARS");
    if (const Conversation* c = m.conv ? find_conv(m.conv) : nullptr) {
        env["SWARMFS_CONV"] = std::to_string(m.conv);
        env["SWARMFS_VARS"] = c->vars.dump();
    }
    for (auto& [k, v] : env) spec.env.push_back(k + "=" + v);

    ExecCallbacks cb;
    cb.on_stdout = [this, name, turn](std::string_view data) {
        in_turn(name, turn, [&] { on_turn_stdout(name, turn, data); });
    };
    cb.on_stderr = [this, name, turn](std::string_view data) {
        in_turn(name, turn, [&] { on_turn_stderr(name, turn, data); });
    };
    cb.on_exit = [this, name, turn](const ExitInfo& info) {
        // Not inside the process's own callback: finishing drops the process.
        loop_->post([this, name, turn, info] { finish_turn(name, turn, info.ok, info.reason); });
    };
    auto proc = ExecProcess::start(*loop_, std::move(spec), std::move(cb));
    if (!proc) {
        std::string why = proc.error().message;
        loop_->post([this, name, turn, why] { finish_turn(name, turn, false, why); });
        return;
    }
    a.proc = *proc;
    refresh_streams(a);
}

void Swarm::in_turn(const std::string& name, int64_t turn, const std::function<void()>& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        // A failure in the kernel's handling of one agent crashes that turn
        // (the supervisor takes over), never the loop or another agent.
        std::string why = std::string("internal error: ") + e.what();
        spdlog::error("agent {} turn {}: {}", name, turn, why);
        loop_->post([this, name, turn, why] { finish_turn(name, turn, false, why); });
    }
}

void Swarm::on_turn_stdout(const std::string& name, int64_t turn, std::string_view data) {
    std::lock_guard lk(mu_);
    Agent* a = find_agent(name);
    if (!a || a->turn != turn || !a->running) return;
    a->turn_output.append(data);
    a->output->append(data);
    if (Conversation* c = find_conv(a->queue.front().conv)) c->out->append(data);
}

void Swarm::on_turn_stderr(const std::string& name, int64_t turn, std::string_view data) {
    std::lock_guard lk(mu_);
    Agent* a = find_agent(name);
    if (!a || a->turn != turn || !a->running) return;
    a->stderr_text.append(data);
    // Complete lines go to err now; the whole text is logged with the turn.
    double ts = now_seconds();
    size_t nl;
    while ((nl = a->stderr_text.find('\n', a->stderr_shown)) != std::string::npos) {
        add_err_line(*a,
                     "turn " + std::to_string(turn) +
                         " stderr: " + a->stderr_text.substr(a->stderr_shown, nl - a->stderr_shown),
                     ts);
        a->stderr_shown = nl + 1;
    }
}

void Swarm::finish_turn(const std::string& name, int64_t turn, bool ok, std::string reason) {
    Event ev;
    std::vector<Event> batch, after;  // after: the supervisor's events
    std::optional<Event> forwarded, rerouted;
    std::shared_ptr<ExecProcess> proc;  // destroyed after the lock is released
    {
        std::lock_guard lk(mu_);
        Agent* a = find_agent(name);
        if (!a || a->turn != turn || !a->running) return;
        if (!a->cancel_reason.empty()) {
            ok = false;
            reason = a->cancel_reason;
        }
        QueuedMessage m = a->queue.front();
        const std::string& stderr_text = a->stderr_text;
        std::string unshown = stderr_text.substr(a->stderr_shown);
        double ts = now_seconds();
        if (!unshown.empty())
            add_err_line(*a, "turn " + std::to_string(turn) + " stderr: " + unshown, ts);
        if (!ok) add_err_line(*a, "turn " + std::to_string(turn) + ": " + reason, ts);

        ev.kind = ok ? "turn_finished" : "turn_failed";
        ev.ts = ts;
        ev.data = {{"turn", turn}, {"msg", m.msg}, {"agent", name}, {"output", a->turn_output}};
        if (m.conv) ev.data["conv"] = m.conv;
        if (!ok) ev.data["reason"] = reason;
        if (!stderr_text.empty()) ev.data["stderr"] = stderr_text;
        if (a->turn_timer) {
            loop_->cancel(a->turn_timer);
            a->turn_timer = 0;
        }
        // Supervision: a crash runs its message once more, then parks it.
        Verdict verdict = ok ? Verdict::done : supervise_locked(*a, m, reason, ts, after);
        if (verdict == Verdict::retry || verdict == Verdict::retry_uncounted)
            ev.data["retry"] = true;
        if (verdict == Verdict::retry_uncounted) ev.data["attempt_counted"] = false;
        if (verdict == Verdict::park) ev.data["parked"] = true;

        // A model's reply rarely ends with a newline; one is added so that
        // replies in output/out stay one per line for cat and tail.
        if (a->config.is_model() && !a->turn_output.empty() && a->turn_output.back() != '\n') {
            a->turn_output += '\n';
            a->output->append("\n");
            if (Conversation* c = m.conv ? find_conv(m.conv) : nullptr) c->out->append("\n");
            ev.data["output"] = a->turn_output;
        }
        count_turn_locked(*a, ok, a->turn_tokens_in, a->turn_tokens_out);
        set_running(*a, false);
        batch = std::exchange(a->turn_events, {});
        proc = std::move(a->proc);
        // A handoff continues the same turn on the new agent: the message is
        // forwarded in the same transaction as this turn's end.
        if (ok && !a->handoff_to.empty() && m.conv) {
            Conversation* c = find_conv(m.conv);
            if (c && find_agent(a->handoff_to)) {
                ev.data["handoff_to"] = a->handoff_to;
                Event fwd;
                fwd.kind = "message";
                fwd.ts = ts;
                fwd.data = {{"msg", ++msg_seq_},
                            {"agent", a->handoff_to},
                            {"conv", m.conv},
                            {"text", m.text},
                            {"handoff_from", name}};
                // A model's transfer_to_NAME moves the conversation here; an exec
                // agent's "handoff NAME" already did.
                if (c->agent != a->handoff_to) {
                    Event moved;
                    moved.kind = "conv_handoff";
                    moved.ts = ts;
                    moved.data = {{"conv", m.conv}, {"from", name}, {"to", a->handoff_to}};
                    rerouted = std::move(moved);
                }
                forwarded = std::move(fwd);
                ++c->handoffs_in_flight;
            }
        }
        a->handoff_to.clear();
        TurnRecord t{
            ok,     reason, a->turn_output, a->turn_messages, a->turn_tokens_in, a->turn_tokens_out,
            verdict};
        if (!t.messages.empty()) ev.data["messages"] = t.messages;
        if (t.tokens_in || t.tokens_out) {
            ev.data["tokens_in"] = t.tokens_in;
            ev.data["tokens_out"] = t.tokens_out;
        }
        finish_message(*a, m, t, false);
        a->turn_output.clear();
        a->stderr_text.clear();
        a->stderr_shown = 0;
        refresh_streams(*a);
    }
    // The output and the turn's end are one event, committed together: after
    // a crash a turn is either wholly there or runs again, never shown twice.
    batch.push_back(std::move(ev));
    for (auto& e : after) batch.push_back(std::move(e));
    if (rerouted) batch.push_back(std::move(*rerouted));
    if (forwarded) batch.push_back(std::move(*forwarded));
    log_->post(std::move(batch));
    if (!ok) spdlog::info("agent {} turn {} failed: {}", name, turn, reason);
    schedule(name);
}

void Swarm::cancel_turn(Agent& a, CancelKind kind, const std::string& reason) {
    if (!a.running || a.cancel_kind != CancelKind::none) return;
    a.cancel_kind = kind;
    if (a.config.is_model() || a.call) {
        // The request is aborted now; a running tool's answer is ignored.
        a.cancel_reason = reason;
        if (a.call)
            chat_->cancel(a.call);
        else if (a.tools_pending == 0) {
            std::string name = a.name;
            int64_t turn = a.turn;
            loop_->post([this, name, turn, reason] { finish_turn(name, turn, false, reason); });
        }
        return;
    }
    if (!a.proc) return;
    a.cancel_reason = reason;
    auto proc = a.proc;
    loop_->post([proc] { proc->kill(); });
}

}  // namespace swarmfs
