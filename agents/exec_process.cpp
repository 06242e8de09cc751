#include "agents/exec_process.h"

#include <signal.h>
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

namespace swarmfs {

Result<std::shared_ptr<ExecProcess>> ExecProcess::start(EventLoop& loop, ExecSpec spec,
                                                        ExecCallbacks cb) {
    if (spec.argv.empty()) return make_error(EINVAL, "empty exec command");
    auto spawned = spawn(spec);
    if (!spawned) return spawned.error();
    return attach(loop, std::move(*spawned), std::move(spec.input), std::move(cb));
}

std::shared_ptr<ExecProcess> ExecProcess::attach(EventLoop& loop, Spawned s, std::string input,
                                                 ExecCallbacks cb) {
    auto p = std::shared_ptr<ExecProcess>(new ExecProcess(loop, std::move(cb)));
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
    // child_, destroyed next, kills the group and reaps it if still running.
}

void ExecProcess::arm() {
    std::weak_ptr<ExecProcess> weak = shared_from_this();
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
    // The group is left alone: a turn may start a daemon on purpose; kill()
    // and the destructor reach it.
    auto exit = child_.reap_if_exited(/*kill_group_first=*/false);
    if (!exit) return;
    exit_ = std::move(exit);
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

void ExecProcess::kill() { child_.kill_group(SIGKILL); }

void ExecProcess::maybe_finish() {
    if (finished_ || !exit_ || out_ || err_) return;
    finished_ = true;
    if (drain_timer_) loop_.cancel(drain_timer_);
    auto cb = std::move(cb_.on_exit);
    if (cb) cb(*exit_);
}

}  // namespace swarmfs
