// metrics: the swarm in the Prometheus text format. Counters and histograms
// are updated as turns end; gauges (queue depths, states) are read from the
// kernel's state just before each render, which is cheaper than tracking them.
#include "agents/swarm.h"

namespace swarmfs {

namespace {
template <class T>
T* must(Result<T*> r) {
    // Names are fixed here, so an error is a programming error caught by tests.
    return r ? *r : nullptr;
}
}  // namespace

void Swarm::init_metrics() {
    auto& r = metrics_;
    m_.turns = must(r.counter("swarmfs_turns_total", "Turns that ended, by agent and result.",
                              {"agent", "result"}));
    m_.turn_seconds = must(
        r.histogram("swarmfs_turn_seconds", "Wall-clock time of a turn, start to end.", {"agent"}));
    m_.wait_seconds = must(
        r.histogram("swarmfs_queue_wait_seconds",
                    "Time from a message's acknowledgement to the start of its turn.", {"agent"}));
    m_.tokens = must(r.counter("swarmfs_tokens_total", "Model tokens used, by agent and direction.",
                               {"agent", "direction"}));
    m_.restarts = must(r.counter("swarmfs_restarts_total",
                                 "Restarts by the supervisor after a crash.", {"agent"}));
    m_.queue = must(
        r.gauge("swarmfs_queue_depth", "Messages waiting for an agent (not running).", {"agent"}));
    m_.running = must(r.gauge("swarmfs_running_turns", "Turns running now, by agent.", {"agent"}));
    m_.states =
        must(r.gauge("swarmfs_agents", "Agents by state (idle, running, queued, ...).", {"state"}));
    m_.workers = must(r.gauge("swarmfs_workers", "Turn slots: the configured pool size."));
    m_.busy = must(r.gauge("swarmfs_workers_busy", "Turn slots in use."));
    m_.threads = must(r.gauge("swarmfs_worker_threads",
                              "Threads of the pool that starts processes and builds requests."));
    m_.ready = must(
        r.gauge("swarmfs_ready_queue_depth", "Agents ready to run, waiting for a free worker."));
    m_.published = must(
        r.gauge("swarmfs_topic_published", "Publications to an event topic so far.", {"topic"}));
    metrics_.add_collector([this] {
        // Copy under the kernel's lock, publish after it: with 10,000 agents
        // the gauge updates must not hold up every file system call.
        struct Row {
            std::string name, state;
            double waiting;
            int running;
        };
        std::vector<Row> rows;
        std::vector<std::pair<std::string, double>> published;
        double busy, ready;
        {
            auto agents = all_agents();
            rows.reserve(agents.size());
            for (auto& a : agents) {
                std::lock_guard lk(a->mu);
                rows.push_back(
                    {a->name, a->state(), static_cast<double>(a->waiting()), a->running});
            }
            std::lock_guard tl(topics_mu_);
            for (auto& [t, topic] : topics_)
                published.emplace_back(t, static_cast<double>(topic.published));
            busy = running_turns_;
            ready = static_cast<double>(ready_size_.load());
        }
        std::map<std::string, double> states = {
            {"idle", 0},    {"running", 0}, {"waiting", 0},          {"queued", 0},
            {"stopped", 0}, {"crashed", 0}, {"budget exhausted", 0}, {"unconfigured", 0}};
        for (auto& r : rows) {
            if (auto g = m_.queue->with({r.name})) (*g)->set(r.waiting);
            if (auto g = m_.running->with({r.name})) (*g)->set(r.running);
            states[r.state] += 1;
        }
        for (auto& [st, count] : states)
            if (auto g = m_.states->with({st})) (*g)->set(count);
        if (auto g = m_.workers->with({})) (*g)->set(opts_.workers);
        if (auto g = m_.threads->with({})) (*g)->set(pool_ ? pool_->size() : 0);
        if (auto g = m_.busy->with({})) (*g)->set(busy);
        if (auto g = m_.ready->with({})) (*g)->set(ready);
        for (auto& [t, n] : published)
            if (auto g = m_.published->with({t})) (*g)->set(n);
    });
}

void Swarm::forget_agent_metrics(const std::string& name) {
    m_.queue->remove({name});
    m_.running->remove({name});
}

void Swarm::count_turn(const std::string& agent, double seconds, bool ok, int64_t tokens_in,
                       int64_t tokens_out) {
    if (auto c = m_.turns->with({agent, ok ? "ok" : "failed"})) (*c)->inc();
    if (auto h = m_.turn_seconds->with({agent})) (*h)->observe(seconds);
    if (tokens_in)
        if (auto c = m_.tokens->with({agent, "in"})) (*c)->inc(static_cast<double>(tokens_in));
    if (tokens_out)
        if (auto c = m_.tokens->with({agent, "out"})) (*c)->inc(static_cast<double>(tokens_out));
}

void Swarm::count_start(const std::string& agent, const QueuedMessage& m) {
    if (m.queued_at > 0)
        if (auto h = m_.wait_seconds->with({agent}))
            (*h)->observe(std::max(0.0, now_seconds() - m.queued_at));
}

void Swarm::count_restart(const std::string& agent) {
    if (auto c = m_.restarts->with({agent})) (*c)->inc();
}

std::string Swarm::metrics_text() const { return metrics_.render(); }

}  // namespace swarmfs
