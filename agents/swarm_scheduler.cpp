// The scheduler: which ready agent starts a turn when a worker is free.
// A worker here is a turn slot, not a thread: a turn waiting on a model
// (curl multi) or a child process (pidfd) holds a slot on the one event loop
// and no thread, so `workers` bounds how much runs at once (and so the load
// on providers and the machine), not how many threads exist. Ready agents
// wait in three quality-of-service classes with aging (ready_queue.h).
//
// The ready queue and the running turns belong to the event loop thread:
// everything here runs there, and other threads post to it. Each agent's
// queue of messages stays under that agent's own lock.
#include "agents/swarm.h"

namespace swarmfs {

using json = nlohmann::json;

std::string Agent::state() const {
    // A stopped agent says so at once, while its cancelled turn is still
    // being killed.
    if (stopped) return "stopped";
    if (!crashed.empty()) return "crashed";
    if (running > 0) return rate_waiting == running ? "waiting" : "running";
    if (budget_spent()) return "budget exhausted";
    if (!queue.empty()) return config.runnable() ? "queued" : "unconfigured";
    return "idle";
}

QueuedMessage* Agent::next_message() {
    if (running >= config.concurrency) return nullptr;
    // Conversations with an older message queued or running here wait for it.
    std::vector<int64_t> held;
    for (auto& m : queue) {
        bool blocked = m.conv && std::find(held.begin(), held.end(), m.conv) != held.end();
        if (!m.turn && !blocked) return &m;
        if (m.conv && !blocked) held.push_back(m.conv);
        // One turn at a time keeps the whole queue in order, inbox included.
        if (config.concurrency == 1) return nullptr;
    }
    return nullptr;
}

bool Agent::ready() const {
    if (stopped || !crashed.empty() || queue.empty() || !config.runnable() || budget_spent())
        return false;
    return const_cast<Agent*>(this)->next_message() != nullptr;
}

void Swarm::schedule(const std::string& name) {
    if (shut_down_) return;
    if (auto a = agent_ptr(name)) {
        Priority p;
        bool ready;
        {
            std::lock_guard lk(a->mu);
            ready = a->ready();
            p = a->config.priority;
        }
        if (ready && ready_.push(a->key, p, std::chrono::steady_clock::now()))
            ready_agents_[a->key] = a;
    }
    dispatch();
}

void Swarm::schedule_all() {
    if (shut_down_) return;
    auto now = std::chrono::steady_clock::now();
    for (auto& a : all_agents()) {
        std::lock_guard lk(a->mu);
        if (a->ready() && ready_.push(a->key, a->config.priority, now)) ready_agents_[a->key] = a;
    }
    dispatch();
}

void Swarm::dispatch() {
    auto now = std::chrono::steady_clock::now();
    while (running_turns_ < opts_.workers) {
        auto key = ready_.pop(now);
        if (!key) break;
        auto it = ready_agents_.find(*key);
        if (it == ready_agents_.end()) continue;
        auto a = std::move(it->second);
        ready_agents_.erase(it);
        // Its state may have changed while it waited (stopped, budget spent).
        if (!start_turn(a)) continue;
        // An agent allowed more than one turn at once queues again, behind
        // the others of its class.
        std::lock_guard lk(a->mu);
        if (a->ready() && ready_.push(a->key, a->config.priority, now)) ready_agents_[a->key] = a;
    }
    ready_size_ = ready_.size();
}

bool Swarm::start_turn(const std::shared_ptr<Agent>& ap) {
    Agent& a = *ap;
    auto t = std::make_shared<Turn>();
    {
        std::lock_guard lk(a.mu);
        if (a.removed || !a.ready()) return false;
        QueuedMessage* m = a.next_message();
        t->id = ++turn_seq_;
        m->turn = t->id;
        t->agent = ap;
        t->msg = *m;
        t->config = a.config;
        t->began = now_seconds();
        ++a.running;
        if (m->conv) {
            if (auto c = conv_ptr(m->conv)) {
                std::lock_guard cl(c->mu);
                t->conv_out = c->out;
                t->conv_vars = c->vars.dump();
            }
        }
        // No stream changes liveness here: the agent was active (ready) and
        // stays active (running).
    }
    count_start(a.name, t->msg);
    turns_[t->id] = t;
    ++running_turns_;
    // The wall-clock limit: past it the turn is cancelled as a crash. A
    // sandboxed process has one even when the agent sets no turn_timeout.
    double limit = t->config.turn_timeout;
    const char* which = "turn_timeout";
    if (!t->config.is_model()) {
        SandboxPolicy box = sandbox_policy(t->config);
        if (box.enabled && (limit <= 0 || box.limits.wall_seconds < limit)) {
            limit = box.limits.wall_seconds;
            which = "sandbox wall";
        }
    }
    if (limit > 0) {
        int64_t id = t->id;
        t->timer = loop_->after(limit, [this, id, limit, which] {
            if (Turn* x = live_turn(id)) {
                x->timer = 0;
                char buf[80];
                snprintf(buf, sizeof buf, "turn timed out after %g s (%s)", limit, which);
                cancel_turn(*x, CancelKind::crash, buf);
            }
        });
    }
    json d = {{"turn", t->id}, {"msg", t->msg.msg}, {"agent", a.name}};
    if (t->msg.conv) d["conv"] = t->msg.conv;
    Event started;
    started.kind = "turn_started";
    started.data = std::move(d);
    log_->post({std::move(started)});
    if (t->config.is_model())
        call_model(*t);
    else
        start_exec_turn(*t);
    return true;
}

}  // namespace swarmfs
