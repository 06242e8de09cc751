#include "agents/tools/persistent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstring>

namespace swarmfs {

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

Result<std::shared_ptr<PersistentProcess>> PersistentProcess::start(EventLoop& loop, ExecSpec spec,
                                                                    ExecCallbacks cb) {
    if (spec.argv.empty()) return make_error(EINVAL, "empty command");
    std::string path = resolve_command(spec.argv[0]);
    if (path.empty()) return make_error(ENOENT, "command not found: " + spec.argv[0]);

    // Built before fork: only async-signal-safe calls after it.
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
            ssize_t n = ::write(st, &e, sizeof e);
            (void)n;
            _exit(127);
        }
        if (st > 3) syscall(SYS_close_range, 3, st - 1, 0);
        syscall(SYS_close_range, st + 1, ~0U, 0);
        execve(path.c_str(), argv.data(), envp.data());
        int e = errno;
        ssize_t n = ::write(st, &e, sizeof e);
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
        std::string what = "cannot run " + spec.argv[0];
        if (!spec.cwd.empty() && child_errno != ENOENT) what += " in " + spec.cwd;
        return make_error(child_errno == ENOENT ? ENOENT : EIO,
                          what + ": " + strerror(child_errno));
    }

    auto p = std::shared_ptr<PersistentProcess>(new PersistentProcess(loop, std::move(cb)));
    p->pid_ = pid;
    p->pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    p->in_ = std::move(in_w);
    p->out_ = std::move(out_r);
    p->err_ = std::move(err_r);
    p->input_ = std::move(spec.input);
    p->arm();
    return p;
}

PersistentProcess::~PersistentProcess() {
    for (UniqueFd* fd : {&in_, &out_, &err_, &pidfd_}) close_fd(*fd);
    if (drain_timer_) loop_.cancel(drain_timer_);
    if (!exited_ && pid_ > 0) {
        ::kill(-pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
}

void PersistentProcess::arm() {
    std::weak_ptr<PersistentProcess> weak = shared_from_this();
    for (UniqueFd* fd : {&in_, &out_, &err_}) set_nonblock(fd->get());
    // No EPOLLOUT until a write would block; EPOLLERR (the child closed its
    // end) is reported regardless.
    loop_.watch(in_.get(), 0, [weak](uint32_t events) {
        auto p = weak.lock();
        if (!p) return;
        if (events & (EPOLLERR | EPOLLHUP)) p->close_stdin();
        else p->flush_stdin();
    });
    loop_.watch(out_.get(), EPOLLIN, [weak](uint32_t) {
        if (auto p = weak.lock()) p->on_output(p->out_, true);
    });
    loop_.watch(err_.get(), EPOLLIN, [weak](uint32_t) {
        if (auto p = weak.lock()) p->on_output(p->err_, false);
    });
    if (pidfd_)
        loop_.watch(pidfd_.get(), EPOLLIN, [weak](uint32_t) {
            if (auto p = weak.lock()) p->on_pidfd();
        });
    if (!input_.empty()) flush_stdin();
}

bool PersistentProcess::write(std::string_view data) {
    if (!in_) return false;
    input_.append(data);
    flush_stdin();
    return static_cast<bool>(in_);
}

void PersistentProcess::flush_stdin() {
    while (in_ && input_off_ < input_.size()) {
        ssize_t n = ::write(in_.get(), input_.data() + input_off_, input_.size() - input_off_);
        if (n > 0) {
            input_off_ += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            if (!want_out_) loop_.modify(in_.get(), EPOLLOUT);
            want_out_ = true;
            if (input_off_ > (1u << 20)) {
                input_.erase(0, input_off_);
                input_off_ = 0;
            }
            return;
        }
        close_stdin();  // EPIPE: the child closed its stdin
        return;
    }
    input_.clear();
    input_off_ = 0;
    if (in_ && want_out_) loop_.modify(in_.get(), 0);
    want_out_ = false;
}

void PersistentProcess::close_stdin() {
    close_fd(in_);
    input_.clear();
    input_off_ = 0;
    want_out_ = false;
}

void PersistentProcess::close_fd(UniqueFd& fd) {
    if (!fd) return;
    loop_.unwatch(fd.get());
    fd.reset();
}

void PersistentProcess::on_output(UniqueFd& fd, bool is_stdout) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n > 0) {
            auto& fn = is_stdout ? cb_.on_stdout : cb_.on_stderr;
            if (fn) fn(std::string_view(buf, static_cast<size_t>(n)));
            if (finished_ || !fd) return;
            continue;
        }
        if (n < 0 && errno == EAGAIN) return;
        if (n < 0 && errno == EINTR) continue;
        close_fd(fd);
        maybe_finish();
        return;
    }
}

void PersistentProcess::on_pidfd() {
    siginfo_t info{};
    // Look without reaping: while the leader is a zombie its pid cannot be
    // reused, so killing its group cannot hit a stranger.
    if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    ::kill(-pid_, SIGKILL);
    waitid(P_PID, pid_, &info, WEXITED | WNOHANG);
    exited_ = true;
    if (info.si_code == CLD_EXITED) wait_status_ = W_EXITCODE(info.si_status, 0);
    else wait_status_ = info.si_status & 0x7f;
    close_fd(pidfd_);
    close_stdin();
    std::weak_ptr<PersistentProcess> weak = shared_from_this();
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

void PersistentProcess::kill() {
    if (!exited_ && pid_ > 0) ::kill(-pid_, SIGKILL);
}

void PersistentProcess::maybe_finish() {
    if (finished_ || !exited_ || out_ || err_) return;
    finished_ = true;
    if (drain_timer_) loop_.cancel(drain_timer_);
    drain_timer_ = 0;
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
