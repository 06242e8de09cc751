#include "fs/swarm_tree.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>

#include "fs/control_file.h"
#include "fs/document_file.h"
#include "fs/query_file.h"
#include "fs/queue_file.h"
#include "fs/snapshot_file.h"
#include "fs/stream_file.h"
#include "fs/topic_file.h"
#include "fs/view_tree.h"
#include "vault/event_log.h"

namespace swarmfs::fs {

namespace {

// Names with one fixed file kind each, built on demand.
using Factory = std::function<std::shared_ptr<Node>()>;
using FixedEntries = std::vector<std::pair<std::string, Factory>>;

std::shared_ptr<Node> find_fixed(const FixedEntries& entries, const std::string& name) {
    for (auto& [n, make] : entries)
        if (n == name) return make();
    return nullptr;
}

bool is_fixed(const FixedEntries& entries, const std::string& name) {
    return std::any_of(entries.begin(), entries.end(), [&](auto& e) { return e.first == name; });
}

// ------------------------------------------------------------ agents/NAME/

class AgentDir : public DirNode {
  public:
    AgentDir(SwarmTree& tree, std::string name)
        : s_(tree.swarm()), name_(std::move(name)), scratch_(tree.scratch(name_)) {
        auto& s = s_;
        auto n = name_;
        TimeFn changed = [&s, n] {
            auto t = s.agent_changed(n);
            return t ? *t : 0.0;
        };
        entries_ = {
            {"ctl",
             [&s, n, changed] {
                 return std::make_shared<ControlFile>(
                     [&s, n] { return s.agent_ctl_text(n); },
                     [&s, n](std::string_view c) { return s.agent_ctl(n, c); }, changed);
             }},
            {"inbox",
             [&s, n] {
                 return std::make_shared<QueueFile>(
                     [&s, n](std::string m) { return s.send(n, std::move(m)); },
                     [&s, n] { return s.can_send(n); },
                     [&s, n]() -> Status {
                         if (!s.has_agent(n)) return make_error(ENOENT, "no agent " + n);
                         return {};
                     });
             }},
            {"output",
             [&s, n] {
                 return std::make_shared<StreamFile>([&s, n] { return s.agent_output(n); }, true);
             }},
            {"status",
             [&s, n] {
                 return std::make_shared<SnapshotFile>([&s, n] { return s.agent_status(n); },
                                                       [] { return now_seconds(); });
             }},
            {"config",
             [&s, n, changed] {
                 return std::make_shared<DocumentFile>(
                     [&s, n] { return s.config_text(n); },
                     [&s, n](std::string_view t) { return s.set_config_text(n, t); }, changed,
                     [&s, n](std::string_view t) { return s.check_config_draft(n, t); });
             }},
            {"instructions",
             [&s, n, changed] {
                 return std::make_shared<DocumentFile>(
                     [&s, n] { return s.instructions(n); },
                     [&s, n](std::string_view t) { return s.set_instructions(n, t); }, changed);
             }},
            {"err",
             [&s, n, changed] {
                 return std::make_shared<SnapshotFile>([&s, n] { return s.agent_err(n); }, changed);
             }},
            {"caps",
             [&s, n, changed] {
                 return std::make_shared<SnapshotFile>([&s, n] { return s.caps_text(n); }, changed);
             }},
        };
    }

    Result<Attr> attr() const override {
        auto t = s_.agent_changed(name_);
        if (!t) return t.error();
        return Attr{S_IFDIR | 0755, 0, *t};
    }

    std::vector<std::string> list() const override {
        std::vector<std::string> names;
        for (auto& [n, f] : entries_) names.push_back(n);
        for (auto& n : scratch_->names()) names.push_back(n);
        return names;
    }

    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.has_agent(name_)) return nullptr;
        if (auto node = find_fixed(entries_, name)) return node;
        if (auto d = scratch_->get(name)) return std::make_shared<ScratchFile>(d);
        return nullptr;
    }

