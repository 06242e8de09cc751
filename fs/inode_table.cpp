#include "fs/inode_table.h"

#include <vector>

namespace swarmfs::fs {

InodeTable::InodeTable(std::shared_ptr<DirNode> root) : root_(std::move(root)) {}

std::string InodeTable::key(fuse_ino_t parent, const std::string& name) {
    return std::to_string(parent) + "/" + name;
}

fuse_ino_t InodeTable::reserve(fuse_ino_t parent, const std::string& name) {
    std::lock_guard lk(mu_);
    auto [it, fresh] = by_key_.try_emplace(key(parent, name), next_);
    if (fresh) entries_[next_++] = Entry{parent, name};
    return it->second;
}

std::shared_ptr<Node> InodeTable::node(fuse_ino_t ino) {
    // Walk up to the root, then resolve names downwards: every step asks the
    // live tree, so an archived agent's inode resolves to nothing.
    std::vector<std::string> path;
    {
        std::lock_guard lk(mu_);
        while (ino != FUSE_ROOT_ID) {
            auto it = entries_.find(ino);
            if (it == entries_.end()) return nullptr;
            path.push_back(it->second.name);
            ino = it->second.parent;
        }
    }
    std::shared_ptr<Node> cur = root_;
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
        auto* d = dynamic_cast<DirNode*>(cur.get());
        if (!d) return nullptr;
        cur = d->lookup(*it);
        if (!cur) return nullptr;
    }
    return cur;
}

std::shared_ptr<DirNode> InodeTable::dir(fuse_ino_t ino) {
    return std::dynamic_pointer_cast<DirNode>(node(ino));
}

}  // namespace swarmfs::fs
