#include "agents/event_loop.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>

namespace swarmfs {

double monotonic_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

EventLoop::EventLoop() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    wakefd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wakefd_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
    thread_ = std::thread([this] { run(); });
}

EventLoop::~EventLoop() {
    stop();
    close(wakefd_);
    close(epfd_);
}

void EventLoop::stop() {
    if (stopping_.exchange(true)) return;
    wake();
    if (thread_.joinable()) thread_.join();
}

void EventLoop::wake() {
    uint64_t one = 1;
    ssize_t n = write(wakefd_, &one, sizeof one);
    (void)n;
}

void EventLoop::post(std::function<void()> fn) {
    {
        std::lock_guard lk(mu_);
        posted_.push_back(std::move(fn));
    }
    wake();
}

void EventLoop::watch(int fd, uint32_t events, FdCallback cb) {
    {
        std::lock_guard lk(mu_);
        fds_[fd] = std::make_shared<FdCallback>(std::move(cb));
    }
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
        spdlog::error("epoll add fd {}: {}", fd, strerror(errno));
}

void EventLoop::modify(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::unwatch(int fd) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    std::lock_guard lk(mu_);
    fds_.erase(fd);
}

EventLoop::TimerId EventLoop::after(double seconds, std::function<void()> fn) {
    TimerId id;
    {
        std::lock_guard lk(mu_);
        id = next_timer_++;
        timers_.emplace(monotonic_seconds() + seconds, std::make_pair(id, std::move(fn)));
    }
    wake();
    return id;
}

void EventLoop::cancel(TimerId id) {
    std::lock_guard lk(mu_);
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.first == id) {
            timers_.erase(it);
            return;
        }
    }
}

// One callback's failure must not end the loop every turn depends on: it is
// logged and the loop goes on (the kernel turns such failures inside a turn
// into that turn's crash before they get here).
void EventLoop::contain(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        spdlog::error("event loop: a callback failed: {}", e.what());
    } catch (...) {
        spdlog::error("event loop: a callback failed with an unknown exception");
    }
}

void EventLoop::run() {
    // Writing to a child that exited (EPIPE) must not kill the host process,
    // whatever the host's SIGPIPE disposition; SIGPIPE is thread-directed.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    std::vector<epoll_event> events(64);
    while (!stopping_) {
        int timeout_ms = -1;
        {
            std::lock_guard lk(mu_);
            if (!posted_.empty())
                timeout_ms = 0;
            else if (!timers_.empty()) {
                double wait = timers_.begin()->first - monotonic_seconds();
                timeout_ms = wait <= 0 ? 0 : static_cast<int>(std::ceil(wait * 1000));
            }
        }
        int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout_ms);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == wakefd_) {
                uint64_t v;
                while (read(wakefd_, &v, sizeof v) > 0) {
                }
                continue;
            }
            std::shared_ptr<FdCallback> cb;
            {
                std::lock_guard lk(mu_);
                auto it = fds_.find(fd);
                if (it != fds_.end()) cb = it->second;
            }
            if (cb) contain([&] { (*cb)(events[i].events); });
        }
        std::vector<std::function<void()>> due;
        {
            std::lock_guard lk(mu_);
            due.swap(posted_);
            double now = monotonic_seconds();
            while (!timers_.empty() && timers_.begin()->first <= now) {
                due.push_back(std::move(timers_.begin()->second.second));
                timers_.erase(timers_.begin());
            }
        }
        for (auto& fn : due) contain(fn);
    }
}

}  // namespace swarmfs
