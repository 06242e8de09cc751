#pragma once
// inbox, in: the bytes written between open and close are one message,
// handed to `send` at close (flush), which returns only once it is durable.
#include "fs/node.h"

namespace swarmfs::fs {

using SendFn = std::function<Status(std::string)>;

class QueueFile : public FileNode {
  public:
    // `check` runs at every write, so a message that cannot be sent fails
    // where a shell sees it (shells ignore errors from close).
    QueueFile(SendFn send, std::function<Status()> check, std::function<Status()> exists)
        : send_(std::move(send)), check_(std::move(check)), exists_(std::move(exists)) {}
    Result<Attr> attr() const override;
    Result<std::unique_ptr<Handle>> open(int flags) override;
    Status truncate(uint64_t) override { return {}; }

  private:
    SendFn send_;
    std::function<Status()> check_;
    std::function<Status()> exists_;
};

}  // namespace swarmfs::fs
