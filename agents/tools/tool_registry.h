#pragma once
// The swarm's tools, from the "tools" section of swarm.json:
//
//   "tools": {
//     "wc":    {"exec": ["./bin/wc-tool"], "description": "Count words",
//               "parameters": {"type": "object", "properties": {...}},
//               "timeout": 30, "env": {"LANG": "C"}},
//     "every": {"mcp": ["npx", "-y", "@modelcontextprotocol/server-everything"],
//               "timeout": 30, "start_timeout": 60, "env": {...},
//               "tools": ["echo", "get-sum"]}
//   }
//
// An exec entry is one tool named by its key (see exec_tool.h). An mcp entry
// is a server: its tools are listed at load and registered as KEY__TOOL
// (two underscores; "every__echo"), because an OpenAI function name must
// match ^[a-zA-Z0-9_-]{1,64}$. Characters of a server's tool name outside
// that set become '_'; a tool whose full name would pass 64 characters, or
// collide, is skipped with a warning. "tools" (optional) keeps only the
// listed tools of the server. Keys are 1-64 of [A-Za-z0-9_-] without "__".
//
// Keys of an exec entry: exec (required), description, parameters (a JSON
// Schema whose top level is {"type": "object"}; default: no parameters),
// timeout (seconds, default 30), env. Of an mcp entry: mcp (required),
// timeout (per call, default 30), start_timeout (spawn to tool list,
// default 60), env, tools, and how its sandbox is made (see
// ToolServerBox): sandbox (false, or limits like an agent's), net (bool),
// read (absolute paths of host folders the server's program needs).
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/event_loop.h"
#include "agents/sandbox.h"
#include "agents/tools/tool.h"
#include "vault/result.h"

namespace swarmfs {

class McpServer;

// What an mcp entry asks of the sandbox its server runs in. An exec tool
// runs in its caller's sandbox; a server is shared by every caller, so it
// gets one of its own, which whoever owns the registry makes.
struct ToolServerBox {
    std::string name;
    std::optional<SandboxPolicy> policy;  // the entry's "sandbox"; none: the swarm's
    bool net = false;
    std::vector<std::string> read;
    std::vector<std::string> env_keys;  // the entry's own env: never scrubbed as secrets
};
// The wrap that turns the server's command into the sandboxed one (an empty
// function: run it as it is), or why it cannot be made.
using ToolServerSandbox =
    std::function<Result<std::function<Status(ExecSpec&)>>(const ToolServerBox&)>;

class ToolRegistry {
  public:
    ToolRegistry(EventLoop& loop, std::string workdir);
    ~ToolRegistry();  // stops the MCP servers
    ToolRegistry(const ToolRegistry&) = delete;
    ToolRegistry& operator=(const ToolRegistry&) = delete;

    // Replaces the tool set with the section's, all or nothing: on failure
    // the tools loaded before stay. EINVAL for a malformed section (unknown
    // key, no exec/mcp, bad schema...), ENOENT for a command that does not
    // exist, ETIMEDOUT/EPIPE/EIO for an MCP server that would not start or
    // list its tools in time. Blocks until the MCP servers have listed their
    // tools: call it from any thread but the loop's (EDEADLK there).
    Status load(const nlohmann::json& section);
    // Before load(): how MCP servers are sandboxed. Without it they run as
    // they are.
    void set_server_sandbox(ToolServerSandbox make) { server_sandbox_ = std::move(make); }
    std::vector<std::string> names() const;                    // sorted
    std::shared_ptr<Tool> get(const std::string& name) const;  // null if none

  private:
    void stop_servers(const std::vector<std::shared_ptr<McpServer>>& servers,
                      const std::string& why);

    EventLoop& loop_;
    std::string workdir_;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<Tool>> tools_;
    std::vector<std::shared_ptr<McpServer>> servers_;
    ToolServerSandbox server_sandbox_;
};

}  // namespace swarmfs
