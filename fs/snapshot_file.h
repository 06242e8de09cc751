#pragma once
// A read-only file whose content is taken once at open (status, err,
// agent, context, conv/clone): one open..close reads one consistent state.
#include "fs/node.h"

namespace swarmfs::fs {

using TextFn = std::function<Result<std::string>()>;
using TimeFn = std::function<double()>;

class SnapshotFile : public FileNode {
  public:
    // `peek` gives the content for stat without side effects; by default
    // `content` itself (clone needs a separate one: opening it creates).
    SnapshotFile(TextFn content, TimeFn mtime, TextFn peek = nullptr)
        : content_(std::move(content)),
          peek_(peek ? std::move(peek) : content_),
          mtime_(std::move(mtime)) {}
    Result<Attr> attr() const override;
    Result<std::unique_ptr<Handle>> open(int flags) override;
    Result<std::string> contents() const override { return peek_(); }

  private:
    TextFn content_, peek_;
    TimeFn mtime_;
};

// A handle over a fixed string; reused by every kind that reads a snapshot.
class StringHandle : public Handle {
  public:
    explicit StringHandle(std::string text) : text_(std::move(text)) {}
    ReadResult read(size_t size, uint64_t offset) override;

  protected:
    std::string text_;
};

}  // namespace swarmfs::fs
