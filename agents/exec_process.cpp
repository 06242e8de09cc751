#include "agents/exec_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstring>

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

namespace {
bool make_pipe(UniqueFd& r, UniqueFd& w) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    r.reset(fds[0]);
    w.reset(fds[1]);
    return true;
}
void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }
}  // namespace

Result<std::shared_ptr<ExecProcess>> ExecProcess::start(EventLoop& loop, ExecSpec spec,
                                                        ExecCallbacks cb) {
    if (spec.argv.empty()) return make_error(EINVAL, "empty exec command");
    std::string path = resolve_command(spec.argv[0]);
    if (path.empty()) return make_error(ENOENT, "command not found: " + spec.argv[0]);

    // Everything the child needs is built before fork: after fork only
    // async-signal-safe calls are allowed in a threaded program.
    std::vector<char*> argv, envp;
    for (auto& a : spec.argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : spec.env) envp.push_back(e.data());
    envp.push_back(nullptr);

    UniqueFd in_r, in_w, out_r, out_w, err_r, err_w, st_r, st_w;
    if (!make_pipe(in_r, in_w) || !make_pipe(out_r, out_w) || !make_pipe(err_r, err_w) ||
        !make_pipe(st_r, st_w))
        return make_error(EMFILE, std::string("pipe: ") + strerror(errno));

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return make_error(EAGAIN, std::string("fork: ") + strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        // A child must not outlive a killed server and run a turn twice.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        dup2(in_r.get(), 0);
        dup2(out_w.get(), 1);
        dup2(err_w.get(), 2);
        int st = st_w.get();
        if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) {
            int e = errno;
            ssize_t n = write(st, &e, sizeof e);
            (void)n;
            _exit(127);
        }
        // Close everything but 0-2 and the status pipe (close-on-exec).
        if (st > 3) syscall(SYS_close_range, 3, st - 1, 0);
        syscall(SYS_close_range, st + 1, ~0U, 0);
        execve(path.c_str(), argv.data(), envp.data());
        int e = errno;
        ssize_t n = write(st, &e, sizeof e);
        (void)n;
        _exit(127);
    }
    st_w.reset();
    in_r.reset();
    out_w.reset();
    err_w.reset();
    int child_errno = 0;
    ssize_t got;
    do got = read(st_r.get(), &child_errno, sizeof child_errno);
    while (got < 0 && errno == EINTR);
    if (got == sizeof child_errno) {
        waitpid(pid, nullptr, 0);
        return make_error(child_errno == ENOENT ? ENOENT : EIO,
                          "cannot run " + spec.argv[0] + ": " + strerror(child_errno));
    }

    auto p = std::shared_ptr<ExecProcess>(new ExecProcess(loop, std::move(cb)));
    p->pid_ = pid;
    p->pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    p->in_ = std::move(in_w);
    p->out_ = std::move(out_r);
    p->err_ = std::move(err_r);
    p->input_ = std::move(spec.input);
    p->arm();
    return p;
}

ExecProcess::~ExecProcess() {
    for (UniqueFd* fd : {&in_, &out_, &err_, &pidfd_}) close_fd(*fd);
    if (!exited_ && pid_ > 0) {
        ::kill(-pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
}

void ExecProcess::arm() {
    std::weak_ptr<ExecProcess> weak = shared_from_this();
    for (UniqueFd* fd : {&in_, &out_, &err_}) set_nonblock(fd->get());
    loop_.watch(in_.get(), EPOLLOUT, [weak](uint32_t) {
        if (auto p = weak.lock()) p->on_stdin();
    });
    loop_.watch(out_.get(), EPOLLIN, [weak](uint32_t) {
        if (auto p = weak.lock()) p->on_output(p->out_, true);
    });
    loop_.watch(err_.get(), EPOLLIN, [weak](uint32_t) {
        if (auto p = weak.lock()) p->on_output(p->err_, false);
    });
    loop_.watch(pidfd_.get(), EPOLLIN, [weak](uint32_t) {
        if (auto p = weak.lock()) p->on_pidfd();
    });
}

void ExecProcess::close_fd(UniqueFd& fd) {
    if (!fd) return;
    loop_.unwatch(fd.get());
    fd.reset();
}

void ExecProcess::on_stdin() {
    while (input_off_ < input_.size()) {
        ssize_t n = write(in_.get(), input_.data() + input_off_, input_.size() - input_off_);
        if (n > 0) {
            input_off_ += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EAGAIN) return;
        break;  // EPIPE: the child does not want its input; that is its business
    }
    close_fd(in_);
}

void ExecProcess::on_output(UniqueFd& fd, bool is_stdout) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n > 0) {
            auto& fn = is_stdout ? cb_.on_stdout : cb_.on_stderr;
            if (fn) fn(std::string_view(buf, static_cast<size_t>(n)));
            if (finished_) return;
            continue;
        }
        if (n < 0 && errno == EAGAIN) return;
        if (n < 0 && errno == EINTR) continue;
        close_fd(fd);
        maybe_finish();
        return;
    }
}

void ExecProcess::on_pidfd() {
    siginfo_t info{};
    if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG) != 0 || info.si_pid == 0) return;
    exited_ = true;
    if (info.si_code == CLD_EXITED)
        wait_status_ = W_EXITCODE(info.si_status, 0);
    else
        wait_status_ = info.si_status & 0x7f;
    close_fd(pidfd_);
    close_fd(in_);
    // A grandchild may still hold stdout open; give the pipes a moment to
    // drain, then finish regardless.
    std::weak_ptr<ExecProcess> weak = shared_from_this();
    drain_timer_ = loop_.after(2.0, [weak] {
        if (auto p = weak.lock()) {
            p->drain_timer_ = 0;
            p->close_fd(p->out_);
            p->close_fd(p->err_);
            p->maybe_finish();
        }
    });
    maybe_finish();
}

void ExecProcess::kill() {
    if (!exited_ && pid_ > 0) ::kill(-pid_, SIGKILL);
}

void ExecProcess::maybe_finish() {
    if (finished_ || !exited_ || out_ || err_) return;
    finished_ = true;
    if (drain_timer_) loop_.cancel(drain_timer_);
    ExitInfo info;
    if (WIFEXITED(wait_status_)) {
        int code = WEXITSTATUS(wait_status_);
        info.ok = code == 0;
        info.reason = "exit status " + std::to_string(code);
    } else {
        int sig = WTERMSIG(wait_status_);
        info.reason = "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    }
    auto cb = std::move(cb_.on_exit);
    if (cb) cb(info);
}

}  // namespace swarmfs