    Result<std::shared_ptr<FileNode>> create(const std::string& name, mode_t mode) override {
        if (!s_.has_agent(name_)) return make_error(ENOENT, "no agent " + name_);
        if (is_fixed(entries_, name)) return make_error(EEXIST, name + " exists");
        return std::shared_ptr<FileNode>(
            std::make_shared<ScratchFile>(scratch_->create(name, mode)));
    }

    Status unlink(const std::string& name) override {
        if (is_fixed(entries_, name))
            return make_error(EPERM, name + " is part of the agent and cannot be removed");
        if (!scratch_->remove(name)) return make_error(ENOENT, "no file " + name);
        return {};
    }

    // Editors save by renaming: a scratch file over config installs it; config
    // renamed to a backup name leaves a copy and keeps config in force.
    Status rename(const std::string& from, const std::string& to, unsigned flags) override {
        if (!s_.has_agent(name_)) return make_error(ENOENT, "no agent " + name_);
        if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE))
            return make_error(EINVAL, "unsupported rename flags");
        bool from_fixed = is_fixed(entries_, from), to_fixed = is_fixed(entries_, to);
        auto src = lookup(from);
        if (!src) return make_error(ENOENT, "no file " + from);
        if ((flags & RENAME_NOREPLACE) && lookup(to)) return make_error(EEXIST, to + " exists");
        auto* file = dynamic_cast<FileNode*>(src.get());
        if (from_fixed && to_fixed) return make_error(EPERM, "protocol files cannot be renamed");
        if (to_fixed) {
            auto target = std::dynamic_pointer_cast<FileNode>(lookup(to));
            auto data = file->contents();
            if (!data) return data.error();
            if (auto st = target->replace(*data); !st) return st;
            scratch_->remove(from);
            return {};
        }
        if (from_fixed) {
            auto data = file->contents();
            if (!data) return data.error();
            auto copy = scratch_->create(to, 0644);
            std::lock_guard lk(copy->mu);
            copy->data = std::move(*data);
            copy->mtime = now_seconds();
            return {};
        }
        auto d = scratch_->get(from);
        scratch_->remove(from);
        scratch_->put(to, d);
        return {};
    }

  private:
    Swarm& s_;
    std::string name_;
    std::shared_ptr<ScratchStore> scratch_;
    FixedEntries entries_;
};

// ------------------------------------------------------------ agents/

class AgentsDir : public DirNode {
  public:
    explicit AgentsDir(SwarmTree& tree) : tree_(tree) {}
    std::vector<std::string> list() const override { return tree_.swarm().agent_names(); }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!tree_.swarm().has_agent(name)) return nullptr;
        return std::make_shared<AgentDir>(tree_, name);
    }
    Status mkdir(const std::string& name) override { return tree_.swarm().create_agent(name); }
    Status rmdir(const std::string& name) override {
        auto s = tree_.swarm().remove_agent(name);
        if (s) tree_.drop_scratch(name);
        return s;
    }
    double mtime() const override { return tree_.swarm().started(); }

  private:
    SwarmTree& tree_;
};

// ------------------------------------------------------------ conv/N/

