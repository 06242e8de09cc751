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
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "agents/agent.h"
#include "agents/byte_stream.h"
#include "agents/command_table.h"
#include "agents/event_loop.h"
#include "agents/guard.h"
#include "agents/metrics.h"
#include "agents/provider/chat_client.h"
#include "agents/ready_queue.h"
#include "agents/restart_intensity.h"
#include "agents/token_bucket.h"
#include "agents/tools/tool_registry.h"
#include "agents/worker_pool.h"
#include "vault/event_log.h"

namespace swarmfs {

struct SwarmOptions {
    std::string db_path = ":memory:";  // the event log (state/swarm.db)
    std::string workdir;               // where exec agents run; empty: current dir
    // The state folder (hidden from sandboxes) and the vault: a real folder
    // served as vault/ (default STATE/vault; created at open). Empty: none.
    std::string state_dir, vault_dir;
    // Where views/ is on the host (MNT/views): each agent's sandbox binds
    // views/NAME at /swarm. Empty (no mount): sandboxes have no /swarm.
    std::string views_dir;
    // The swarm file: every agent's config is in it, so sandboxes hide it.
    std::string swarm_file;
    // Where the swarm is served (canonical): sandboxes hide it wherever they
    // would show it, so /swarm (the view) is an agent's only way in.
    std::string mountpoint;
    // The swarm file's "sandbox": the policy of agents that set none.
    nlohmann::json sandbox = nullptr;
    // The swarm file's "guard" (agents/guard.h); null: the built-in rules.
    nlohmann::json guard = nullptr;
    nlohmann::json defaults = nlohmann::json::object();   // config of a mkdir'd agent
    nlohmann::json agents = nlohmann::json::object();     // declared at start (swarm.json)
    std::map<std::string, std::string> exec_env;          // added to every exec agent's environment
    nlohmann::json providers = nlohmann::json::object();  // name -> {base_url, api_key_env, ...}
    nlohmann::json tools = nlohmann::json::object();      // the swarm file's tools section
    // The first of the uids processes started for agents run as (uid_base
    // + the agent's number); used when the server runs as root.
    uid_t uid_base = 900000;
    int workers = 64;  // turns that may run at once (slots, not threads)
    int threads = 0;   // the worker pool for CPU work; 0: one per core, 2..8
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
    const std::string& vault_dir() const { return opts_.vault_dir; }

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

    // --- capabilities (swarm_caps.cpp). The *_as calls are made on an
    // agent's behalf (through its view): each is checked against what the
    // agent holds now, and a refusal is EPERM (EACCES for a file's mode), an
    // err line and a "refused" event in the log.
    Result<std::string> caps_text(const std::string& agent) const;  // agents/NAME/caps
    Result<CapabilitySet> caps_of(const std::string& agent) const;
    Result<UnveilMap> unveil_of(const std::string& agent) const;
    // The mode `agent` has on a vault path ("/kb/a.md", relative to the
    // vault; "/" is the vault itself): its unveil map, capped at r outside
    // the folders it owns; rw on the folders it owns.
    Mode vault_mode(const std::string& agent, const std::string& path) const;
    // The owner of a top-level vault folder; empty when it has none.
    std::string vault_owner(const std::string& folder) const;
    // Records a refusal made on agent's behalf: err line, log, and returns e.
    // extra: more fields for the event (a model turn's turn and msg).
    Error refuse(const std::string& agent, const std::string& capability, Error e,
                 const nlohmann::json& extra = nullptr);
    Status can_send_as(const std::string& from, const std::string& to);
    Status send_as(const std::string& from, const std::string& to, std::string text);
    Status check_publish_as(const std::string& from, const std::string& topic);
    Status publish_as(const std::string& from, const std::string& topic, std::string text);
    void call_tool_as(const std::string& agent, const std::string& tool, std::string args_json,
                      std::function<void(Result<std::string>)> done);
    // An agent's own ctl through its view: pledge and unveil only.
    Status agent_ctl_as(const std::string& agent, std::string_view commands);
    // A conversation's ctl through the view of the agent serving it: handoff only.
    Status conv_ctl_as(const std::string& agent, int64_t id, std::string_view commands);
    // Conversations whose current agent is `agent`.
    std::vector<int64_t> conversations_of(const std::string& agent) const;
    // Processes started for an agent run as a uid of its own (sandbox_uid),
    // so the file server knows on whose behalf a request comes.
    uid_t sandbox_uid(const std::string& agent) const;  // 0 when it has none
    std::optional<std::string> agent_for_uid(uid_t uid) const;

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
    Status enqueue(const std::string& agent, int64_t conv, std::string text,
                   const std::string& from = {});
    // A ctl write failed: EPERM is a refusal by capability, the rest errors.
    Status ctl_failed(const std::string& agent, const std::string& what, Error e);
    // Runs a tool for an agent (empty: the swarm's owner, tools/NAME/call).
    void run_tool(const std::string& agent, const std::string& name, std::string args_json,
                  std::function<void(Result<std::string>)> done);
    // The agent a message to conversation id goes to, or why it cannot.
    Result<std::string> conv_target(int64_t id);
    Status declare_agents();

