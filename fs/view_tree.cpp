#include "fs/view_tree.h"

#include <sys/stat.h>

#include <algorithm>

#include "fs/protocol_files.h"
#include "fs/vault_view.h"

namespace swarmfs::fs {

namespace {

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
        if (name == self_)
            return std::make_shared<FixedDir>(agent_files(s_, self_, self_),
                                              agent_changed_fn(s_, self_));
        if (!holds(s_, self_, Capability::Kind::send, name))
            return hidden(s_, self_, "send:" + name, "agents/" + name);
        auto& s = s_;
        auto self = self_;
        return std::make_shared<FixedDir>(
            FixedEntries({{"inbox", [&s, self, name] { return inbox_file(s, name, self); }}}),
            [&s] { return s.started(); });
    }
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
    std::string self_;
};

// ------------------------------------------------------------ conv/

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
        return std::make_shared<FixedDir>(conv_files(s_, *id, self_), conv_changed_fn(s_, *id));
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
        return tool_dir(s_, name, self_);
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
        return topic_file(s_, name, self_);
    }
    Result<std::shared_ptr<FileNode>> create(const std::string& name, mode_t) override {
        if (auto st = s_.check_publish_as(self_, name); !st) return st.error();
        if (auto st = s_.create_topic(name); !st) return st.error();
        return std::shared_ptr<FileNode>(topic_file(s_, name, self_));
    }
    double mtime() const override { return s_.started(); }

  private:
    Swarm& s_;
    std::string self_;
};

// ------------------------------------------------------------ views/NAME/

std::shared_ptr<Node> view_root(Swarm& s, const std::string& n,
                                const std::shared_ptr<VaultViews>& vaults) {
    auto started = [&s] { return s.started(); };
    FixedEntries e({
        {"agents", [&s, n] { return std::make_shared<ViewAgentsDir>(s, n); }},
        {"conv", [&s, n] { return std::make_shared<ViewConvsDir>(s, n); }},
        {"tools", [&s, n] { return std::make_shared<ViewToolsDir>(s, n); },
         [&s, n] { return holds_any(s, n, Capability::Kind::tool); }},
        {"events", [&s, n] { return std::make_shared<ViewEventsDir>(s, n); },
         [&s, n] { return holds_any(s, n, Capability::Kind::publish); }},
        {"vault", [vaults, n] { return std::shared_ptr<Node>(vaults->get(n)); },
         [&s, n] {
             auto u = s.unveil_of(n);
             return !s.vault_dir().empty() && u && !u->empty();
         }},
    });
    return std::make_shared<FixedDir>(std::move(e), started);
}

}  // namespace

std::shared_ptr<Node> ViewsDir::lookup(const std::string& name) {
    if (!s_.has_agent(name)) return nullptr;
    return view_root(s_, name, vaults_);
}

}  // namespace swarmfs::fs
