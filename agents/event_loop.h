#pragma once
// One thread that waits on many fds (epoll) and timers, so work that waits
// on a child process or a socket holds no thread of its own.
#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace swarmfs {

class EventLoop {
  public:
    using FdCallback = std::function<void(uint32_t events)>;
    using TimerId = uint64_t;

    EventLoop();
    ~EventLoop();  // stops and joins
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Runs fn on the loop thread, in order of posting.
    void post(std::function<void()> fn);
    // The callbacks below run on the loop thread. watch/unwatch may be called
    // from any thread; a callback never runs after unwatch returns on the loop.
    void watch(int fd, uint32_t events, FdCallback cb);
    void modify(int fd, uint32_t events);
    void unwatch(int fd);
    TimerId after(double seconds, std::function<void()> fn);
    void cancel(TimerId id);
    bool in_loop() const { return std::this_thread::get_id() == thread_.get_id(); }
    void stop();

  private:
    void run();
    void wake();

    int epfd_ = -1;
    int wakefd_ = -1;
    std::atomic<bool> stopping_{false};
    std::mutex mu_;
    std::vector<std::function<void()>> posted_;
    static void contain(const std::function<void()>& fn);
    std::unordered_map<int, std::shared_ptr<FdCallback>> fds_;
    std::multimap<double, std::pair<TimerId, std::function<void()>>> timers_;
    TimerId next_timer_ = 1;
    std::thread thread_;
};

double monotonic_seconds();

}  // namespace swarmfs
