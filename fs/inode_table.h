#pragma once
// Stable inode numbers for paths: (parent inode, name) always gets the same
// number, so an agent folder keeps its inode across lookups. Nodes are
// re-resolved from their parent when needed, so a table entry never holds
// kernel state of its own.
#include <fuse_lowlevel.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "fs/node.h"

namespace swarmfs::fs {

class InodeTable {
  public:
    explicit InodeTable(std::shared_ptr<DirNode> root);
    // The node now at ino, resolved through its parent; nullptr if it is gone.
    std::shared_ptr<Node> node(fuse_ino_t ino);
    std::shared_ptr<DirNode> dir(fuse_ino_t ino);
    // The inode number of parent/name, the same every time.
    fuse_ino_t reserve(fuse_ino_t parent, const std::string& name);

  private:
    struct Entry {
        fuse_ino_t parent = 0;
        std::string name;
    };
    static std::string key(fuse_ino_t parent, const std::string& name);

    std::shared_ptr<DirNode> root_;
    std::mutex mu_;
    std::unordered_map<fuse_ino_t, Entry> entries_;
    std::unordered_map<std::string, fuse_ino_t> by_key_;
    fuse_ino_t next_ = FUSE_ROOT_ID + 1;
};

}  // namespace swarmfs::fs
