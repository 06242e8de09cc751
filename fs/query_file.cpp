#include "fs/query_file.h"

#include <poll.h>
#include <sys/stat.h>

#include <mutex>

namespace swarmfs::fs {

namespace {

// Shared with the running call, which may finish after the handle is gone.
struct QueryState {
    std::mutex mu;
    enum class Phase { Collecting, Running, Done } phase = Phase::Collecting;
    std::string request;
    Result<std::string> answer = std::string();
    size_t cursor = 0;  // how much of the answer has been read
    std::function<void()> wake;
};

class QueryHandle : public Handle {
  public:
    explicit QueryHandle(QueryFn run) : run_(std::move(run)), st_(std::make_shared<QueryState>()) {}
    ~QueryHandle() override {
        std::lock_guard lk(st_->mu);
        st_->wake = nullptr;
    }

    Result<size_t> write(std::string_view data, uint64_t) override {
        std::lock_guard lk(st_->mu);
        if (st_->phase == QueryState::Phase::Running)
            return make_error(EBUSY, "a query is already running on this open file");
        if (st_->phase == QueryState::Phase::Done) {  // a new question on the same file
            st_->phase = QueryState::Phase::Collecting;
            st_->request.clear();
            st_->cursor = 0;
        }
        st_->request.append(data);
        return data.size();
    }
    Status truncate(uint64_t) override { return {}; }

    Status flush() override {
        start();
        return {};
    }

    ReadResult read(size_t size, uint64_t) override {
        start();
        std::lock_guard lk(st_->mu);
        switch (st_->phase) {
            case QueryState::Phase::Collecting:
                return ReadResult::bytes({});  // nothing asked: nothing to answer
            case QueryState::Phase::Running:
                return ReadResult::waiting();
            case QueryState::Phase::Done:
                break;
        }
        if (!st_->answer.ok()) {
            // The error is the answer: reported once, then EOF.
            if (st_->cursor == 0) {
                st_->cursor = 1;
                return ReadResult::error(st_->answer.error().code);
            }
            return ReadResult::bytes({});
        }
        const std::string& a = st_->answer.value();
        if (st_->cursor >= a.size()) return ReadResult::bytes({});
        std::string chunk = a.substr(st_->cursor, size);
        st_->cursor += chunk.size();
        return ReadResult::bytes(std::move(chunk));
    }

    unsigned poll(uint64_t) override {
        std::lock_guard lk(st_->mu);
        return st_->phase == QueryState::Phase::Running ? POLLOUT : POLLIN | POLLOUT;
    }
    void set_waker(std::function<void()> wake) override {
        std::lock_guard lk(st_->mu);
        st_->wake = std::move(wake);
    }
    bool nonseekable() const override { return true; }

  private:
    void start() {
        std::string request;
        {
            std::lock_guard lk(st_->mu);
            if (st_->phase != QueryState::Phase::Collecting || st_->request.empty()) return;
            st_->phase = QueryState::Phase::Running;
            request = st_->request;
        }
        std::weak_ptr<QueryState> weak = st_;
        run_(std::move(request), [weak](Result<std::string> answer) {
            auto st = weak.lock();
            if (!st) return;
            std::function<void()> wake;
            {
                std::lock_guard lk(st->mu);
                st->answer = std::move(answer);
                st->phase = QueryState::Phase::Done;
                wake = st->wake;
            }
            if (wake) wake();
        });
    }

    QueryFn run_;
    std::shared_ptr<QueryState> st_;
};

}  // namespace

Result<Attr> QueryFile::attr() const {
    if (auto s = exists_(); !s) return s.error();
    return Attr{S_IFREG | 0666, 0, 0};
}

Result<std::unique_ptr<Handle>> QueryFile::open(int) {
    if (auto s = exists_(); !s) return s.error();
    return std::unique_ptr<Handle>(std::make_unique<QueryHandle>(run_));
}

}  // namespace swarmfs::fs
