#pragma once
// A folder whose names are fixed by the protocol, each served by one file
// kind built on demand (a node per lookup, so nothing goes stale when the
// swarm changes under an open folder). An entry may exist only while its
// `shown` says so: views hide what the agent holds no capability for.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fs/node.h"
#include "fs/snapshot_file.h"

namespace swarmfs::fs {

using Factory = std::function<std::shared_ptr<Node>()>;

struct FixedEntry {
    std::string name;
    Factory make;
    std::function<bool()> shown = nullptr;  // null: always
};

class FixedEntries {
  public:
    FixedEntries() = default;
    explicit FixedEntries(std::vector<FixedEntry> entries) : entries_(std::move(entries)) {}
    void add(FixedEntry e) { entries_.push_back(std::move(e)); }
    std::vector<std::string> names() const;
    bool has(const std::string& name) const;
    std::shared_ptr<Node> find(const std::string& name) const;  // nullptr: none (now)

  private:
    std::vector<FixedEntry> entries_;
};

class FixedDir : public DirNode {
  public:
    FixedDir(FixedEntries entries, TimeFn mtime)
        : entries_(std::move(entries)), mtime_(std::move(mtime)) {}
    std::vector<std::string> list() const override { return entries_.names(); }
    std::shared_ptr<Node> lookup(const std::string& name) override { return entries_.find(name); }
    double mtime() const override { return mtime_(); }

  private:
    FixedEntries entries_;
    TimeFn mtime_;
};

}  // namespace swarmfs::fs