class ConvDir : public DirNode {
  public:
    ConvDir(Swarm& s, int64_t id) : s_(s), id_(id) {
        TimeFn changed = [&s, id] {
            auto t = s.conv_changed(id);
            return t ? *t : 0.0;
        };
        entries_ = {
            {"ctl",
             [&s, id, changed] {
                 return std::make_shared<ControlFile>(
                     [&s, id] { return s.conv_ctl_text(id); },
                     [&s, id](std::string_view c) { return s.conv_ctl(id, c); }, changed);
             }},
            {"in",
             [&s, id] {
                 return std::make_shared<QueueFile>(
                     [&s, id](std::string m) { return s.conv_send(id, std::move(m)); },
                     [&s, id] { return s.conv_can_send(id); },
                     [&s, id]() -> Status {
                         if (!s.has_conversation(id)) return make_error(ENOENT, "no conversation");
                         return {};
                     });
             }},
            {"out",
             [&s, id] {
                 return std::make_shared<StreamFile>([&s, id] { return s.conv_out(id); }, true);
             }},
            {"agent",
             [&s, id, changed] {
                 return std::make_shared<SnapshotFile>([&s, id] { return s.conv_agent(id); },
                                                       changed);
             }},
            {"vars",
             [&s, id, changed] {
                 return std::make_shared<DocumentFile>(
                     [&s, id] { return s.conv_vars(id); },
                     [&s, id](std::string_view t) { return s.set_conv_vars(id, t); }, changed,
                     [&s, id](std::string_view t) { return s.check_vars_draft(id, t); });
             }},
            {"context",
             [&s, id, changed] {
                 return std::make_shared<SnapshotFile>([&s, id] { return s.conv_context(id); },
                                                       changed);
             }},
        };
    }
    Result<Attr> attr() const override {
        auto t = s_.conv_changed(id_);
        if (!t) return t.error();
        return Attr{S_IFDIR | 0755, 0, *t};
    }
    std::vector<std::string> list() const override {
        std::vector<std::string> names;
        for (auto& [n, f] : entries_) names.push_back(n);
        return names;
    }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.has_conversation(id_)) return nullptr;
        return find_fixed(entries_, name);
    }

  private:
    Swarm& s_;
    int64_t id_;
    FixedEntries entries_;
};

// ------------------------------------------------------------ conv/

class ConvsDir : public DirNode {
  public:
    explicit ConvsDir(Swarm& s) : s_(s) {}
    std::vector<std::string> list() const override {
        std::vector<std::string> names{"clone"};
        for (int64_t id : s_.conversation_ids()) names.push_back(std::to_string(id));
        return names;
    }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (name == "clone") {
            auto& s = s_;
            return std::make_shared<SnapshotFile>(
                [&s]() -> Result<std::string> {
                    auto id = s.create_conversation();
                    if (!id) return id.error();
                    return std::to_string(*id) + "\n";
                },
                [&s] { return s.started(); },
                []() -> Result<std::string> { return std::string(); });
        }
        auto id = parse_conv_id(name);
        if (!id || !s_.has_conversation(*id)) return nullptr;
        return std::make_shared<ConvDir>(s_, *id);
    }
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
};

// ------------------------------------------------------------ tools/

class ToolDir : public DirNode {
  public:
    ToolDir(Swarm& s, std::string name) : s_(s), name_(std::move(name)) {}
    std::vector<std::string> list() const override { return {"spec", "call"}; }
    std::shared_ptr<Node> lookup(const std::string& file) override {
        auto& s = s_;
        auto n = name_;
        auto exists = [&s, n]() -> Status {
            if (!s.tool_spec(n)) return make_error(ENOENT, "no tool " + n);
            return {};
        };
        if (file == "spec")
            return std::make_shared<SnapshotFile>([&s, n] { return s.tool_spec(n); },
                                                  [&s] { return s.started(); });
        if (file == "call")
            return std::make_shared<QueryFile>(
                [&s, n](std::string req, std::function<void(Result<std::string>)> done) {
                    s.call_tool(n, std::move(req), std::move(done));
                },
                exists);
        return nullptr;
    }
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
    std::string name_;
};

class ToolsDir : public DirNode {
  public:
    explicit ToolsDir(Swarm& s) : s_(s) {}
    std::vector<std::string> list() const override { return s_.tool_names(); }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.tool_spec(name)) return nullptr;
        return std::make_shared<ToolDir>(s_, name);
    }
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
};

// ------------------------------------------------------------ events/

