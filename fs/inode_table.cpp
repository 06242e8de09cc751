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
    if (fresh) {
        entries_[next_++] = Entry{parent, name};
        if (parent == FUSE_ROOT_ID && name == kViews) views_ = it->second;
    }
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

fuse_ino_t InodeTable::views() {
    std::lock_guard lk(mu_);
    return views_;
}

std::optional<std::string> InodeTable::view_of(fuse_ino_t ino) {
    std::lock_guard lk(mu_);
    if (views_ == 0) return std::nullopt;
    while (ino != FUSE_ROOT_ID) {
        auto it = entries_.find(ino);
        if (it == entries_.end()) return std::nullopt;
        if (it->second.parent == views_) return it->second.name;
        ino = it->second.parent;
    }
    return std::nullopt;
}

void InodeTable::moved(fuse_ino_t parent, const std::string& name, fuse_ino_t newparent,
                       const std::string& newname, bool exchange) {
    std::lock_guard lk(mu_);
    const std::string from = key(parent, name), to = key(newparent, newname);
    auto src = by_key_.find(from);
    auto dst = by_key_.find(to);
    std::optional<fuse_ino_t> moving, displaced;
    if (src != by_key_.end()) moving = src->second;
    if (dst != by_key_.end()) displaced = dst->second;
    by_key_.erase(from);
    by_key_.erase(to);
    if (moving) {
        by_key_[to] = *moving;
        entries_[*moving] = Entry{newparent, newname};
    }
    if (displaced) {
        if (exchange) {
            by_key_[from] = *displaced;
            entries_[*displaced] = Entry{parent, name};
        } else {
            // Replaced: the old number resolves to nothing from now on.
            entries_.erase(*displaced);
        }
    }
}

void InodeTable::removed(fuse_ino_t parent, const std::string& name) {
    std::lock_guard lk(mu_);
    auto it = by_key_.find(key(parent, name));
    if (it == by_key_.end()) return;
    entries_.erase(it->second);
    by_key_.erase(it);
}

}  // namespace swarmfs::fs
