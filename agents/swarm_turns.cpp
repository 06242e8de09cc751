// Turns: running one, and recording how it ended. Everything here runs on
// the event loop thread, which owns the running turns: a turn's output
// streams to output/out without any kernel lock, a running child holds no
// thread, and starting the child is a worker's job (fork and exec are the
// costly part of a short turn). Agent and conversation state change under
// their own locks, briefly.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <optional>
#include <utility>

#include "agents/swarm.h"

extern char** environ;

namespace swarmfs {

using json = nlohmann::json;

Turn* Swarm::live_turn(int64_t id) {
    auto it = turns_.find(id);
    return it == turns_.end() ? nullptr : it->second.get();
}

void Swarm::start_exec_turn(Turn& t) {
    // What the worker needs, copied: the turn itself stays the loop's.
    struct Job {
        int64_t turn;
        std::string agent;
        QueuedMessage msg;
        AgentConfig config;
        std::string vars, workdir;
        std::map<std::string, std::string> extra;
        std::optional<SandboxSpec> box;
    };
    auto job =
        std::make_shared<Job>(Job{t.id, t.agent->name, t.msg, t.config, t.conv_vars, opts_.workdir,
                                  opts_.exec_env, sandbox_spec(t.agent->name, &t.config)});
    t.sandboxed = job->box.has_value();
    pool_->submit([this, job] {
        if (shut_down_) return;  // the turn runs again at the next start
        ExecSpec spec;
        spec.argv = job->config.exec;
        spec.cwd = job->workdir;
        std::map<std::string, std::string> env;
        for (char** e = environ; e && *e; ++e) {
            std::string_view kv = *e;
            auto eq = kv.find('=');
            if (eq != std::string_view::npos)
                env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
        }
        for (auto& [k, v] : job->config.env) env[k] = v;
        env["SWARMFS_AGENT"] = job->agent;
        env["SWARMFS_TURN"] = std::to_string(job->turn);
        env["SWARMFS_MSG"] = std::to_string(job->msg.msg);
        env["SWARMFS_INSTRUCTIONS"] = job->config.instructions;
        for (auto& [k, v] : job->extra) env[k] = v;
        env.erase("SWARMFS_TOPIC");
        if (!job->msg.topic.empty()) env["SWARMFS_TOPIC"] = job->msg.topic;
        env.erase("SWARMFS_CONV");
        env.erase("SWARMFS_VARS");
        if (job->msg.conv) {
            env["SWARMFS_CONV"] = std::to_string(job->msg.conv);
            env["SWARMFS_VARS"] = job->vars.empty() ? "{}" : job->vars;
        }
        spec.env.reserve(env.size());
        for (auto& [k, v] : env) spec.env.push_back(k + "=" + v);
        std::shared_ptr<Result<Spawned>> spawned;
        std::vector<std::string> keep;
        for (auto& [k, v] : job->config.env) keep.push_back(k);
        if (auto st = job->box ? sandbox_exec(*job->box, spec, keep) : Status{}; !st)
            spawned = std::make_shared<Result<Spawned>>(st.error());
        else
            spawned = std::make_shared<Result<Spawned>>(spawn(spec));
        loop_->post([this, turn = job->turn, spawned] { on_spawned(turn, spawned); });
    });
}

void Swarm::on_spawned(int64_t id, std::shared_ptr<Result<Spawned>> spawned) {
    Turn* t = live_turn(id);
    // Ended meanwhile (the agent was removed): the child dies with `spawned`.
    if (!t || shut_down_) return;
    if (!*spawned) return finish_turn(id, false, spawned->error().message);
    if (t->cancel_kind != CancelKind::none) return finish_turn(id, false, t->cancel_reason);
    ExecCallbacks cb;
    cb.on_stdout = [this, id](std::string_view data) {
        in_turn(id, [&](Turn& x) { on_turn_stdout(x, data); });
    };
    cb.on_stderr = [this, id](std::string_view data) {
        in_turn(id, [&](Turn& x) { on_turn_stderr(x, data); });
    };
    cb.on_exit = [this, id, boxed = t->sandboxed](const ExitInfo& info) {
        std::string reason = boxed ? sandboxed_exit_reason(info.reason) : info.reason;
        // Not inside the process's own callback: finishing drops the process.
        loop_->post([this, id, ok = info.ok, reason] { finish_turn(id, ok, reason); });
    };
    t->proc = ExecProcess::attach(*loop_, std::move(**spawned), t->msg.text, std::move(cb));
}

void Swarm::in_turn(int64_t id, const std::function<void(Turn&)>& fn) {
    auto found = turns_.find(id);
    if (found == turns_.end()) return;
    std::shared_ptr<Turn> t = found->second;  // fn may end the turn
    try {
        fn(*t);
    } catch (const std::exception& e) {
        // A failure in the kernel's handling of one agent crashes that turn
        // (the supervisor takes over), never the loop or another agent.
        std::string why = std::string("internal error: ") + e.what();
        spdlog::error("agent {} turn {}: {}", t->agent->name, id, why);
        loop_->post([this, id, why] { finish_turn(id, false, why); });
    }
}

void Swarm::on_turn_stdout(Turn& t, std::string_view data) {
    std::string clean;
    if (redactor_ && !redactor_->empty()) {
        if (!t.redact) t.redact = std::make_unique<StreamRedactor>(redactor_);
        clean = t.redact->feed(data);
        data = clean;
    }
    if (data.empty()) return;
    t.output.append(data);
    t.agent->output->append(data);
    if (t.conv_out) t.conv_out->append(data);
}

void Swarm::on_turn_stderr(Turn& t, std::string_view data) {
    t.stderr_text.append(data);
    // Complete lines go to err now; the whole text is logged with the turn.
    double ts = now_seconds();
    std::lock_guard lk(t.agent->mu);
    size_t nl;
    while ((nl = t.stderr_text.find('\n', t.stderr_shown)) != std::string::npos) {
        std::string line = t.stderr_text.substr(t.stderr_shown, nl - t.stderr_shown);
        if (redactor_) line = redactor_->redact(line);
        add_err_line(*t.agent, "turn " + std::to_string(t.id) + " stderr: " + line, ts);
        t.stderr_shown = nl + 1;
    }
}

void Swarm::finish_turn(int64_t id, bool ok, std::string reason) {
    auto found = turns_.find(id);
    if (found == turns_.end()) return;
    std::shared_ptr<Turn> tp = std::move(found->second);
    turns_.erase(found);
    --running_turns_;
    Turn& t = *tp;
    Agent& a = *t.agent;
    if (t.timer) loop_->cancel(t.timer);
    // What the redactor held back (the start of what might have been a secret).
    if (t.redact) {
        std::string rest = t.redact->finish();
        t.redact.reset();
        if (!rest.empty() && !a.removed) {
            t.output += rest;
            a.output->append(rest);
            if (t.conv_out) t.conv_out->append(rest);
        }
    }
    if (!t.cancel_reason.empty()) {
        ok = false;
        reason = t.cancel_reason;
    }
    const QueuedMessage& m = t.msg;
    Event ev;
    std::vector<Event> batch = std::exchange(t.events, {});
    std::vector<Event> after;  // the supervisor's
    std::vector<std::pair<std::string, std::string>> regroup;
    std::optional<Event> forwarded, rerouted;
    double ts = now_seconds();
    {
        std::lock_guard lk(a.mu);
        if (t.rate_waiting) --a.rate_waiting;
        --a.running;
        if (a.removed) return;  // its work went with it
        std::string unshown = t.stderr_text.substr(t.stderr_shown);
        if (!unshown.empty())
            add_err_line(a, "turn " + std::to_string(id) + " stderr: " + unshown, ts);
        if (!ok) add_err_line(a, "turn " + std::to_string(id) + ": " + reason, ts);

        ev.kind = ok ? "turn_finished" : "turn_failed";
        ev.ts = ts;
        ev.data = {{"turn", id}, {"msg", m.msg}, {"agent", a.name}};
        if (m.conv) ev.data["conv"] = m.conv;
        if (!ok) ev.data["reason"] = reason;
        if (!t.stderr_text.empty()) ev.data["stderr"] = t.stderr_text;
        // Supervision: a crash runs its message once more, then parks it.
        Verdict verdict =
            ok ? Verdict::done : supervise_locked(a, m, t.cancel_kind, reason, ts, after, regroup);
        if (verdict == Verdict::retry || verdict == Verdict::retry_uncounted)
            ev.data["retry"] = true;
        if (verdict == Verdict::retry_uncounted) ev.data["attempt_counted"] = false;
        if (verdict == Verdict::park) ev.data["parked"] = true;

        // A model's reply rarely ends with a newline; one is added so that
        // replies in output/out stay one per line for cat and tail.
        if (t.config.is_model() && !t.output.empty() && t.output.back() != '\n') {
            t.output += '\n';
            a.output->append("\n");
            if (t.conv_out) t.conv_out->append("\n");
        }
        ev.data["output"] = t.output;
        // A handoff continues the same turn on the new agent: the message is
        // forwarded in the same transaction as this turn's end.
        if (ok && !t.handoff_to.empty() && m.conv && agent_ptr(t.handoff_to)) {
            if (auto c = conv_ptr(m.conv)) {
                std::lock_guard cl(c->mu);
                ev.data["handoff_to"] = t.handoff_to;
                Event fwd;
                fwd.kind = "message";
                fwd.ts = ts;
                fwd.data = {{"msg", ++msg_seq_},
                            {"agent", t.handoff_to},
                            {"conv", m.conv},
                            {"text", m.text},
                            {"handoff_from", a.name}};
                // A model's transfer_to_NAME moves the conversation here; an
                // exec agent's "handoff NAME" already did.
                if (c->agent != t.handoff_to) {
                    Event moved;
                    moved.kind = "conv_handoff";
                    moved.ts = ts;
                    moved.data = {{"conv", m.conv}, {"from", a.name}, {"to", t.handoff_to}};
                    rerouted = std::move(moved);
                }
                forwarded = std::move(fwd);
                ++c->handoffs_in_flight;
            }
        }
        TurnRecord rec{ok, reason, t.output, t.messages, t.tokens_in, t.tokens_out, verdict};
        if (!rec.messages.empty()) ev.data["messages"] = rec.messages;
        if (rec.tokens_in || rec.tokens_out) {
            ev.data["tokens_in"] = rec.tokens_in;
            ev.data["tokens_out"] = rec.tokens_out;
        }
        finish_message(a, m, rec, false);
        refresh_streams(a);
    }
    count_turn(a.name, ts - t.began, ok, t.tokens_in, t.tokens_out);
    for (auto& [sib, why] : regroup) cancel_agent_turns(sib, CancelKind::regroup, why);
    // The output and the turn's end are one event, committed together: after
    // a crash a turn is either wholly there or runs again, never shown twice.
    batch.push_back(std::move(ev));
    for (auto& e : after) batch.push_back(std::move(e));
    if (rerouted) batch.push_back(std::move(*rerouted));
    if (forwarded) batch.push_back(std::move(*forwarded));
    log_->post(std::move(batch));
    if (!ok) spdlog::info("agent {} turn {} failed: {}", a.name, id, reason);
    // The process goes last, after the lock (its destructor may reap).
    tp->proc.reset();
    schedule(a.name);
}

void Swarm::cancel_turn(Turn& t, CancelKind kind, const std::string& reason) {
    if (t.cancel_kind != CancelKind::none) return;
    t.cancel_kind = kind;
    t.cancel_reason = reason;
    if (t.config.is_model()) {
        // The request is aborted now; a running tool's answer is ignored.
        if (t.call)
            chat_->cancel(t.call);
        else if (t.tools_pending == 0)
            loop_->post([this, id = t.id, reason] { finish_turn(id, false, reason); });
        return;
    }
    // An exec turn whose child is still being started ends when it arrives.
    if (t.proc) t.proc->kill();
}

void Swarm::cancel_agent_turns(const std::string& agent, CancelKind kind,
                               const std::string& reason) {
    auto run = [this, agent, kind, reason] {
        std::vector<int64_t> ids;
        for (auto& [id, t] : turns_)
            if (t->agent->name == agent) ids.push_back(id);
        for (int64_t id : ids)
            if (Turn* t = live_turn(id)) cancel_turn(*t, kind, reason);
    };
    if (loop_->in_loop())
        run();
    else
        loop_->post(run);
}

}  // namespace swarmfs
