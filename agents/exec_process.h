#pragma once
// A child process on the event loop: input on its stdin, stdout and stderr
// delivered as they arrive, exit reported once both pipes are drained. All
// I/O is non-blocking, so a running child holds no thread. Starting the
// child (clone, pipes, process group, exec errors) is spawn()'s.
//
// Two uses, one class: a turn's or a tool's command gets its input and then
// EOF (ExecMode::one_shot); an MCP server keeps its stdin for a
// conversation over pipes (ExecMode::conversation), and when it exits the
// rest of its group is killed too, since an orphaned grandchild would keep
// the pipes open and the server half alive.
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

enum class ExecMode {
    // stdin closed once the input is written; when the child exits its group
    // is left alone (a turn may start a daemon on purpose; kill() and the
    // destructor reach it).
    one_shot,
    // stdin open for write() until close_stdin(); the group is killed when
    // the leader exits.
    conversation,
};

class ExecProcess : public std::enable_shared_from_this<ExecProcess> {
  public:
    // spec.input is written first. Must be called on the loop thread;
    // callbacks run there too. on_exit runs exactly once, after the child
    // exited and its stdout and stderr are drained (or 2 s later), unless
    // the object is destroyed first.
    static Result<std::shared_ptr<ExecProcess>> start(EventLoop& loop, ExecSpec spec,
                                                      ExecCallbacks cb,
                                                      ExecMode mode = ExecMode::one_shot);
    // Takes over a child started elsewhere (spawn() on a worker thread); on
    // the loop thread, like start().
    static std::shared_ptr<ExecProcess> attach(EventLoop& loop, Spawned s, std::string input,
                                               ExecCallbacks cb,
                                               ExecMode mode = ExecMode::one_shot);
    ~ExecProcess();  // kills the process group and reaps the child
    ExecProcess(const ExecProcess&) = delete;
    ExecProcess& operator=(const ExecProcess&) = delete;

    // Loop thread, conversation mode. Queues data for stdin; false once
    // stdin is closed (the child exited or closed its end).
    bool write(std::string_view data);
    void close_stdin();
    // Kills the whole process group; on_exit follows.
    void kill();
    pid_t pid() const { return child_.pid(); }
    bool exited() const { return exit_.has_value(); }
    size_t unwritten() const { return input_.size() - input_off_; }

  private:
    ExecProcess(EventLoop& loop, ExecCallbacks cb, ExecMode mode)
        : loop_(loop), cb_(std::move(cb)), mode_(mode) {}
    void arm();
    void flush_stdin();
    void on_output(UniqueFd& fd, bool is_stdout);
    void on_pidfd();
    void close_fd(UniqueFd& fd);
    void maybe_finish();

    EventLoop& loop_;
    ExecCallbacks cb_;
    ExecMode mode_;
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
