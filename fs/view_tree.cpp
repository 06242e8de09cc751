#include "fs/view_tree.h"

#include <sys/stat.h>

#include <algorithm>

#include "fs/control_file.h"
#include "fs/document_file.h"
#include "fs/query_file.h"
#include "fs/queue_file.h"
#include "fs/snapshot_file.h"
#include "fs/stream_file.h"
#include "fs/topic_file.h"
#include "fs/vault_view.h"

namespace swarmfs::fs {

namespace {

using Factory = std::function<std::shared_ptr<Node>()>;
using Entries = std::vector<std::pair<std::string, Factory>>;

// A folder of named entries, some of which exist only while `shown` says so.
class FixedDir : public DirNode {
  public:
    struct Entry {
        std::string name;
        Factory make;
        std::function<bool()> shown;  // null: always
    };
    FixedDir(std::vector<Entry> entries, TimeFn mtime)
        : entries_(std::move(entries)), mtime_(std::move(mtime)) {}
    std::vector<std::string> list() const override {
        std::vector<std::string> names;
        for (auto& e : entries_)
            if (!e.shown || e.shown()) names.push_back(e.name);
        return names;
    }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        for (auto& e : entries_)
            if (e.name == name && (!e.shown || e.shown())) return e.make();
        return nullptr;
    }
    double mtime() const override { return mtime_(); }

  private:
    std::vector<Entry> entries_;
    TimeFn mtime_;
};

bool holds(Swarm& s, const std::string& agent, Capability::Kind kind, const std::string& target) {
    auto caps = s.caps_of(agent);
    return caps && caps->allows(kind, target);
}

bool holds_any(Swarm& s, const std::string& agent, Capability::Kind kind) {
    auto caps = s.caps_of(agent);
    if (!caps) return false;
    return std::any_of(caps->entries().begin(), caps->entries().end(),
                       [&](const Capability& c) { return c.kind == kind; });
}

// Something that exists but not for this agent: ENOENT, as if it did not,
// and recorded, since reaching for it is how an escape attempt looks.
std::shared_ptr<Node> hidden(Swarm& s, const std::string& agent, const std::string& cap,
                             const std::string& path) {
    s.refuse(
        agent, cap,
        make_error(ENOENT, path + ": not in views/" + agent + " (it does not hold " + cap + ")"));
    return nullptr;
}

// ------------------------------------------------------------ agents/

std::shared_ptr<Node> own_folder(Swarm& s, const std::string& n) {
    TimeFn changed = [&s, n] {
        auto t = s.agent_changed(n);
        return t ? *t : 0.0;
    };
    auto snapshot = [&s, changed](std::function<Result<std::string>()> text) -> Factory {
        return [text, changed] { return std::make_shared<SnapshotFile>(text, changed); };
    };
    std::vector<FixedDir::Entry> e = {
        {"ctl",
         [&s, n, changed] {
             return std::make_shared<ControlFile>(
                 [&s, n] { return s.agent_ctl_text(n); },
                 [&s, n](std::string_view c) { return s.agent_ctl_as(n, c); }, changed);
         },
         nullptr},
        {"output",
         [&s, n] {
             return std::make_shared<StreamFile>([&s, n] { return s.agent_output(n); }, true);
         },
         nullptr},
        {"status", snapshot([&s, n] { return s.agent_status(n); }), nullptr},
        {"err", snapshot([&s, n] { return s.agent_err(n); }), nullptr},
        {"caps", snapshot([&s, n] { return s.caps_text(n); }), nullptr},
        // Its definition is the owner's to change: from inside the view it
        // is read-only, so no agent can grant itself more by rewriting it.
        {"config", snapshot([&s, n] { return s.config_text(n); }), nullptr},
        {"instructions", snapshot([&s, n] { return s.instructions(n); }), nullptr},
    };
    return std::make_shared<FixedDir>(std::move(e), changed);
}

std::shared_ptr<Node> peer_folder(Swarm& s, const std::string& self, const std::string& to) {
    std::vector<FixedDir::Entry> e = {
        {"inbox",
         [&s, self, to] {
             return std::make_shared<QueueFile>(
                 [&s, self, to](std::string m) { return s.send_as(self, to, std::move(m)); },
                 [&s, self, to] { return s.can_send_as(self, to); },
                 [&s, to]() -> Status {
                     if (!s.has_agent(to)) return make_error(ENOENT, "no agent " + to);
                     return {};
                 });
         },
         nullptr},
    };
    return std::make_shared<FixedDir>(std::move(e), [&s] { return s.started(); });
}

class ViewAgentsDir : public DirNode {
  public:
    ViewAgentsDir(Swarm& s, std::string self) : s_(s), self_(std::move(self)) {}
    std::vector<std::string> list() const override {
        std::vector<std::string> names;
        for (auto& n : s_.agent_names())
            if (n == self_ || holds(s_, self_, Capability::Kind::send, n)) names.push_back(n);
        return names;
    }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.has_agent(name)) return nullptr;
        if (name == self_) return own_folder(s_, self_);
        if (!holds(s_, self_, Capability::Kind::send, name))
            return hidden(s_, self_, "send:" + name, "agents/" + name);
        return peer_folder(s_, self_, name);
    }
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
    std::string self_;
};

