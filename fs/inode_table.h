#pragma once
// Stable inode numbers for paths: (parent inode, name) always gets the same
// number, so an agent folder keeps its inode across lookups. Nodes are
// re-resolved from their parent when needed, so a table entry never holds
// kernel state of its own.
//
// In folders of real files (the vault) a rename moves the file's number with
// it and a removal ends it, as on a disk file system: an open file keeps
// answering fstat after mv, and a new file under an old name is a new inode.
#include <fuse_lowlevel.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "fs/node.h"

namespace swarmfs::fs {

class InodeTable {
  public:
    // The folder at the root whose children are the agents' views
    // (MNT/views/NAME): everything below views/NAME belongs to NAME.
    static constexpr const char* kViews = "views";

    explicit InodeTable(std::shared_ptr<DirNode> root);
    // The node now at ino, resolved through its parent; nullptr if it is gone.
    std::shared_ptr<Node> node(fuse_ino_t ino);
    std::shared_ptr<DirNode> dir(fuse_ino_t ino);
    // The inode number of parent/name, the same every time.
    fuse_ino_t reserve(fuse_ino_t parent, const std::string& name);

    // The inode of MNT/views, or 0 while nobody has looked it up.
    fuse_ino_t views();
    // The NAME of the view MNT/views/NAME that ino lies in (views/NAME itself
    // included); nullopt outside every view and for unknown numbers. Walked
    // up the parents each time rather than stored, so it stays true however
    // folders are renamed.
    std::optional<std::string> view_of(fuse_ino_t ino);

    // A rename succeeded in a folder of real files: the number of parent/name
    // now names newparent/newname; the one newname had (if any) is gone, or
    // with `exchange` the two swap.
    void moved(fuse_ino_t parent, const std::string& name, fuse_ino_t newparent,
               const std::string& newname, bool exchange);
    // An unlink or rmdir succeeded in a folder of real files.
    void removed(fuse_ino_t parent, const std::string& name);

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
    fuse_ino_t views_ = 0;
};

}  // namespace swarmfs::fs
