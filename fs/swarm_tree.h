#pragma once
// Binds the file protocol (docs/protocol.md) to the kernel: which names
// exist in each folder and which file kind serves each one.
#include <map>
#include <memory>
#include <mutex>

#include "agents/swarm.h"
#include "fs/node.h"
#include "fs/passthrough_dir.h"
#include "fs/scratch_file.h"
#include "fs/vault_view.h"

namespace swarmfs::fs {

class SwarmTree {
  public:
    explicit SwarmTree(Swarm& swarm)
        : swarm_(swarm), vault_views_(std::make_shared<VaultViews>(swarm)) {}
    std::shared_ptr<DirNode> root();

    Swarm& swarm() { return swarm_; }
    std::shared_ptr<ScratchStore> scratch(const std::string& agent);
    void drop_scratch(const std::string& agent);
    // MNT/vault: the swarm's vault folder with no policy (the owner's view),
    // opened at first use. nullptr when the swarm has no vault folder (unit
    // tests) or it cannot be opened (logged once).
    std::shared_ptr<DirNode> vault();
    // views/NAME/vault, one tree per agent, kept for the life of the mount.
    const std::shared_ptr<VaultViews>& vault_views() const { return vault_views_; }

  private:
    Swarm& swarm_;
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<ScratchStore>> scratch_;
    std::shared_ptr<PassthroughDir> vault_;
    bool vault_failed_ = false;
    std::shared_ptr<VaultViews> vault_views_;
};

}  // namespace swarmfs::fs