// ------------------------------------------------------------ conv/

bool serves(Swarm& s, const std::string& agent, int64_t id) {
    auto ids = s.conversations_of(agent);
    return std::binary_search(ids.begin(), ids.end(), id);
}

std::shared_ptr<Node> conv_folder(Swarm& s, const std::string& self, int64_t id) {
    TimeFn changed = [&s, id] {
        auto t = s.conv_changed(id);
        return t ? *t : 0.0;
    };
    std::vector<FixedDir::Entry> e = {
        {"ctl",
         [&s, self, id, changed] {
             return std::make_shared<ControlFile>(
                 [&s, id] { return s.conv_ctl_text(id); },
                 [&s, self, id](std::string_view c) { return s.conv_ctl_as(self, id, c); },
                 changed);
         },
         nullptr},
        {"out",
         [&s, id] {
             return std::make_shared<StreamFile>([&s, id] { return s.conv_out(id); }, true);
         },
         nullptr},
        {"agent",
         [&s, id, changed] {
             return std::make_shared<SnapshotFile>([&s, id] { return s.conv_agent(id); }, changed);
         },
         nullptr},
        {"context",
         [&s, id, changed] {
             return std::make_shared<SnapshotFile>([&s, id] { return s.conv_context(id); },
                                                   changed);
         },
         nullptr},
        // Variables travel with the conversation to whoever it is handed
        // to: the agent serving it may set them.
        {"vars",
         [&s, self, id, changed] {
             auto mine = [&s, self, id]() -> Status {
                 if (!serves(s, self, id))
                     return make_error(EACCES, "conversation " + std::to_string(id) +
                                                   " is not served by " + self);
                 return {};
             };
             return std::make_shared<DocumentFile>(
                 [&s, id] { return s.conv_vars(id); },
                 [&s, id, mine](std::string_view t) -> Status {
                     if (auto st = mine(); !st) return st;
                     return s.set_conv_vars(id, t);
                 },
                 changed, [&s, id](std::string_view t) { return s.check_vars_draft(id, t); });
         },
         nullptr},
    };
    return std::make_shared<FixedDir>(std::move(e), changed);
}

class ViewConvsDir : public DirNode {
  public:
    ViewConvsDir(Swarm& s, std::string self) : s_(s), self_(std::move(self)) {}
    std::vector<std::string> list() const override {
        std::vector<std::string> names;
        for (int64_t id : s_.conversations_of(self_)) names.push_back(std::to_string(id));
        return names;
    }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        auto id = parse_conv_id(name);
        if (!id || !serves(s_, self_, *id)) return nullptr;
        return conv_folder(s_, self_, *id);
    }
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
    std::string self_;
};

// ------------------------------------------------------------ tools/

