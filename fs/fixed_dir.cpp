#include "fs/fixed_dir.h"

#include <algorithm>

namespace swarmfs::fs {

namespace {
bool present(const FixedEntry& e) { return !e.shown || e.shown(); }
}  // namespace

std::vector<std::string> FixedEntries::names() const {
    std::vector<std::string> names;
    for (auto& e : entries_)
        if (present(e)) names.push_back(e.name);
    return names;
}

bool FixedEntries::has(const std::string& name) const {
    return std::any_of(entries_.begin(), entries_.end(),
                       [&](const FixedEntry& e) { return e.name == name && present(e); });
}

std::shared_ptr<Node> FixedEntries::find(const std::string& name) const {
    for (auto& e : entries_)
        if (e.name == name && present(e)) return e.make();
    return nullptr;
}

}  // namespace swarmfs::fs
