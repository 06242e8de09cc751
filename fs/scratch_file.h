#pragma once
// Scratch files: what editors and tools leave beside the files they edit
// (.config.swp, config~, 4913, sedXXXXXX). Ordinary in-memory files, kept
// out of the protocol: they never reach the agent or the log.
#include <map>
#include <mutex>

#include "fs/node.h"

namespace swarmfs::fs {

struct ScratchData {
    std::mutex mu;
    std::string data;
    mode_t mode = 0644;
    double mtime = 0;
};

class ScratchStore {
  public:
    std::shared_ptr<ScratchData> get(const std::string& name) const;
    std::shared_ptr<ScratchData> create(const std::string& name, mode_t mode);
    bool remove(const std::string& name);
    void put(const std::string& name, std::shared_ptr<ScratchData> d);
    std::vector<std::string> names() const;

  private:
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<ScratchData>> files_;
};

class ScratchFile : public FileNode {
  public:
    explicit ScratchFile(std::shared_ptr<ScratchData> d) : d_(std::move(d)) {}
    Result<Attr> attr() const override;
    Result<std::unique_ptr<Handle>> open(int flags) override;
    Status truncate(uint64_t size) override;
    Result<std::string> contents() const override;
    Status replace(std::string data) override;
    void chmod(mode_t mode);

  private:
    std::shared_ptr<ScratchData> d_;
};

}  // namespace swarmfs::fs
