#pragma once
// A query file (tools/NAME/call): write a request, then read its answer on
// the same open file. Each open file has its own request and answer, so
// concurrent callers never see each other's results. The request is sent at
// the first read or at a flush (a shell's `echo ... >&3` closes a duplicate
// of the descriptor), and the read waits, parked, until the answer arrives.
#include <functional>

#include "fs/node.h"

namespace swarmfs::fs {

// Runs a request; `done` is called once, from any thread.
using QueryFn =
    std::function<void(std::string request, std::function<void(Result<std::string>)> done)>;

class QueryFile : public FileNode {
  public:
    QueryFile(QueryFn run, std::function<Status()> exists)
        : run_(std::move(run)), exists_(std::move(exists)) {}
    Result<Attr> attr() const override;
    Result<std::unique_ptr<Handle>> open(int flags) override;
    Status truncate(uint64_t) override { return {}; }

  private:
    QueryFn run_;
    std::function<Status()> exists_;
};

}  // namespace swarmfs::fs
