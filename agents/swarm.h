#pragma once
// The orchestration kernel: agents, conversations, turns, and the event log
// they are derived from. It knows nothing of FUSE: the file tree in fs/ and
// the unit tests drive it through this interface. Every call is thread-safe.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agents/agent.h"
#include "agents/byte_stream.h"
#include "agents/command_table.h"
#include "agents/event_loop.h"
#include "agents/metrics.h"
#include "agents/provider/chat_client.h"
#include "agents/ready_queue.h"
#include "agents/restart_intensity.h"
#include "agents/token_bucket.h"
#include "agents/tools/tool_registry.h"
#include "vault/event_log.h"

namespace swarmfs {

struct SwarmOptions {
    std::string db_path = ":memory:";  // the event log (state/swarm.db)
    std::string workdir;               // where exec agents run; empty: current dir
    nlohmann::json defaults = nlohmann::json::object();   // config of a mkdir'd agent
    nlohmann::json agents = nlohmann::json::object();     // declared at start (swarm.json)
    std::map<std::string, std::string> exec_env;          // added to every exec agent's environment
    nlohmann::json providers = nlohmann::json::object();  // name -> {base_url, api_key_env, ...}
    nlohmann::json tools = nlohmann::json::object();      // the swarm file's tools section
    int workers = 64;  // turns that may run at once (slots, not threads)
    double aging = 5;  // seconds of waiting that lift ready work one priority class
    // Supervisor groups: {NAME: {"strategy": "one_for_all", "agents": [...]}}.
    nlohmann::json supervisors = nlohmann::json::object();
};

// Parses a swarm file ({"defaults": {...}, "agents": {NAME: config}}) into options.
Status load_swarm_file(const std::string& path, SwarmOptions& opts);

struct Stamp {  // what `stat` shows of a kernel object
    uint64_t size = 0;
    double mtime = 0;
};

class Swarm {
  public:
    static Result<std::unique_ptr<Swarm>> open(SwarmOptions opts);
    ~Swarm();
    Swarm(const Swarm&) = delete;
    Swarm& operator=(const Swarm&) = delete;

    // --- the swarm
    Status ctl(std::string_view commands);  // root ctl
    std::string ctl_text() const;
    std::string status_text() const;
    std::string metrics_text() const;  // Prometheus text format
    std::shared_ptr<ByteStream> log_stream() const { return log_stream_; }
    double started() const { return started_; }

    // --- agents
    std::vector<std::string> agent_names() const;
    bool has_agent(const std::string& name) const;
    Status create_agent(const std::string& name, std::optional<nlohmann::json> config = {});
    // EBUSY while it has work, unless stopped (or force, as root ctl kill does).
    Status remove_agent(const std::string& name, bool force = false);
    Result<std::string> config_text(const std::string& name) const;
    Status set_config_text(const std::string& name, std::string_view text);
    // A config still being written: EINVAL once it cannot become valid.
    Status check_config_draft(const std::string& name, std::string_view text);
    Result<std::string> instructions(const std::string& name) const;
    Status set_instructions(const std::string& name, std::string_view text);
    // Changes one part of an agent's config (ctl's priority and budget).
    Status update_config(const std::string& name, const std::function<void(AgentConfig&)>& edit);
    // Whether a message could be sent now (checked at write, before close).
    Status can_send(const std::string& name);
    // Durable (fsync'd) before it returns success.
    Status send(const std::string& name, std::string text);
    Status agent_ctl(const std::string& name, std::string_view commands);
    Result<std::string> agent_ctl_text(const std::string& name) const;
    Result<std::string> agent_status(const std::string& name) const;
    Result<std::string> agent_err(const std::string& name) const;
    std::shared_ptr<ByteStream> agent_output(const std::string& name) const;
    Result<double> agent_changed(const std::string& name) const;

    // --- tools (tools/NAME/spec, tools/NAME/call)
    std::vector<std::string> tool_names() const;
    Result<std::string> tool_spec(const std::string& name) const;
    // Validates and runs; done gets the tool's text, or an error.
    void call_tool(const std::string& name, std::string args_json,
                   std::function<void(Result<std::string>)> done);

    // --- event topics (events/TOPIC): a publication is one durable event
    // and one message to every subscriber, all in one transaction.
    std::vector<std::string> topic_names() const;
    bool has_topic(const std::string& name) const;
    Status create_topic(const std::string& name);
    Status check_topic(const std::string& name);  // EINVAL for a bad name
    Status publish(const std::string& name, std::string text);
    std::shared_ptr<ByteStream> topic_stream(const std::string& name) const;
    Result<Stamp> topic_stamp(const std::string& name) const;

    // --- conversations
    Result<int64_t> create_conversation();
    std::vector<int64_t> conversation_ids() const;
    bool has_conversation(int64_t id) const;
    Status conv_ctl(int64_t id, std::string_view commands);
    Result<std::string> conv_ctl_text(int64_t id) const;
    Status conv_can_send(int64_t id);
    Status conv_send(int64_t id, std::string text);
    std::shared_ptr<ByteStream> conv_out(int64_t id) const;
    Result<std::string> conv_agent(int64_t id) const;
    Result<std::string> conv_context(int64_t id) const;
    Result<double> conv_changed(int64_t id) const;
    Result<std::string> conv_vars(int64_t id) const;
    Status set_conv_vars(int64_t id, std::string_view text);
    Status check_vars_draft(int64_t id, std::string_view text);

    // Records a user-facing error: the agent's err (when given), and the log.
    Error report(const std::string& agent, Error e);

