// The scheduler: which ready agent starts a turn when a worker is free.
// A worker here is a turn slot, not a thread: a turn waiting on a model
// (curl multi) or a child process (pidfd) holds a slot on the one event loop
// and no thread, so `workers` bounds how much runs at once (and so the load
// on providers and the machine), not how many threads exist. Ready agents
// wait in three quality-of-service classes with aging (ready_queue.h).
#include "agents/swarm.h"

namespace swarmfs {

void Swarm::schedule(const std::string& name) {
    std::lock_guard lk(mu_);
    if (shut_down_) return;
    if (Agent* a = find_agent(name); a && a->ready())
        ready_.push(a->key, a->config.priority, std::chrono::steady_clock::now());
    dispatch_locked();
}

void Swarm::schedule_all() {
    std::lock_guard lk(mu_);
    if (shut_down_) return;
    auto now = std::chrono::steady_clock::now();
    for (auto& [name, a] : agents_)
        if (a->ready()) ready_.push(a->key, a->config.priority, now);
    dispatch_locked();
}

void Swarm::dispatch_locked() {
    auto now = std::chrono::steady_clock::now();
    while (running_turns_ < opts_.workers) {
        auto key = ready_.pop(now);
        if (!key) return;
        auto it = agent_keys_.find(*key);
        if (it == agent_keys_.end()) continue;  // removed while it waited
        // Its state may have changed while it waited (stopped, budget spent).
        if (Agent* a = find_agent(it->second); a && a->ready()) start_turn(*a);
    }
}

void Swarm::set_running(Agent& a, bool running) {
    if (a.running == running) return;
    a.running = running;
    running_turns_ += running ? 1 : -1;
}

}  // namespace swarmfs
