#pragma once
// Binds the file protocol (docs/protocol.md) to the kernel: which names
// exist in each folder and which file kind serves each one.
#include <map>
#include <memory>
#include <mutex>

#include "agents/swarm.h"
#include "fs/node.h"
#include "fs/scratch_file.h"

namespace swarmfs::fs {

class SwarmTree {
  public:
    explicit SwarmTree(Swarm& swarm) : swarm_(swarm) {}
    std::shared_ptr<DirNode> root();

    Swarm& swarm() { return swarm_; }
    std::shared_ptr<ScratchStore> scratch(const std::string& agent);
    void drop_scratch(const std::string& agent);

  private:
    Swarm& swarm_;
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<ScratchStore>> scratch_;
};

}  // namespace swarmfs::fs
