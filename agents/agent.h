#pragma once
// The kernel's in-memory state for agents, conversations and running turns.
// All of it but the turns is derived from the event log (Swarm::apply);
// each agent and conversation has its own lock, the streams theirs.
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/agent_config.h"
#include "agents/byte_stream.h"
#include "agents/event_loop.h"
#include "agents/exec_process.h"
#include "agents/guard.h"
#include "agents/restart_intensity.h"
#include "agents/token_bucket.h"
#include "vault/event_log.h"

namespace swarmfs {

struct QueuedMessage {
    int64_t msg = 0;
    int64_t conv = 0;  // 0: sent to the inbox, not a conversation
    std::string text;
    int attempts = 0;        // turns that crashed on it; the second crash parks it
    std::string topic;       // set when it came from events/TOPIC
    double queued_at = 0;    // when it was acknowledged (unix seconds)
    bool forwarded = false;  // handed over by another agent mid-turn
    int64_t turn = 0;        // the turn running it now; 0: waiting
};

// Why a running turn is being cancelled: a stop is the user's, a crash
// (the turn's time limit) counts against the restart intensity, a regroup
// (one_for_all: a sibling crashed) runs the message again without counting.
enum class CancelKind { none, stop, crash, regroup };

// The kernel's locks, in the only order they are ever taken:
//   Agent::mu  ->  Conversation::mu  ->  the Swarm's registry lock (a leaf).
// Never two agents' locks, never two conversations' at once. Turns (below)
// take no lock at all: the event loop thread owns them.
struct Agent {
    // Fixed at creation; read without the lock.
    std::string name;
    uint64_t key = 0;  // its name in the scheduler's ready queue
    std::shared_ptr<ByteStream> output = std::make_shared<ByteStream>();
    // active(), published for other agents' conversations (Conversation::
    // pending) to read without taking this agent's lock.
    std::atomic<bool> busy{false};

    mutable std::mutex mu;  // everything below
    AgentConfig config;
    // What it may do and see now: the config's grant, narrowed by its
    // pledges (pledged). A new grant from the owner replaces both.
    CapabilitySet caps;
    UnveilMap unveil;
    bool pledged = false;
    double created = 0, changed = 0;
    bool removed = false;  // taken out of the swarm; its running turns are being ended

    // Messages not yet finished, oldest first; those with `turn` set are running.
    std::deque<QueuedMessage> queue;
    bool stopped = false;
    int running = 0;       // turns running now (at most config.concurrency)
    int rate_waiting = 0;  // of those, held back by their provider's rate limit

    // Supervision.
    std::string crashed;  // why it gave up (past its restart intensity); empty: it did not
    RestartIntensity intensity;
    uint64_t restarts = 0, parked = 0;

    uint64_t turns = 0, failed = 0;
    int64_t tokens_in = 0, tokens_out = 0;
    std::string last_error;
    std::deque<std::string> err;  // newest last, bounded
    double err_mtime = 0;
    // Refusals are logged at most at this rate: an agent probing in a loop
    // must not fill the durable log. The next one logged counts the rest.
    TokenBucket refusal_budget{50, 10, TokenBucket::Clock::now()};
    uint64_t refusals_unlogged = 0;

    // The next message a turn may start on: the oldest waiting one whose
    // conversation has nothing older queued or running here, so each
    // conversation keeps its order however many turns run at once.
    QueuedMessage* next_message();
    // Has work that will produce output (readers of output should wait).
    bool active() const { return running > 0 || ready(); }
    // Could start a turn as soon as a worker is free.
    bool ready() const;
    bool budget_spent() const {
        return config.budget > 0 && tokens_in + tokens_out >= config.budget;
    }
    std::string state() const;
    size_t waiting() const { return queue.size() - static_cast<size_t>(running); }
};

// One running turn. Owned by the event loop thread (every callback of a
// turn runs there), so its streaming output takes no kernel lock at all.
struct Turn {
    int64_t id = 0;
    std::shared_ptr<Agent> agent;
    QueuedMessage msg;      // the message it runs (a copy)
    AgentConfig config;     // the agent's config when the turn began
    std::string conv_vars;  // the conversation's vars then (JSON), for exec turns
    double began = 0;
    std::shared_ptr<ByteStream> conv_out;  // the conversation's out; null for the inbox
    std::shared_ptr<ExecProcess> proc;
    bool sandboxed = false;  // proc is bubblewrap: its exit status says how the command ended
    std::string output;
    // Secrets are taken out of what the turn streams, even split across reads.
    std::unique_ptr<StreamRedactor> redact;
    std::string stderr_text;
    size_t stderr_shown = 0;  // bytes of stderr_text already in err
    std::string cancel_reason;
    CancelKind cancel_kind = CancelKind::none;
    EventLoop::TimerId timer = 0;  // the wall-clock limit, if any
    std::string handoff_to;        // set by "handoff NAME" on the turn's conversation
    // A model turn: the request in flight, the transcript entries it added,
    // tool calls outstanding, and its usage.
    uint64_t call = 0;
    nlohmann::json messages = nlohmann::json::array();
    int rounds = 0;
    int tools_pending = 0;
    bool rate_waiting = false;   // held back by its provider's rate limit
    uint64_t rate_estimate = 0;  // tokens taken from the provider's bucket for the call
    int64_t tokens_in = 0, tokens_out = 0;
    // Events not yet posted (tool_called): they go out with the next model
    // call or in the turn's final batch, so a handoff costs one commit, not two.
    std::vector<Event> events;
};

// An event topic (events/TOPIC): what was published to it, as a stream that
// never ends, like the log.
struct Topic {
    std::shared_ptr<ByteStream> stream = std::make_shared<ByteStream>(true);
    uint64_t published = 0;
    double changed = 0;
};

struct Conversation {
    int64_t id = 0;                                                    // fixed
    std::shared_ptr<ByteStream> out = std::make_shared<ByteStream>();  // fixed
    mutable std::mutex mu;                                             // everything below
    std::string agent;                                                 // empty: not routed yet
    bool closed = false;
    std::map<std::string, int> pending;              // agent -> messages queued or running there
    std::vector<std::string> transcript;             // JSON lines
    nlohmann::json vars = nlohmann::json::object();  // carried across handoffs
    // A turn that handed off has ended but the message it forwards is not
    // applied yet: out must stay live in between.
    int handoffs_in_flight = 0;
    int64_t tokens_in = 0, tokens_out = 0;
    double created = 0, changed = 0;
};

}  // namespace swarmfs
