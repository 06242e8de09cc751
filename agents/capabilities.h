#pragma once
// What an agent may do (capabilities, like OpenBSD pledge) and what it may see
// (the unveil map), as declared in its config:
//
//   "caps": ["tool:lookup_ticket", "handoff:support", "send:writer", "publish:alerts", "net"],
//   "unveil": {"/vault/kb": "r", "/vault/research": "rw"}
//
// Default deny: an empty CapabilitySet and an empty UnveilMap allow nothing
// beyond an agent's own files and its conversation (which callers grant
// without asking these classes). A running agent may narrow either, never
// widen it: narrow() refuses with EPERM anything the current set does not
// already allow. There is deliberately no widening operation here; granting
// is building a new set from the owner's config or root ctl.
//
// Both classes are values: immutable after parse, cheap to copy, safe to read
// from many threads. Nothing here throws.
#include <climits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "vault/result.h"

namespace swarmfs {

// One entry of "caps", written KIND:TARGET, or just "net".
//
// TARGET is a name (tool: valid_tool_name, which admits the SERVER__TOOL names
// of MCP tools; handoff/send/publish: valid_agent_name, the rule agent and
// topic names follow), or "*" meaning every target of that kind ("send:*":
// may write any agent's inbox). "*" is never a name, so it cannot collide
// with one. Names are case-sensitive, like the files they stand for.
struct Capability {
    enum class Kind { tool, handoff, send, publish, net };
    Kind kind = Kind::net;
    std::string target;  // empty for net

    bool wildcard() const { return target == "*"; }
    // "tool:x", "net": the form parse() accepts and the caps file shows.
    std::string to_string() const;
    // EINVAL naming the entry and what is wrong with it.
    static Result<Capability> parse(std::string_view text);

    friend bool operator==(const Capability&, const Capability&) = default;
};

std::string_view kind_name(Capability::Kind kind);

class CapabilitySet {
  public:
    CapabilitySet() = default;  // allows nothing

    // A JSON array of strings. Duplicates, and entries a wildcard of the same
    // kind already covers ("tool:x" beside "tool:*"), are dropped, so equal
    // permissions always print the same.
    static Result<CapabilitySet> from_json(const nlohmann::json& j);
    // The same, from JSON text.
    static Result<CapabilitySet> parse(std::string_view json_text);

    // For net the target is ignored. A target that is not a valid name is
    // refused even under a wildcard: "tool:*" does not let "../x" through.
    bool allows(Capability::Kind kind, std::string_view target = {}) const;
    bool allows(const Capability& cap) const;
    bool empty() const { return caps_.empty(); }
    const std::vector<Capability>& entries() const { return caps_; }

    // Pledge: the result is what both this and `pledged` allow, which (since
    // a pledge may only name what is held) is `pledged` itself. EPERM naming
    // the first entry of `pledged` that is not held; pledging "tool:*" needs
    // "tool:*" held, holding "tool:*" allows pledging "tool:x".
    Result<CapabilitySet> narrow(const CapabilitySet& pledged) const;
    // What both allow: "tool:*" with "tool:x" is "tool:x". For a revoke
    // on a pledged agent, which must not give back what it pledged away.
    CapabilitySet intersect(const CapabilitySet& other) const;

    // Sorted by text ("handoff:..." < "net" < ... < "tool:*" < "tool:a"):
    // stable across runs, so diffs of the caps file mean real changes.
    nlohmann::json to_json() const;
    // One capability per line, each ending in '\n': the caps file.
    std::string to_text() const;

    friend bool operator==(const CapabilitySet&, const CapabilitySet&) = default;

  private:
    std::vector<Capability> caps_;  // canonical: sorted by text, no redundancy
};

// Access to a path of the swarm namespace. Ordered: none < r < rw.
enum class Mode { none, r, rw };

std::string_view mode_name(Mode mode);  // "none", "r", "rw"

// Paths an agent may see, each with a mode; everything else does not exist
// for it. Keys are swarm-namespace paths ("/vault/kb"); a key covers itself
// and everything below it, component by component, and the longest covering
// key decides the mode, so {"/vault": "rw", "/vault/secret": "r"} keeps
// /vault/secret read-only.
//
// Everything here is lexical. ".." is refused, never resolved, so no spelling
// of a path climbs out of an unveiled subtree; but a symlink or a rename
// inside the store can still point outside it, so whoever opens the file must
// resolve it beneath the unveiled root (openat2 RESOLVE_BENEATH|NO_SYMLINKS or
// the store's own equivalent) and check the mode of the path it resolved.
class UnveilMap {
  public:
    UnveilMap() = default;  // sees nothing

    // A JSON object of absolute path -> "r" | "rw". EINVAL for any other
    // mode, or a key that is relative, has an empty, "." or ".." component,
    // contains NUL or another control character (the unveil file is one path
    // per line), is longer than kMaxPath, or has a component longer than
    // NAME_MAX. Trailing slashes are dropped: "/vault/kb/" is "/vault/kb".
    // Two keys naming the same path after that are EINVAL, not a silent pick.
    static Result<UnveilMap> from_json(const nlohmann::json& j);
    static Result<UnveilMap> parse(std::string_view json_text);

    // The mode of `path` after lexical normalization (repeated slashes, "."
    // components and trailing slashes dropped). none when not covered, and for
    // anything that cannot name a file: relative, empty, NUL inside, a ".."
    // component, longer than kMaxPath, a component longer than NAME_MAX.
    Mode mode_for(std::string_view path) const;

    // Whether `dir` exists in the view: covered, or an ancestor of an unveiled
    // path (shown as a directory listing only what leads to unveiled paths).
    // "/" always exists: it is the view itself, even when empty.
    bool visible(std::string_view dir) const;

    // For a visible directory that is not itself covered: the names of its
    // immediate children that lead to unveiled paths, sorted, no duplicates.
    // Empty for a covered directory (every real child is visible there, so
    // list the directory itself) and for one that is not visible.
    std::vector<std::string> visible_children(std::string_view dir) const;

    bool empty() const { return paths_.empty(); }
    const std::map<std::string, Mode>& entries() const { return paths_; }

    // Pledge: drop paths, lower rw to r, or unveil a sub-path of a held path
    // with an equal or lower mode. The result is `pledged`; EPERM naming the
    // first pledged path that would see more than is held, including through
    // a held narrower entry ({"/vault": "rw", "/vault/secret": "r"} cannot
    // pledge {"/vault": "rw"}, which would make /vault/secret writable).
    Result<UnveilMap> narrow(const UnveilMap& pledged) const;
    // The lower mode of the two at every path.
    UnveilMap intersect(const UnveilMap& other) const;

    nlohmann::json to_json() const;  // keys sorted
    // "MODE PATH\n" per entry, sorted by path; mode first so a path with
    // spaces stays one field.
    std::string to_text() const;

    friend bool operator==(const UnveilMap&, const UnveilMap&) = default;

    // The longest path a syscall accepts: PATH_MAX counts the trailing NUL.
    static constexpr size_t kMaxPath = PATH_MAX - 1;

  private:
    std::map<std::string, Mode> paths_;  // normalized keys, no Mode::none
};

// Text from a config, for an error message: quoted, escaped, at most 96
// bytes shown (the capabilities and the guard name bad entries with it).
std::string quote_config_text(std::string_view s);

// The top-level folder of a vault path ("/kb/a.md": "kb"; "/": "").
std::string vault_top_folder(const std::string& path);

}  // namespace swarmfs
