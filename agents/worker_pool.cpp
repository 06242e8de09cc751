#include "agents/worker_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

namespace swarmfs {

WorkerPool::WorkerPool(int threads) {
    threads_.reserve(static_cast<size_t>(std::max(1, threads)));
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::stop() {
    {
        std::lock_guard lk(mu_);
        if (stopping_) return;
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
}

int WorkerPool::default_size(int configured) {
    if (configured > 0) return configured;
    int cores = static_cast<int>(std::thread::hardware_concurrency());
    return std::clamp(cores, 2, 8);
}

void WorkerPool::submit(std::function<void()> job) {
    {
        std::lock_guard lk(mu_);
        if (stopping_) return;
        jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
}

size_t WorkerPool::pending() const {
    std::lock_guard lk(mu_);
    return jobs_.size();
}

size_t WorkerPool::busy() const {
    std::lock_guard lk(mu_);
    return busy_;
}

void WorkerPool::run() {
    std::unique_lock lk(mu_);
    for (;;) {
        cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and everything submitted has run
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        ++busy_;
        lk.unlock();
        try {
            job();
        } catch (const std::exception& e) {
            spdlog::error("worker pool: a job failed: {}", e.what());
        } catch (...) {
            spdlog::error("worker pool: a job failed");
        }
        lk.lock();
        --busy_;
    }
}

}  // namespace swarmfs
