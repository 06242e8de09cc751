#pragma once
// One child process run for one turn: input on its stdin, stdout and stderr
// delivered as they arrive, exit reported once both pipes are drained. All
// I/O is non-blocking on the event loop, so a running child holds no thread.
#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agents/event_loop.h"
#include "agents/unique_fd.h"
#include "vault/result.h"

namespace swarmfs {

struct ExecSpec {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // KEY=VALUE, the whole environment
    std::string cwd;
    std::string input;
};

struct ExitInfo {
    bool ok = false;
    std::string reason;  // "exit status 3", "killed by signal 9"
};

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
    ~ExecProcess();
    // Kills the whole process group; on_exit follows.
    void kill();
    pid_t pid() const { return pid_; }

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
    pid_t pid_ = -1;
    UniqueFd in_, out_, err_, pidfd_;
    std::string input_;
    size_t input_off_ = 0;
    bool exited_ = false, finished_ = false;
    int wait_status_ = 0;
    EventLoop::TimerId drain_timer_ = 0;
};

// Finds argv0 on PATH as execvp would; empty if not found.
std::string resolve_command(const std::string& argv0);

}  // namespace swarmfs
