#pragma once
// A long-running child whose stdin stays open: a conversation over pipes
// (an MCP server speaking JSON-RPC on stdio). As ExecProcess: started by
// spawn() (its own process group, PR_SET_PDEATHSIG), non-blocking pipes
// watched by the event loop, a pidfd for the exit. Unlike it, input is
// written whenever the owner has some, and the whole group is killed when
// the leader exits (no orphaned grandchild keeps the pipes) or when the
// object is destroyed.
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agents/event_loop.h"
#include "agents/exec_process.h"
#include "agents/spawn.h"
#include "agents/unique_fd.h"
#include "vault/result.h"

namespace swarmfs {

class PersistentProcess : public std::enable_shared_from_this<PersistentProcess> {
  public:
    // spec.input, if any, is written first. Must be called on the loop
    // thread; callbacks run there. on_exit runs exactly once, after the
    // child exited and its stdout and stderr are drained (or 2 s later),
    // unless the object is destroyed first.
    static Result<std::shared_ptr<PersistentProcess>> start(EventLoop& loop, ExecSpec spec,
                                                            ExecCallbacks cb);
    ~PersistentProcess();  // kills the process group and reaps the child
    PersistentProcess(const PersistentProcess&) = delete;
    PersistentProcess& operator=(const PersistentProcess&) = delete;

    // Loop thread. Queues data for stdin; false once stdin is closed (the
    // child exited or closed its end).
    bool write(std::string_view data);
    void close_stdin();
    // Kills the whole process group; on_exit follows.
    void kill();
    pid_t pid() const { return child_.pid(); }
    bool exited() const { return exit_.has_value(); }
    size_t unwritten() const { return input_.size() - input_off_; }

  private:
    PersistentProcess(EventLoop& loop, ExecCallbacks cb) : loop_(loop), cb_(std::move(cb)) {}
    void arm();
    void flush_stdin();
    void on_output(UniqueFd& fd, bool is_stdout);
    void on_pidfd();
    void close_fd(UniqueFd& fd);
    void maybe_finish();

    EventLoop& loop_;
    ExecCallbacks cb_;
    ChildProcess child_;  // destroyed after the fds: kills the group if still running
    UniqueFd in_, out_, err_, pidfd_;
    std::string input_;
    size_t input_off_ = 0;
    bool want_out_ = false;         // EPOLLOUT armed on stdin
    std::optional<ExitInfo> exit_;  // set once the child is reaped
    bool finished_ = false;
    EventLoop::TimerId drain_timer_ = 0;
};

}  // namespace swarmfs