    // Kills running turns and flushes the log. Called before unmount exits.
    void shutdown();
    // For tests: waits until no agent has work (or the timeout passes).
    bool wait_idle(double timeout_seconds);

  private:
    explicit Swarm(SwarmOptions opts);
    Status replay();
    void apply(const Event& e, bool replaying);  // the reducer: state from events
    void on_committed(const Event& e);
    Status commit(const std::string& kind, nlohmann::json data);
    Status enqueue(const std::string& agent, int64_t conv, std::string text);
    // The agent a message to conversation id goes to, or why it cannot.
    Result<std::string> conv_target(int64_t id);
    Status declare_agents();

    // turns (swarm_turns.cpp), all on the loop thread
    void schedule(const std::string& name);
    void schedule_all();  // at start: every ready agent, by priority
    void start_turn(Agent& a);
    void on_turn_stdout(const std::string& name, int64_t turn, std::string_view data);
    void on_turn_stderr(const std::string& name, int64_t turn, std::string_view data);
    void finish_turn(const std::string& name, int64_t turn, bool ok, std::string reason);
    // Runs a callback of a running turn; an exception crashes that turn.
    void in_turn(const std::string& name, int64_t turn, const std::function<void()>& fn);
    void cancel_turn(Agent& a, CancelKind kind, const std::string& reason);
    // model turns (swarm_model_turns.cpp)
    void start_model_turn(Agent& a);
    void call_model(Agent& a);
    void on_model_done(const std::string& name, int64_t turn, const ChatResult& r);
    void on_tool_done(const std::string& name, int64_t turn, size_t index, ToolResult r);
    nlohmann::json model_context(const Agent& a, const QueuedMessage& m) const;
    Status check_references(const AgentConfig& c) const;
    Result<ChatOptions> provider_options(const AgentConfig& c) const;

    // helpers, with mu_ held
    Agent* find_agent(const std::string& name);
    const Agent* find_agent(const std::string& name) const;
    Conversation* find_conv(int64_t id);
    const Conversation* find_conv(int64_t id) const;
    void refresh_streams(Agent& a);
    void refresh_conv(Conversation& c);
    void add_err_line(Agent& a, const std::string& line, double ts);
    Topic& topic(const std::string& name, double ts);  // made on first use
    // How the supervisor settles a turn: done (finished, or failed for good:
    // a stop), retry (the message stays at the head of the queue), park (it
    // crashed twice: failed for good, and said so).
    enum class Verdict { done, retry, retry_uncounted, park };
    struct TurnRecord {
        bool ok = false;
        std::string reason, output;
        nlohmann::json messages;  // transcript entries the turn added (model turns)
        int64_t tokens_in = 0, tokens_out = 0;
        Verdict verdict = Verdict::done;
    };
    // supervision (swarm_supervisor.cpp), with mu_ held
    Verdict supervise_locked(Agent& a, const QueuedMessage& m, const std::string& reason, double ts,
                             std::vector<Event>& events);
    // scheduling (swarm_scheduler.cpp), with mu_ held
    void dispatch_locked();
    static RestartIntensity intensity_for(const AgentConfig& c);
    void set_running(Agent& a, bool running);
    void finish_message(Agent& a, const QueuedMessage& m, const TurnRecord& t, bool replaying);

    // command tables (swarm_commands.cpp)
    CommandTable swarm_commands();
    CommandTable agent_commands(const std::string& name);
    CommandTable conv_commands(int64_t id);

    SwarmOptions opts_;
    std::unique_ptr<EventLog> log_;
    std::unique_ptr<EventLoop> loop_;
    std::unique_ptr<ToolRegistry> tools_;
    std::unique_ptr<ChatClient> chat_;
    // Per-provider rate limits (rpm, tpm), shared by every agent on it.
    std::map<std::string, std::unique_ptr<ProviderLimiter>> limiters_;
    std::shared_ptr<ByteStream> log_stream_ = std::make_shared<ByteStream>(true);
    double started_ = 0;

    mutable std::mutex mu_;  // agents_, convs_ and everything inside them
    std::unordered_map<std::string, std::unique_ptr<Agent>> agents_;
    std::map<int64_t, std::unique_ptr<Conversation>> convs_;
    std::map<std::string, Topic> topics_;
    // Serializes check-then-commit for declarations (agents, config, ctl) so
    // two racing writers cannot both pass validation. Never held with mu_.
    std::mutex declare_mu_;

    // metrics (swarm_metrics.cpp)
    void init_metrics();
    void forget_agent_metrics(const std::string& name);
    void count_turn_locked(const Agent& a, bool ok, int64_t tokens_in, int64_t tokens_out);
    void count_start_locked(const Agent& a, const QueuedMessage& m);
    void count_restart_locked(const Agent& a);
    mutable MetricsRegistry metrics_;
    struct {
        CounterFamily *turns = nullptr, *tokens = nullptr, *restarts = nullptr;
        HistogramFamily *turn_seconds = nullptr, *wait_seconds = nullptr;
        GaugeFamily *queue = nullptr, *running = nullptr, *states = nullptr, *workers = nullptr,
                    *busy = nullptr, *ready = nullptr, *published = nullptr;
    } m_;

    ReadyQueue ready_;  // agents ready for a worker (guarded by mu_)
    std::unordered_map<uint64_t, std::string> agent_keys_;
    uint64_t agent_key_seq_ = 0;
    int running_turns_ = 0;

    std::atomic<int64_t> msg_seq_{0}, turn_seq_{0}, conv_seq_{0};
    std::atomic<bool> replaying_{false};
    std::atomic<bool> shut_down_{false};
};

}  // namespace swarmfs