    // The registry (a leaf lock: copies out a pointer, takes no other lock).
    std::shared_ptr<Agent> agent_ptr(const std::string& name) const;
    std::shared_ptr<Conversation> conv_ptr(int64_t id) const;
    // The agent serving conversation id now ("" before its first "agent").
    Result<std::string> conv_agent_name(int64_t id) const;
    std::vector<std::shared_ptr<Agent>> all_agents() const;
    std::vector<std::shared_ptr<Conversation>> all_convs() const;

    // scheduling (swarm_scheduler.cpp), on the loop thread
    void schedule(const std::string& name);
    void schedule_all();  // at start: every ready agent, by priority
    void dispatch();
    // Starts a turn on the agent's next message; false if it had none to start.
    bool start_turn(const std::shared_ptr<Agent>& a);
    // turns (swarm_turns.cpp), on the loop thread
    Turn* live_turn(int64_t id);
    void start_exec_turn(Turn& t);
    void on_spawned(int64_t turn, std::shared_ptr<Result<Spawned>> spawned);
    void on_turn_stdout(Turn& t, std::string_view data);
    void on_turn_stderr(Turn& t, std::string_view data);
    void finish_turn(int64_t turn, bool ok, std::string reason);
    // Runs a callback of a running turn; an exception crashes that turn.
    void in_turn(int64_t turn, const std::function<void(Turn&)>& fn);
    void cancel_turn(Turn& t, CancelKind kind, const std::string& reason);
    // Every running turn of the agent (from any thread: posted to the loop).
    void cancel_agent_turns(const std::string& agent, CancelKind kind, const std::string& reason);
    // model turns (swarm_model_turns.cpp)
    void call_model(Turn& t);
    void send_model_request(int64_t turn, nlohmann::json messages, nlohmann::json tools);
    void on_model_done(int64_t turn, const ChatResult& r);
    void on_tool_done(int64_t turn, size_t index, ToolResult r);
    // Built on a worker thread from copies: the turn itself is the loop's.
    nlohmann::json model_context(const AgentConfig& c, const QueuedMessage& m,
                                 const nlohmann::json& turn_messages) const;
    // The tools and transfer_to_NAME functions the agent holds now.
    nlohmann::json model_tools(const std::string& agent, const CapabilitySet& caps) const;
    Status check_references(const AgentConfig& c) const;
    Result<ChatOptions> provider_options(const AgentConfig& c) const;

    // helpers; the comment says which lock the caller holds
    void refresh_streams(Agent& a);                                   // a.mu
    void refresh_conv(Conversation& c);                               // c.mu
    void add_err_line(Agent& a, const std::string& line, double ts);  // a.mu
    Topic& topic(const std::string& name, double ts);  // topics_mu_; made on first use
    // How the supervisor settles a turn: done (finished, or failed for good:
    // a stop), retry (the message waits for the next attempt), park (it
    // crashed twice: failed for good, and said so).
    enum class Verdict { done, retry, retry_uncounted, park };
    struct TurnRecord {
        bool ok = false;
        std::string reason, output;
        nlohmann::json messages;  // transcript entries the turn added (model turns)
        int64_t tokens_in = 0, tokens_out = 0;
        Verdict verdict = Verdict::done;
    };
    // supervision (swarm_supervisor.cpp), with a.mu held; the one_for_all
    // siblings to restart are returned in `regroup`, for the caller to
    // cancel once it has let go of a.mu.
    Verdict supervise_locked(Agent& a, const QueuedMessage& m, CancelKind cancelled,
                             const std::string& reason, double ts, std::vector<Event>& events,
                             std::vector<std::pair<std::string, std::string>>& regroup);
    static RestartIntensity intensity_for(const AgentConfig& c);
    void finish_message(Agent& a, const QueuedMessage& m, const TurnRecord& t,
                        bool replaying);  // a.mu

    // command tables (swarm_commands.cpp)
    CommandTable swarm_commands();
    CommandTable agent_commands(const std::string& name);
    CommandTable conv_commands(int64_t id);
    CommandTable pledge_commands(const std::string& name);  // swarm_caps.cpp
    // The owner's grant changed: the pledge (if any) gives way to it (a.mu).
    static void apply_grant(Agent& a, const AgentConfig& before);
    // EINVAL when a folder cfg owns is another agent's.
    Status check_ownership(const std::string& name, const AgentConfig& cfg) const;

    SwarmOptions opts_;
    std::unique_ptr<EventLog> log_;
    std::unique_ptr<EventLoop> loop_;
    std::unique_ptr<WorkerPool> pool_;  // CPU work: spawning, building model requests
    std::unique_ptr<ToolRegistry> tools_;
    std::unique_ptr<ChatClient> chat_;
    // Per-provider rate limits (rpm, tpm), shared by every agent on it.
    std::map<std::string, std::unique_ptr<ProviderLimiter>> limiters_;
    std::shared_ptr<ByteStream> log_stream_ = std::make_shared<ByteStream>(true);
    double started_ = 0;

