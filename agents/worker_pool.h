#pragma once
// A fixed pool of threads for the kernel's CPU work (starting processes,
// building model requests), so it runs beside the event loop instead of on
// it. Turns waiting on a model or a child hold no thread of this pool: only
// the short jobs that prepare or start them do.
//
// The threads live as long as the pool, and the pool as long as the server:
// a child started here with PR_SET_PDEATHSIG dies with the thread that
// started it, and so only with the server.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace swarmfs {

class WorkerPool {
  public:
    explicit WorkerPool(int threads);
    ~WorkerPool();  // stop()
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Runs job on a pool thread, in submission order as threads free up. A
    // job that throws is logged and the thread goes on. After stop() a job
    // is dropped unrun.
    void submit(std::function<void()> job);
    // Runs what was submitted, then joins the threads. For shutdown, before
    // what the jobs use goes away.
    void stop();
    int size() const { return static_cast<int>(threads_.size()); }
    size_t pending() const;  // submitted, not yet started
    size_t busy() const;     // running now

    // The pool size for `threads` in config: 0 picks one per core, 2..8.
    static int default_size(int configured);

  private:
    void run();

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    size_t busy_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace swarmfs
