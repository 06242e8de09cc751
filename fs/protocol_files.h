#pragma once
// The protocol's folders and files (docs/protocol.md), built once for both
// trees that show them: the owner's (MNT/...) and an agent's view
// (MNT/views/NAME/...). They differ only in whom a write acts for: a view's
// calls go through the kernel's *_as checks, and a view leaves out what only
// the owner may change (an agent's inbox and config, a conversation's in).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agents/swarm.h"
#include "fs/fixed_dir.h"
#include "fs/topic_file.h"

namespace swarmfs::fs {

// Whom a file acts for: nullopt is the swarm's owner; otherwise the agent
// whose view it belongs to.
using Actor = std::optional<std::string>;

// Whether conversation `id` is served by `agent` now.
bool serves(Swarm& s, const std::string& agent, int64_t id);

TimeFn agent_changed_fn(Swarm& s, const std::string& agent);
TimeFn conv_changed_fn(Swarm& s, int64_t id);

// agents/NAME/'s protocol files (scratch files are the owner tree's own).
// A view shows an agent only its own folder this way.
FixedEntries agent_files(Swarm& s, const std::string& agent, const Actor& as);
// agents/TO/inbox: a message to TO, from the owner or from agent `as`.
std::shared_ptr<Node> inbox_file(Swarm& s, const std::string& to, const Actor& as);
// conv/N/'s files; a view has them for conversations its agent serves.
FixedEntries conv_files(Swarm& s, int64_t id, const Actor& as);
// tools/T/: spec and call.
std::shared_ptr<DirNode> tool_dir(Swarm& s, const std::string& tool, const Actor& as);
// events/TOPIC: publish by writing, follow by reading.
std::shared_ptr<TopicFile> topic_file(Swarm& s, const std::string& topic, const Actor& as);

}  // namespace swarmfs::fs
