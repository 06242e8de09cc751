#pragma once
// A tool: something a model (OpenAI function calling) or a user (through
// tools/NAME/call) may call with JSON arguments, answered asynchronously on
// the event loop. A running tool holds no thread.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "vault/result.h"

namespace swarmfs {

struct ToolSpec {
    std::string name, description;
    nlohmann::json parameters;  // a JSON Schema object ({"type": "object", ...})
};

struct ToolResult {
    bool ok = false;
    std::string content;  // text for the model; on !ok, the error text the model sees
};

struct ExecSpec;

// On whose behalf a tool runs. A process a tool starts for an agent runs
// in that agent's sandbox: `wrap` turns the command into the sandboxed one,
// which also shows the tool's own `read` folders (read-only).
struct ToolContext {
    std::string agent;  // empty: the swarm's owner (tools/NAME/call)
    std::function<Status(ExecSpec&, const std::vector<std::string>& read)>
        wrap;  // null: run the command as it is
};

class Tool {
  public:
    virtual ~Tool() = default;
    virtual const ToolSpec& spec() const = 0;
    // Validates args against spec().parameters first (a bad call: ok=false
    // with a precise message, the tool never runs), then runs. done is called
    // exactly once, on the loop thread, never before call returns. May be
    // called from any thread.
    virtual void call(nlohmann::json args, std::function<void(ToolResult)> done,
                      ToolContext ctx = {}) = 0;
};

// What tools/NAME/spec shows: {"name", "description", "parameters"}.
nlohmann::json spec_json(const ToolSpec& spec);
// The entry for the "tools" list of an OpenAI chat request:
// {"type": "function", "function": {"name", "description", "parameters"}}.
nlohmann::json openai_tool_json(const ToolSpec& spec);

// Arguments as models and users send them: JSON text. Empty or blank text
// means {} (models send "" for a tool without parameters). EINVAL with the
// parse error's position otherwise.
Result<nlohmann::json> parse_tool_arguments(std::string_view text);

// ^[a-zA-Z0-9_-]{1,64}$: what OpenAI accepts as a function name, and safe as
// a file name under tools/.
bool valid_tool_name(std::string_view name);

}  // namespace swarmfs
