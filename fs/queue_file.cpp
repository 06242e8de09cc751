#include "fs/queue_file.h"

#include <sys/stat.h>

#include <mutex>

namespace swarmfs::fs {

namespace {
class QueueHandle : public Handle {
  public:
    QueueHandle(SendFn send, std::function<Status()> check)
        : send_(std::move(send)), check_(std::move(check)) {}
    // Reads as empty, so `cp -r` and `grep -r` of an agent folder succeed.
    ReadResult read(size_t, uint64_t) override { return ReadResult::bytes({}); }
    // Offsets are ignored: a queue only appends, like a pipe.
    Result<size_t> write(std::string_view data, uint64_t) override {
        if (auto s = check_(); !s) return s.error();
        std::lock_guard lk(mu_);
        pending_.append(data);
        return data.size();
    }
    Status truncate(uint64_t) override { return {}; }
    Status flush() override {
        std::string msg;
        {
            std::lock_guard lk(mu_);
            if (pending_.empty()) return {};
            msg.swap(pending_);
        }
        return send_(std::move(msg));
    }

  private:
    SendFn send_;
    std::function<Status()> check_;
    std::mutex mu_;
    std::string pending_;
};
}  // namespace

Result<Attr> QueueFile::attr() const {
    if (auto s = exists_(); !s) return s.error();
    return Attr{S_IFREG | 0644, 0, 0};
}

Result<std::unique_ptr<Handle>> QueueFile::open(int) {
    if (auto s = exists_(); !s) return s.error();
    return std::unique_ptr<Handle>(std::make_unique<QueueHandle>(send_, check_));
}

}  // namespace swarmfs::fs
