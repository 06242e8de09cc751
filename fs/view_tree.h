#pragma once
// views/NAME/: the namespace agent NAME sees (as OpenBSD's unveil leaves a
// process its declared paths only). What it holds no capability for does
// not exist here (ENOENT, not listed); what it may see but not change is
// EACCES. Every operation is checked against what the agent holds at that
// moment, so a pledge takes effect on files already open.
//
//   views/NAME/
//     agents/NAME/      its own folder: output status err config instructions
//                       caps (read-only) and ctl (pledge and unveil only)
//     agents/OTHER/inbox  for each OTHER it holds send:OTHER for
//     conv/N/           conversations it serves now: out context agent vars,
//                       ctl (handoff only)
//     tools/T/          spec and call, for each tool it holds tool:T for
//     events/TOPIC      publish, for each topic it holds publish:TOPIC for
//     vault/            the vault paths it unveiled, with their modes
#include <memory>
#include <string>

#include "agents/swarm.h"
#include "fs/node.h"

namespace swarmfs::fs {

class VaultViews;

class ViewsDir : public DirNode {
  public:
    ViewsDir(Swarm& s, std::shared_ptr<VaultViews> vaults) : s_(s), vaults_(std::move(vaults)) {}
    std::vector<std::string> list() const override { return s_.agent_names(); }
    std::shared_ptr<Node> lookup(const std::string& name) override;
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
    std::shared_ptr<VaultViews> vaults_;
};

}  // namespace swarmfs::fs
