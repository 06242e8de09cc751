#include "agents/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace swarmfs {

std::string resolve_command(const std::string& argv0) {
    if (argv0.find('/') != std::string::npos) return access(argv0.c_str(), X_OK) == 0 ? argv0 : "";
    const char* path = getenv("PATH");
    std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= p.size()) {
        size_t end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        std::string dir = p.substr(start, end - start);
        if (dir.empty()) dir = ".";
        std::string cand = dir + "/" + argv0;
        struct stat st {};
        if (stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(cand.c_str(), X_OK) == 0)
            return cand;
        start = end + 1;
    }
    return "";
}

// ---- ChildProcess ----

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), reaped_(std::exchange(o.reaped_, false)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
    if (this != &o) {
        kill_and_reap();
        pid_ = std::exchange(o.pid_, -1);
        reaped_ = std::exchange(o.reaped_, false);
    }
    return *this;
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

void ChildProcess::kill_group(int sig) const {
    // The child made itself a group leader before exec, so -pid is its group.
    if (running()) ::kill(-pid_, sig);
}

void ChildProcess::kill_and_reap() {
    if (!running()) return;
    ::kill(-pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
}

namespace {
ExitInfo describe(const siginfo_t& info) {
    ExitInfo e;
    if (info.si_code == CLD_EXITED) {
        e.ok = info.si_status == 0;
        e.reason = "exit status " + std::to_string(info.si_status);
    } else {  // CLD_KILLED or CLD_DUMPED: si_status is the signal
        int sig = info.si_status & 0x7f;
        e.reason = "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    }
    return e;
}
}  // namespace

std::optional<ExitInfo> ChildProcess::reap_if_exited(bool kill_group_first) {
    if (!running()) return std::nullopt;
    siginfo_t info{};
    int flags = WEXITED | WNOHANG | (kill_group_first ? WNOWAIT : 0);
    if (waitid(P_PID, pid_, &info, flags) != 0 || info.si_pid == 0) return std::nullopt;
    if (kill_group_first) {
        ::kill(-pid_, SIGKILL);
        info = siginfo_t{};
        if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG) != 0 || info.si_pid == 0)
            return std::nullopt;
    }
    reaped_ = true;
    return describe(info);
}

// ---- spawn ----

namespace {

// Moves fd above 0-2, keeping close-on-exec. A server started with its
// stdio closed gets pipes at 0-2, and the child's dup2 onto 0-2 would
// then overwrite one pipe end with another.
bool above_stdio(UniqueFd& fd) {
    if (fd.get() > 2) return true;
    int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) return false;
    fd.reset(moved);
    return true;
}

bool make_pipe(UniqueFd& r, UniqueFd& w) {
    int fds[2];
    // Close-on-exec: the child gets only the ends dup2'd onto 0-2, and a
    // concurrent spawn on another thread never inherits ours.
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    r.reset(fds[0]);
    w.reset(fds[1]);
    return above_stdio(r) && above_stdio(w);
}

// What a child that did not reach exec writes to its status pipe.
struct ChildFailure {
    enum Step : int { kChdir = 1, kExec = 2 } step;
    int error;
};

// In the child, after fork: only async-signal-safe calls (a threaded parent
// may have left any lock held), no allocation, no return. Everything it
// reads was built before fork.
[[noreturn]] void child_fail(int status_fd, ChildFailure::Step step) {
    ChildFailure f{step, errno};
    ssize_t n = write(status_fd, &f, sizeof f);  // < PIPE_BUF: all or nothing
    (void)n;
    _exit(127);
}

[[noreturn]] void run_child(pid_t parent, const UniqueFd& in, const UniqueFd& out,
                            const UniqueFd& err, const UniqueFd& status, const char* path,
                            const char* cwd, char* const argv[], char* const envp[]) {
    setpgid(0, 0);
    // A child must not outlive a killed server and run a turn twice. (The
    // signal comes when the forking thread ends: that is the event loop's,
    // which lives as long as the server.)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(in.get(), 0);
    dup2(out.get(), 1);
    dup2(err.get(), 2);
    int st = status.get();
    if (cwd && chdir(cwd) != 0) child_fail(st, ChildFailure::kChdir);
    // Close everything but 0-2 and the status pipe (which closes itself at
    // exec): descriptors opened without O_CLOEXEC elsewhere in the server
    // (FUSE, sockets) must not leak into agents' commands.
    if (st > 3) syscall(SYS_close_range, 3, st - 1, 0);
    syscall(SYS_close_range, st + 1, ~0U, 0);
    execve(path, argv, envp);
    child_fail(st, ChildFailure::kExec);
}

}  // namespace

Result<Spawned> spawn(const ExecSpec& spec) {
    if (spec.argv.empty()) return make_error(EINVAL, "empty command");
    const std::string& name = spec.argv[0];
    std::string path = resolve_command(name);
    if (path.empty()) return make_error(ENOENT, "command not found: " + name);

    // Everything the child needs is built before fork. execve takes char*
    // for historical reasons but never writes through it.
    std::vector<char*> argv, envp;
    for (auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();

    UniqueFd in_r, in_w, out_r, out_w, err_r, err_w, st_r, st_w;
    if (!make_pipe(in_r, in_w) || !make_pipe(out_r, out_w) || !make_pipe(err_r, err_w) ||
        !make_pipe(st_r, st_w))
        return make_error(EMFILE, std::string("pipe: ") + strerror(errno));

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return make_error(EAGAIN, std::string("fork: ") + strerror(errno));
    if (pid == 0)
        run_child(parent, in_r, out_w, err_w, st_w, path.c_str(), cwd, argv.data(), envp.data());

    Spawned s;
    s.child = ChildProcess(pid);  // from here on, any return kills and reaps it
    st_w.reset();                 // else the read below never sees EOF
    in_r.reset();
    out_w.reset();
    err_w.reset();

    // EOF: the exec succeeded (the pipe closed on exec). A record: it failed.
    ChildFailure f{};
    ssize_t got;
    do got = read(st_r.get(), &f, sizeof f);
    while (got < 0 && errno == EINTR);
    if (got == sizeof f) {
        s.child.kill_and_reap();  // it is exiting already; nothing else is in its group
        int code = f.error == ENOENT ? ENOENT : EIO;
        if (f.step == ChildFailure::kChdir)
            return make_error(code, "cannot run " + name + ": working directory " + spec.cwd +
                                        ": " + strerror(f.error));
        return make_error(code, "cannot run " + name + ": " + strerror(f.error));
    }

    // The owners learn of the exit through the pidfd; without one they
    // would wait forever, so no pidfd is a failure to start.
    s.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!s.pidfd) {
        int e = errno;
        return make_error(e == ENOSYS ? ENOSYS : EIO, std::string("pidfd_open: ") + strerror(e));
    }
    // Non-blocking only now, and only our ends: the child's must stay
    // blocking (most programs do not expect EAGAIN on stdio).
    for (int fd : {in_w.get(), out_r.get(), err_r.get()})
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    s.in = std::move(in_w);
    s.out = std::move(out_r);
    s.err = std::move(err_r);
    return s;
}

}  // namespace swarmfs
