#pragma once
// Starting a child process with its stdin, stdout and stderr on pipes: the
// part before ExecProcess (a turn, a tool call, an MCP server) takes the
// pipes onto the event loop; also used directly where a caller waits.
//
// The child gets its own process group (so a kill reaches its grandchildren
// too), dies with the server (PR_SET_PDEATHSIG: a killed server must not
// leave a turn running that a restart would run again), inherits no other
// descriptor of ours, and starts with default SIGPIPE, no handler of ours
// and an empty signal mask. Failures come back as an Error with an errno,
// never as an exception: a failure in the child before exec is reported to
// spawn(), so it can say "cannot run X: Permission denied" instead of a
// child that exits 127 for no visible reason.
//
// spawn() does not fork: the server's heap is large and fork copies its
// page tables, which capped exec turns at a third of what the machine can
// start. It clones the calling thread vfork-style (CLONE_VM | CLONE_VFORK,
// on a stack of its own, as posix_spawn does): the child borrows our memory
// until it execs, and only the calling thread waits for that.
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

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
    std::string reason;  // "exit status 3", "killed by signal 9 (Killed)"
};

// Finds argv0 on PATH as execvp would; empty if not found.
std::string resolve_command(const std::string& argv0);

// Owns a started child until it is reaped. Destroying it earlier kills the
// child's whole process group and reaps the leader, so no path (an error,
// an owner destroyed mid-run) leaves a stray process or a zombie behind.
// Once reaped it never signals again: the pid may then belong to a stranger.
class ChildProcess {
  public:
    ChildProcess() = default;
    explicit ChildProcess(pid_t pid) : pid_(pid) {}
    ChildProcess(ChildProcess&& o) noexcept;
    ChildProcess& operator=(ChildProcess&& o) noexcept;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess();

    // The pid it was started with (still readable after the reap, for logs).
    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0 && !reaped_; }
    // Sends sig to the whole process group; does nothing once reaped.
    void kill_group(int sig) const;
    // Without blocking: if the child has exited, reaps it and says how it
    // ended; nullopt while it runs. With kill_group_first the rest of its
    // group is killed before the reap, while the exited leader is still a
    // zombie whose pid (and so group id) cannot be reused yet.
    std::optional<ExitInfo> reap_if_exited(bool kill_group_first);
    // Blocking: SIGKILL to the group, then the reap. For teardown.
    void kill_and_reap();

  private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

// What spawn() hands over: the child and the parent's ends of its pipes,
// close-on-exec and non-blocking, ready for the event loop.
struct Spawned {
    ChildProcess child;
    UniqueFd in;     // write end of the child's stdin
    UniqueFd out;    // read end of its stdout
    UniqueFd err;    // read end of its stderr
    UniqueFd pidfd;  // readable once the child exits (pidfd_open)
};

// Starts spec.argv (searched on PATH) with spec.env in spec.cwd;
// spec.input is not used here. Returns once the exec has succeeded or
// failed, never leaving a half-started child. Errors: EINVAL (empty argv),
// ENOENT (command not found, or no such cwd), EMFILE (no pipes), EAGAIN
// (no process or stack), ENOSYS (no pidfd_open), EIO (any other exec or
// chdir failure).
//
// Safe to call from any number of threads at once, with one rule: the
// kernel sends the death signal when the *thread* that started the child
// ends, not the process. So call it only from threads that live as long as
// the server (the event loop's, the server's worker pool); a child started
// from a short-lived thread is killed when that thread returns.
Result<Spawned> spawn(const ExecSpec& spec);

}  // namespace swarmfs
