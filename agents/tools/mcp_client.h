#pragma once
// A Model Context Protocol server run as a child, spoken to over stdio:
// newline-delimited JSON-RPC 2.0 (MCP "stdio" transport).
//
//   start:  initialize {protocolVersion, capabilities: {}, clientInfo}
//           → result; notifications/initialized; tools/list (every page,
//           following nextCursor)
//   call:   tools/call {name, arguments} → result.content joined as text;
//           result.isError → ok=false
//
// Responses are matched to requests by id, so any number of calls may be in
// flight and answered in any order. Requests from the server are answered
// (ping → {}, anything else → "method not found"); notifications are logged.
// Its stderr goes to spdlog (debug) and its last lines into error messages.
// A server that dies fails every pending call with the reason and is started
// again by the next call, at most max_restarts times per restart_window.
// Everything runs on the event loop thread; nothing here blocks.
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/event_loop.h"
#include "agents/exec_process.h"
#include "agents/tools/tool.h"
#include "vault/result.h"

namespace swarmfs {

struct McpServerConfig {
    std::string name;                        // the swarm.json key; used in messages
    std::vector<std::string> argv;           // argv[0] with a '/' is relative to workdir
    std::map<std::string, std::string> env;  // on top of the server's; plus SWARMFS_TOOL=name
    std::string workdir;
    double call_timeout = 30;   // seconds per tools/call (a Tool may pass its own)
    double start_timeout = 60;  // seconds from spawn to the handshake (and listing) done
    int max_restarts = 3;
    double restart_window = 60;
    // Turns the command into the sandboxed one at every (re)start; null:
    // run it as it is.
    std::function<Status(ExecSpec&)> wrap;
};

struct McpToolInfo {
    std::string name, description;
    nlohmann::json input_schema;  // as the server sent it
};

// The protocol version we ask for; the server may answer an older one.
inline constexpr const char* kMcpProtocolVersion = "2025-06-18";

class McpServer : public std::enable_shared_from_this<McpServer> {
  public:
    static std::shared_ptr<McpServer> create(EventLoop& loop, McpServerConfig config);
    ~McpServer();  // kills the child if still running; use stop() first
    McpServer(const McpServer&) = delete;
    McpServer& operator=(const McpServer&) = delete;

    // Loop thread. Spawns the server, handshakes and lists its tools; done
    // runs once with the tools or the reason it failed (including the time
    // limit, start_timeout).
    void start(std::function<void(Result<std::vector<McpToolInfo>>)> done);
    // Loop thread. done runs once, on the loop thread. timeout <= 0: the
    // config's call_timeout.
    void call(const std::string& tool, nlohmann::json arguments, double timeout,
              std::function<void(ToolResult)> done);
    // Loop thread. Fails everything pending with why and kills the child;
    // later calls fail. Idempotent.
    void stop(const std::string& why = "");
    // Any thread: SIGKILL to the child's process group, for a destructor
    // that cannot reach a stopped loop. The loop (if it runs) sees the exit.
    void kill_now();

    const McpServerConfig& config() const { return c_; }
    EventLoop& loop() const { return loop_; }
    // Loop thread: what the server answered to initialize.
    const std::string& protocol_version() const { return protocol_version_; }
    const nlohmann::json& server_info() const { return server_info_; }
    size_t pending_requests() const { return pending_.size(); }

  private:
    enum class State { idle, starting, ready, dead, stopped };
    using Reply = std::function<void(Result<nlohmann::json>)>;

    McpServer(EventLoop& loop, McpServerConfig c) : loop_(loop), c_(std::move(c)) {}
    void launch(bool list_tools);
    void on_initialized(uint64_t gen, Result<nlohmann::json> r, bool list_tools);
    void list_page(uint64_t gen, std::string cursor, std::shared_ptr<std::vector<McpToolInfo>> acc,
                   int page);
    void become_ready();
    void fail_start(const Error& e);
    void on_exit(uint64_t gen, const ExitInfo& info);
    void on_stdout(uint64_t gen, std::string_view data);
    void on_stderr(uint64_t gen, std::string_view data);
    void handle_line(const std::string& line);
    void answer_request(const nlohmann::json& msg);
    int64_t request(const std::string& method, nlohmann::json params, Reply reply);
    void send(const nlohmann::json& msg);
    void fail_all(const Error& e);
    bool may_restart(std::string& why);
    std::string stderr_hint() const;

    EventLoop& loop_;
    McpServerConfig c_;
    std::vector<std::string> env_;
    State state_ = State::idle;
    uint64_t generation_ = 0;
    std::shared_ptr<ExecProcess> proc_;
    std::atomic<pid_t> pid_{-1};
    std::string rx_, err_partial_;
    std::deque<std::string> err_tail_;
    int64_t next_id_ = 1;
    std::map<int64_t, Reply> pending_;
    std::vector<std::function<void(Status)>> waiting_;  // calls waiting for ready
    std::function<void(Result<std::vector<McpToolInfo>>)> start_done_;
    EventLoop::TimerId start_timer_ = 0;
    std::deque<double> restarts_;
    std::string last_exit_;
    std::string protocol_version_;
    nlohmann::json server_info_;
};

// A tool of an MCP server as the swarm sees it. spec.name is the swarm's
// name (SERVER__TOOL), remote_name the server's. validate=false leaves
// argument checking to the server (for an inputSchema check_schema cannot
// enforce, e.g. one with $ref).
std::shared_ptr<Tool> make_mcp_tool(std::shared_ptr<McpServer> server, ToolSpec spec,
                                    std::string remote_name, double timeout, bool validate);

// The text of a tools/call result: text items joined by newlines, other
// items described ("[image image/png]"), structuredContent if nothing else.
ToolResult mcp_result_to_tool_result(const nlohmann::json& result);

}  // namespace swarmfs
