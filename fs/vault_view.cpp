#include "fs/vault_view.h"

#include <spdlog/spdlog.h>

namespace swarmfs::fs {

std::shared_ptr<DirNode> VaultViews::get(const std::string& agent) {
    if (s_.vault_dir().empty()) return nullptr;
    std::lock_guard lk(mu_);
    if (auto it = views_.find(agent); it != views_.end()) return it->second;
    Swarm& s = s_;
    PassthroughPolicy policy;
    policy.mode = [&s, agent](const std::string& path) { return s.vault_mode(agent, path); };
    policy.visible_children = [&s, agent](const std::string& dir) {
        auto u = s.unveil_of(agent);
        if (!u) return std::vector<std::string>{};
        return u->visible_children(dir == "/" ? "/vault" : "/vault" + dir);
    };
    policy.refused = [&s, agent](Error e) {
        if (e.code == EACCES) {
            // Say why a path the agent unveiled rw is still read-only.
            std::string path = e.message.substr(0, e.message.find(':'));
            std::string top = vault_top_folder(path.rfind("vault", 0) == 0 ? path.substr(5) : path);
            std::string owner = top.empty() ? "" : s.vault_owner(top);
            if (top.empty())
                e.message += " (only the swarm's owner writes at the top of the vault)";
            else if (owner != agent)
                e.message += owner.empty() ? " (vault/" + top + " has no owner agent)"
                                           : " (vault/" + top + " is owned by " + owner + ")";
        }
        return s.refuse(agent, "vault", std::move(e));
    };
    auto dir = PassthroughDir::open(s_.vault_dir(), std::move(policy), "vault");
    if (!dir) {
        spdlog::error("views/{}/vault: {}", agent, dir.error().message);
        return nullptr;
    }
    views_[agent] = *dir;
    return *dir;
}

}  // namespace swarmfs::fs
