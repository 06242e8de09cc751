#pragma once
// views/NAME/vault: the vault folder as agent NAME may see it. The
// passthrough folder kind serves it, with the kernel's answer to "which mode
// has NAME on this path" (Swarm::vault_mode) as its policy, so the checks
// are made on the path actually resolved, at every operation.
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agents/swarm.h"
#include "fs/passthrough_dir.h"

namespace swarmfs::fs {

class VaultViews {
  public:
    explicit VaultViews(Swarm& s) : s_(s) {}
    // The agent's vault tree, opened once and kept (an open folder fd and
    // its policy); null when the swarm has no vault folder.
    std::shared_ptr<DirNode> get(const std::string& agent);

  private:
    Swarm& s_;
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<PassthroughDir>> views_;
};

}  // namespace swarmfs::fs
