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
    DocumentFile(TextFn get, SetFn set, TimeFn mtime)
        : get_(std::move(get)), set_(std::move(set)), mtime_(std::move(mtime)) {}
    Result<Attr> attr() const override;
    Result<std::unique_ptr<Handle>> open(int flags) override;
    Status truncate(uint64_t size) override;
    Result<std::string> contents() const override { return get_(); }
    Status replace(std::string data) override { return set_(data); }

private:
    TextFn get_;
    SetFn set_;
    TimeFn mtime_;
};

}  // namespace swarmfs::fs
