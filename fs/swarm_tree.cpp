#include "fs/swarm_tree.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>

#include "fs/control_file.h"
#include "fs/protocol_files.h"
#include "fs/snapshot_file.h"
#include "fs/stream_file.h"
#include "fs/view_tree.h"
#include "vault/event_log.h"

namespace swarmfs::fs {

namespace {

// ------------------------------------------------------------ agents/NAME/

class AgentDir : public DirNode {
  public:
    AgentDir(SwarmTree& tree, std::string name)
        : s_(tree.swarm()),
          name_(std::move(name)),
          scratch_(tree.scratch(name_)),
          entries_(agent_files(s_, name_, std::nullopt)) {}

    Result<Attr> attr() const override {
        auto t = s_.agent_changed(name_);
        if (!t) return t.error();
        return Attr{S_IFDIR | 0755, 0, *t};
    }

    std::vector<std::string> list() const override {
        auto names = entries_.names();
        for (auto& n : scratch_->names()) names.push_back(n);
        return names;
    }

    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.has_agent(name_)) return nullptr;
        if (auto node = entries_.find(name)) return node;
        if (auto d = scratch_->get(name)) return std::make_shared<ScratchFile>(d);
        return nullptr;
    }

    Result<std::shared_ptr<FileNode>> create(const std::string& name, mode_t mode) override {
        if (!s_.has_agent(name_)) return make_error(ENOENT, "no agent " + name_);
        if (entries_.has(name)) return make_error(EEXIST, name + " exists");
        return std::shared_ptr<FileNode>(
            std::make_shared<ScratchFile>(scratch_->create(name, mode)));
    }

    Status unlink(const std::string& name) override {
        if (entries_.has(name))
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
        bool from_fixed = entries_.has(from), to_fixed = entries_.has(to);
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
    ConvDir(Swarm& s, int64_t id) : s_(s), id_(id), entries_(conv_files(s, id, std::nullopt)) {}
    Result<Attr> attr() const override {
        auto t = s_.conv_changed(id_);
        if (!t) return t.error();
        return Attr{S_IFDIR | 0755, 0, *t};
    }
    std::vector<std::string> list() const override { return entries_.names(); }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.has_conversation(id_)) return nullptr;
        return entries_.find(name);
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

class ToolsDir : public DirNode {
  public:
    explicit ToolsDir(Swarm& s) : s_(s) {}
    std::vector<std::string> list() const override { return s_.tool_names(); }
    std::shared_ptr<Node> lookup(const std::string& name) override {
        if (!s_.tool_spec(name)) return nullptr;
        return tool_dir(s_, name, std::nullopt);
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
        return topic_file(s_, name, std::nullopt);
    }
    // `echo x > events/NEW` makes the topic, then publishes to it.
    Result<std::shared_ptr<FileNode>> create(const std::string& name, mode_t) override {
        if (auto st = s_.create_topic(name); !st) return st.error();
        return std::shared_ptr<FileNode>(topic_file(s_, name, std::nullopt));
    }
    Status unlink(const std::string& name) override {
        if (!s_.has_topic(name)) return make_error(ENOENT, "no topic " + name);
        return make_error(EPERM, "topics are history and cannot be removed");
    }
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
};

// ------------------------------------------------------------ /

class RootDir : public DirNode {
  public:
    explicit RootDir(SwarmTree& tree) : tree_(tree) {
        Swarm& s = tree.swarm();
        entries_ = FixedEntries({
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
        });
        // A swarm without a vault folder (unit tests) has no vault entry.
        if (!s.vault_dir().empty()) entries_.add({"vault", [&tree] { return tree.vault(); }});
    }
    std::vector<std::string> list() const override { return entries_.names(); }
    std::shared_ptr<Node> lookup(const std::string& name) override { return entries_.find(name); }
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