class ViewToolsDir : public DirNode {
  public:
    ViewToolsDir(Swarm& s, std::string self) : s_(s), self_(std::move(self)) {}
    std::vector<std::string> list() const override {
        std::vector<std::string> names;
        for (auto& t : s_.tool_names())
            if (holds(s_, self_, Capability::Kind::tool, t)) names.push_back(t);
        return names;
    }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.tool_spec(name)) return nullptr;
        if (!holds(s_, self_, Capability::Kind::tool, name))
            return hidden(s_, self_, "tool:" + name, "tools/" + name);
        auto& s = s_;
        auto self = self_;
        std::vector<FixedDir::Entry> e = {
            {"spec",
             [&s, name] {
                 return std::make_shared<SnapshotFile>([&s, name] { return s.tool_spec(name); },
                                                       [&s] { return s.started(); });
             },
             nullptr},
            {"call",
             [&s, self, name] {
                 return std::make_shared<QueryFile>(
                     [&s, self, name](std::string req,
                                      std::function<void(Result<std::string>)> done) {
                         s.call_tool_as(self, name, std::move(req), std::move(done));
                     },
                     [&s, name]() -> Status {
                         if (!s.tool_spec(name)) return make_error(ENOENT, "no tool " + name);
                         return {};
                     });
             },
             nullptr},
        };
        return std::make_shared<FixedDir>(std::move(e), [&s] { return s.started(); });
    }
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
    std::string self_;
};

// ------------------------------------------------------------ events/

class ViewEventsDir : public DirNode {
  public:
    ViewEventsDir(Swarm& s, std::string self) : s_(s), self_(std::move(self)) {}
    std::vector<std::string> list() const override {
        std::vector<std::string> names;
        for (auto& t : s_.topic_names())
            if (holds(s_, self_, Capability::Kind::publish, t)) names.push_back(t);
        return names;
    }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.has_topic(name)) return nullptr;
        if (!holds(s_, self_, Capability::Kind::publish, name))
            return hidden(s_, self_, "publish:" + name, "events/" + name);
        return topic(name);
    }
    Result<std::shared_ptr<FileNode>> create(const std::string& name, mode_t) override {
        if (auto st = s_.check_publish_as(self_, name); !st) return st.error();
        if (auto st = s_.create_topic(name); !st) return st.error();
        return std::shared_ptr<FileNode>(topic(name));
    }
    double mtime() const override { return s_.started(); }

  private:
    std::shared_ptr<TopicFile> topic(const std::string& name) {
        auto& s = s_;
        auto self = self_;
        auto publish = std::make_shared<QueueFile>(
            [&s, self, name](std::string m) { return s.publish_as(self, name, std::move(m)); },
            [&s, self, name] { return s.check_publish_as(self, name); },
            [&s, name]() -> Status {
                if (!s.has_topic(name)) return make_error(ENOENT, "no topic " + name);
                return {};
            });
        auto follow =
            std::make_shared<StreamFile>([&s, name] { return s.topic_stream(name); }, true);
        return std::make_shared<TopicFile>(std::move(publish), std::move(follow));
    }
    Swarm& s_;
    std::string self_;
};

// ------------------------------------------------------------ views/NAME/

std::shared_ptr<Node> view_root(Swarm& s, const std::string& n,
                                const std::shared_ptr<VaultViews>& vaults) {
    auto started = [&s] { return s.started(); };
    std::vector<FixedDir::Entry> e = {
        {"agents", [&s, n] { return std::make_shared<ViewAgentsDir>(s, n); }, nullptr},
        {"conv", [&s, n] { return std::make_shared<ViewConvsDir>(s, n); }, nullptr},
        {"tools", [&s, n] { return std::make_shared<ViewToolsDir>(s, n); },
         [&s, n] { return holds_any(s, n, Capability::Kind::tool); }},
        {"events", [&s, n] { return std::make_shared<ViewEventsDir>(s, n); },
         [&s, n] { return holds_any(s, n, Capability::Kind::publish); }},
        {"vault", [vaults, n] { return std::shared_ptr<Node>(vaults->get(n)); },
         [&s, n] {
             auto u = s.unveil_of(n);
             return !s.vault_dir().empty() && u && !u->empty();
         }},
    };
    return std::make_shared<FixedDir>(std::move(e), started);
}

}  // namespace

std::shared_ptr<Node> ViewsDir::lookup(const std::string& name) {
    if (!s_.has_agent(name)) return nullptr;
    return view_root(s_, name, vaults_);
}

}  // namespace swarmfs::fs
