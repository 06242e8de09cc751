#pragma once
// An agent's definition, as users write it in agents/NAME/config.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agents/capabilities.h"
#include "agents/ready_queue.h"
#include "agents/sandbox.h"
#include "vault/result.h"

namespace swarmfs {

struct AgentConfig {
    std::vector<std::string> exec;  // argv of an exec agent; empty: nothing to run
    std::string instructions;       // the system prompt
    std::string description;
    std::vector<std::string> handoffs;  // agents this one may hand a conversation to
    // A model agent: a provider from the swarm file and a model name.
    std::string provider, model;
    std::vector<std::string> tools;  // tools it may call (tools/NAME)
    int64_t context_window = 8192;   // tokens of transcript sent, oldest dropped first
    int64_t max_tool_rounds = 8;     // model calls per turn before giving up
    nlohmann::json params = nlohmann::json::object();  // extra request fields (temperature...)
    std::map<std::string, std::string> env;            // extra environment for exec
    // Scheduling and supervision.
    Priority priority = Priority::normal;  // which ready work a free worker starts first
    std::vector<std::string> subscribe;    // event topics (events/TOPIC) that start turns
    int64_t budget = 0;                    // tokens (in + out) it may spend; 0: no limit
    // Turns it may run at once. Inbox messages then run side by side; a
    // conversation's messages still run one after another, in order.
    int concurrency = 1;
    double turn_timeout = 0;     // seconds a turn may run; 0: no limit
    int64_t max_restarts = 5;    // restart intensity: at most this many
    double restart_period = 30;  // ... crashes in this many seconds
    // What it may do and see, granted by the swarm's owner (docs/capabilities.md).
    // tools and handoffs above are grants too: granted() folds them in.
    CapabilitySet caps;
    UnveilMap unveil;               // vault paths it may see: /vault/...
    std::vector<std::string> owns;  // top-level vault folders it owns (may write)
    // Where its processes run; unset: the swarm's "sandbox" (on by default).
    std::optional<SandboxPolicy> sandbox;

    // EINVAL with a reason a user can act on ("config: exec must be ...").
    static Result<AgentConfig> parse(std::string_view text);
    static Result<AgentConfig> from_json(const nlohmann::json& j);
    // For a document still being written: fails only when no continuation
    // could make it valid, so `echo '{bad' > config` fails at write(), where
    // the shell sees it, and a config written in several chunks does not.
    static Status check_partial(std::string_view text);
    nlohmann::json to_json() const;
    // Pretty JSON plus newline: what reading the config file shows.
    std::string to_text() const;
    // Every capability the config grants: caps, plus tool:T for each of
    // tools and handoff:H for each of handoffs.
    CapabilitySet granted() const;
    // unveil, plus rw on each folder it owns (unless unveil says otherwise).
    UnveilMap granted_unveil() const;
    bool is_model() const { return exec.empty() && !provider.empty(); }
    bool runnable() const { return !exec.empty() || (!provider.empty() && !model.empty()); }
};

// 1-64 of [A-Za-z0-9_.-], not starting with '.', not ending with '~'.
bool valid_agent_name(std::string_view name);

}  // namespace swarmfs
