#pragma once
// config, instructions: a whole document, edited like an ordinary file
// (O_TRUNC and write, ftruncate, read-modify-write) and installed at close
// (or fsync) through `set`, which validates it. A rejected document fails
// the close and leaves the old one in force.
#include "fs/snapshot_file.h"

namespace swarmfs::fs {

using SetFn = std::function<Status(std::string_view)>;

class DocumentFile : public FileNode {
  public:
    // `check_draft` (optional) judges the text after each appending write
    // and fails the write once the document can no longer become valid.
    DocumentFile(TextFn get, SetFn set, TimeFn mtime, SetFn check_draft = nullptr)
        : get_(std::move(get)),
          set_(std::move(set)),
          mtime_(std::move(mtime)),
          check_draft_(std::move(check_draft)) {}
    Result<Attr> attr() const override;
    Result<std::unique_ptr<Handle>> open(int flags) override;
    Status truncate(uint64_t size) override;
    Result<std::string> contents() const override { return get_(); }
    Status replace(std::string data) override { return set_(data); }

  private:
    TextFn get_;
    SetFn set_;
    TimeFn mtime_;
    SetFn check_draft_;
};

}  // namespace swarmfs::fs