class EventsDir : public DirNode {
  public:
    explicit EventsDir(Swarm& s) : s_(s) {}
    std::vector<std::string> list() const override { return s_.topic_names(); }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.has_topic(name)) return nullptr;
        return topic(name);
    }
    // `echo x > events/NEW` makes the topic, then publishes to it.
    Result<std::shared_ptr<FileNode>> create(const std::string& name, mode_t) override {
        if (auto st = s_.create_topic(name); !st) return st.error();
        return std::shared_ptr<FileNode>(topic(name));
    }
    Status unlink(const std::string& name) override {
        if (!s_.has_topic(name)) return make_error(ENOENT, "no topic " + name);
        return make_error(EPERM, "topics are history and cannot be removed");
    }
    double mtime() const override { return s_.started(); }

  private:
    std::shared_ptr<TopicFile> topic(const std::string& name) {
        auto& s = s_;
        auto publish = std::make_shared<QueueFile>(
            [&s, name](std::string m) { return s.publish(name, std::move(m)); },
            [&s, name] { return s.check_topic(name); },
            [&s, name]() -> Status {
                if (!s.has_topic(name)) return make_error(ENOENT, "no topic " + name);
                return {};
            });
        auto follow =
            std::make_shared<StreamFile>([&s, name] { return s.topic_stream(name); }, true);
        return std::make_shared<TopicFile>(std::move(publish), std::move(follow));
    }
    Swarm& s_;
};

// ------------------------------------------------------------ /

class RootDir : public DirNode {
  public:
    explicit RootDir(SwarmTree& tree) : tree_(tree) {
        Swarm& s = tree.swarm();
        entries_ = {
            {"ctl",
             [&s] {
                 return std::make_shared<ControlFile>(
                     [&s]() -> Result<std::string> { return s.ctl_text(); },
                     [&s](std::string_view c) { return s.ctl(c); }, [&s] { return s.started(); });
             }},
            {"status",
             [&s] {
                 return std::make_shared<SnapshotFile>(
                     [&s]() -> Result<std::string> { return s.status_text(); },
                     [] { return now_seconds(); });
             }},
            {"log",
             // Seekable with its length as size, so tail -f and head -n work.
             [&s] { return std::make_shared<StreamFile>([&s] { return s.log_stream(); }, true); }},
            {"agents", [&tree] { return std::make_shared<AgentsDir>(tree); }},
            {"conv", [&s] { return std::make_shared<ConvsDir>(s); }},
            {"tools", [&s] { return std::make_shared<ToolsDir>(s); }},
            {"events", [&s] { return std::make_shared<EventsDir>(s); }},
            {"views",
             [&tree] { return std::make_shared<ViewsDir>(tree.swarm(), tree.vault_views()); }},
            {"metrics",
             [&s] {
                 return std::make_shared<SnapshotFile>(
                     [&s]() -> Result<std::string> { return s.metrics_text(); },
                     [] { return now_seconds(); });
             }},
        };
        // A swarm without a vault folder (unit tests) has no vault entry.
        if (!s.vault_dir().empty()) entries_.push_back({"vault", [&tree] { return tree.vault(); }});
    }
    std::vector<std::string> list() const override {
        std::vector<std::string> names;
        for (auto& [n, f] : entries_) names.push_back(n);
        return names;
    }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        return find_fixed(entries_, name);
    }
    double mtime() const override { return tree_.swarm().started(); }

  private:
    SwarmTree& tree_;
    FixedEntries entries_;
};

}  // namespace

std::shared_ptr<DirNode> SwarmTree::root() { return std::make_shared<RootDir>(*this); }

std::shared_ptr<ScratchStore> SwarmTree::scratch(const std::string& agent) {
    std::lock_guard lk(mu_);
    auto& s = scratch_[agent];
    if (!s) s = std::make_shared<ScratchStore>();
    return s;
}

void SwarmTree::drop_scratch(const std::string& agent) {
    std::lock_guard lk(mu_);
    scratch_.erase(agent);
}

std::shared_ptr<DirNode> SwarmTree::vault() {
    if (swarm_.vault_dir().empty()) return nullptr;
    std::lock_guard lk(mu_);
    if (!vault_) {
        auto dir = PassthroughDir::open(swarm_.vault_dir());
        if (!dir) {
            if (!vault_failed_) spdlog::error("{}", dir.error().message);
            vault_failed_ = true;
            return nullptr;
        }
        vault_ = std::move(*dir);
    }
    return vault_;
}

}  // namespace swarmfs::fs
