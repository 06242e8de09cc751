#include "agents/exec_process.h"

#include <signal.h>
#include <sys/epoll.h>

#include <cerrno>

namespace swarmfs {

Result<std::shared_ptr<ExecProcess>> ExecProcess::start(EventLoop& loop, ExecSpec spec,
                                                        ExecCallbacks cb, ExecMode mode) {
    if (spec.argv.empty()) return make_error(EINVAL, "empty exec command");
    auto spawned = spawn(spec);
    if (!spawned) return spawned.error();
    return attach(loop, std::move(*spawned), std::move(spec.input), std::move(cb), mode);
}

std::shared_ptr<ExecProcess> ExecProcess::attach(EventLoop& loop, Spawned s, std::string input,
                                                 ExecCallbacks cb, ExecMode mode) {
    auto p = std::shared_ptr<ExecProcess>(new ExecProcess(loop, std::move(cb), mode));
    p->child_ = std::move(s.child);
    p->pidfd_ = std::move(s.pidfd);
    p->in_ = std::move(s.in);
    p->out_ = std::move(s.out);
    p->err_ = std::move(s.err);
    p->input_ = std::move(input);
    p->arm();
    return p;
}

ExecProcess::~ExecProcess() {
    for (UniqueFd* fd : {&in_, &out_, &err_, &pidfd_}) close_fd(*fd);
    if (drain_timer_) loop_.cancel(drain_timer_);
    // child_, destroyed next, kills the group and reaps it if still running.
}

void ExecProcess::arm() {
    std::weak_ptr<ExecProcess> weak = shared_from_this();
    // No EPOLLOUT until a write would block; EPOLLERR (the child closed its
    // end) is reported regardless.
    loop_.watch(in_.get(), 0, [weak](uint32_t events) {
        auto p = weak.lock();
        if (!p) return;
        if (events & (EPOLLERR | EPOLLHUP))
            p->close_stdin();
        else
            p->flush_stdin();
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
    flush_stdin();
}

bool ExecProcess::write(std::string_view data) {
    if (!in_) return false;
    input_.append(data);
    flush_stdin();
    return static_cast<bool>(in_);
}

void ExecProcess::flush_stdin() {
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
        // EPIPE: the child does not want (more) input; that is its business.
        close_stdin();
        return;
    }
    if (mode_ == ExecMode::one_shot) {
        close_stdin();  // all written: EOF
        return;
    }
    input_.clear();
    input_off_ = 0;
    if (in_ && want_out_) loop_.modify(in_.get(), 0);
    want_out_ = false;
}

void ExecProcess::close_stdin() {
    close_fd(in_);
    input_.clear();
    input_off_ = 0;
    want_out_ = false;
}

void ExecProcess::close_fd(UniqueFd& fd) {
    if (!fd) return;
    loop_.unwatch(fd.get());
    fd.reset();
}

void ExecProcess::on_output(UniqueFd& fd, bool is_stdout) {
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

void ExecProcess::on_pidfd() {
    auto exit = child_.reap_if_exited(/*kill_group_first=*/mode_ == ExecMode::conversation);
    if (!exit) return;
    exit_ = std::move(exit);
    close_fd(pidfd_);
    close_stdin();
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

void ExecProcess::kill() { child_.kill_group(SIGKILL); }

void ExecProcess::maybe_finish() {
    if (finished_ || !exit_ || out_ || err_) return;
    finished_ = true;
    if (drain_timer_) loop_.cancel(drain_timer_);
    drain_timer_ = 0;
    auto cb = std::move(cb_.on_exit);
    if (cb) cb(*exit_);
}

}  // namespace swarmfs
