#pragma once
// events/TOPIC: opened for writing it is a queue (the bytes between open and
// close are one publication, durable when close returns); opened for
// reading it is the topic's stream (everything published so far, then
// waiting for more, as log is). One open cannot do both.
#include "fs/queue_file.h"
#include "fs/stream_file.h"

namespace swarmfs::fs {

class TopicFile : public FileNode {
  public:
    TopicFile(std::shared_ptr<QueueFile> publish, std::shared_ptr<StreamFile> follow)
        : publish_(std::move(publish)), follow_(std::move(follow)) {}
    Result<Attr> attr() const override;
    Result<std::unique_ptr<Handle>> open(int flags) override;
    Status truncate(uint64_t) override { return {}; }  // `>` opens with O_TRUNC
    Result<std::string> contents() const override { return follow_->contents(); }

  private:
    std::shared_ptr<QueueFile> publish_;
    std::shared_ptr<StreamFile> follow_;
};

}  // namespace swarmfs::fs
