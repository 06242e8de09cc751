#pragma once
// A ctl file: each write is one or more commands, run as it arrives; a read
// shows the state (taken at open).
#include "fs/snapshot_file.h"

namespace swarmfs::fs {

using CommandFn = std::function<Status(std::string_view)>;

class ControlFile : public FileNode {
  public:
    ControlFile(TextFn state, CommandFn run, TimeFn mtime)
        : state_(std::move(state)), run_(std::move(run)), mtime_(std::move(mtime)) {}
    Result<Attr> attr() const override;
    Result<std::unique_ptr<Handle>> open(int flags) override;
    // `echo cmd > ctl` truncates first; there is nothing to truncate.
    Status truncate(uint64_t) override { return {}; }

  private:
    TextFn state_;
    CommandFn run_;
    TimeFn mtime_;
};

}  // namespace swarmfs::fs