    // Which agents, conversations and topics exist. There is no lock over
    // the kernel's state as a whole: each agent and conversation has its own
    // (agent.h gives the order), and these maps are only looked up under them.
    mutable std::shared_mutex reg_mu_;
    std::unordered_map<std::string, std::shared_ptr<Agent>> agents_;
    std::map<int64_t, std::shared_ptr<Conversation>> convs_;
    uint64_t agent_key_seq_ = 0;
    std::unordered_map<uint64_t, std::string> agent_keys_;  // key -> name (sandbox uids)
    std::map<std::string, std::string> vault_owners_;       // top-level folder -> agent
    void index_owner(const std::string& agent,
                     const std::vector<std::string>& owns);  // reg_mu_ free
    mutable std::mutex topics_mu_;                           // topics_ and what is in them; a leaf
    std::map<std::string, Topic> topics_;
    // Serializes check-then-commit for declarations (agents, config, ctl) so
    // two racing writers cannot both pass validation. Taken before any other.
    std::mutex declare_mu_;

    // metrics (swarm_metrics.cpp)
    void init_metrics();
    void forget_agent_metrics(const std::string& name);
    void count_turn(const std::string& agent, double seconds, bool ok, int64_t tokens_in,
                    int64_t tokens_out);
    void count_start(const std::string& agent, const QueuedMessage& m);
    void count_restart(const std::string& agent);

    // sandboxes (swarm_sandbox.cpp)
    SandboxPolicy sandbox_policy(const AgentConfig& c) const;
    // What the agent's processes (its exec turns and the exec tools it
    // calls) run in; nullopt: the sandbox is off for it. agent empty: the
    // swarm's owner (tools/NAME/call), with no view.
    std::optional<SandboxSpec> sandbox_spec(const std::string& agent, const AgentConfig* c) const;
    // The part every sandbox shares: limits, the workdir, what it hides.
    SandboxSpec base_sandbox(const SandboxPolicy& p) const;
    // An MCP server's, shared by its callers: nobody's uid (as root), no
    // view, the entry's net and read paths.
    Result<std::function<Status(ExecSpec&)>> tool_server_sandbox(const ToolServerBox& b);
    uid_t tool_servers_ = 0;  // how many have a uid (uid_base + 1000000 + n)
    // Turns spec into the sandboxed command (argv, SWARMFS_MNT).
    // Secrets the server holds (providers' API keys, variables named like
    // secrets) are taken out of the environment, except those `keep` names
    // (the agent's own config env).
    Status sandbox_exec(const SandboxSpec& box, ExecSpec& spec,
                        const std::vector<std::string>& keep) const;
    ToolContext tool_context(const std::string& agent, const AgentConfig* c) const;
    void log_sandbox_off(const std::string& agent, const AgentConfig& c);
    SandboxPolicy default_sandbox_;

    // the guard (swarm_guard.cpp)
    Status init_guard();
    GuardContext guard_context(const std::string& agent) const;
    // Scans a message about to be queued for agent (empty: a publication).
    // EPERM when a rule drops it (stop also stops the agent).
    Status guard_message(const std::string& agent, std::string_view text);
    // Scans a tool's result; drop replaces it, stop cancels the turn and
    // stops the agent (returns true: the turn is over).
    bool guard_tool_result(Turn& t, const std::string& tool, ToolResult& res);
    void guard_event(const std::string& agent, const GuardMatch& m, GuardSource src,
                     nlohmann::json extra);
    void guard_stop(const std::string& agent, const std::string& why);
    Guard guard_;
    std::shared_ptr<const Redactor> redactor_;
    mutable MetricsRegistry metrics_;
    struct {
        CounterFamily *turns = nullptr, *tokens = nullptr, *restarts = nullptr;
        HistogramFamily *turn_seconds = nullptr, *wait_seconds = nullptr;
        GaugeFamily *queue = nullptr, *running = nullptr, *states = nullptr, *workers = nullptr,
                    *busy = nullptr, *ready = nullptr, *published = nullptr, *threads = nullptr;
    } m_;

    // The scheduler's and the turns' state: owned by the event loop thread.
    ReadyQueue ready_;  // agents ready for a worker
    std::unordered_map<uint64_t, std::shared_ptr<Agent>> ready_agents_;
    std::unordered_map<int64_t, std::shared_ptr<Turn>> turns_;
    // Mirrors for readers on other threads (metrics, status).
    std::atomic<int> running_turns_{0};
    std::atomic<size_t> ready_size_{0};

    std::atomic<int64_t> msg_seq_{0}, turn_seq_{0}, conv_seq_{0};
    std::atomic<bool> replaying_{false};
    std::atomic<bool> shut_down_{false};
};

}  // namespace swarmfs
