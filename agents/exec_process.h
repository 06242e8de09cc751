#pragma once
// One child process run for one turn: input on its stdin, stdout and stderr
// delivered as they arrive, exit reported once both pipes are drained. All
// I/O is non-blocking on the event loop, so a running child holds no thread.
// Starting the child (clone, pipes, process group, exec errors) is spawn()'s.
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agents/event_loop.h"
#include "agents/spawn.h"
#include "agents/unique_fd.h"
#include "vault/result.h"

namespace swarmfs {

struct ExecCallbacks {
    std::function<void(std::string_view)> on_stdout;
    std::function<void(std::string_view)> on_stderr;
    std::function<void(const ExitInfo&)> on_exit;  // exactly once
};

class ExecProcess : public std::enable_shared_from_this<ExecProcess> {
  public:
    // Must be called on the loop thread; callbacks run there too.
    static Result<std::shared_ptr<ExecProcess>> start(EventLoop& loop, ExecSpec spec,
                                                      ExecCallbacks cb);
    // Takes over a child started elsewhere (spawn() on a worker thread); on
    // the loop thread, like start().
    static std::shared_ptr<ExecProcess> attach(EventLoop& loop, Spawned s, std::string input,
                                               ExecCallbacks cb);
    ~ExecProcess();
    // Kills the whole process group; on_exit follows.
    void kill();
    pid_t pid() const { return child_.pid(); }

  private:
    ExecProcess(EventLoop& loop, ExecCallbacks cb) : loop_(loop), cb_(std::move(cb)) {}
    void arm();
    void on_stdin();
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
    std::optional<ExitInfo> exit_;  // set once the child is reaped
    bool finished_ = false;
    EventLoop::TimerId drain_timer_ = 0;
};

}  // namespace swarmfs
