// Event topics: events/TOPIC. Writing publishes: the payload and one message
// per subscribing agent are committed in one transaction (durable before the
// close that sent it returns), so every subscriber runs it, in parallel, as
// its own turn, or none does. Reading is the topic's stream: every payload so
// far, then waiting for more, as `log` does.
#include <algorithm>

#include "agents/swarm.h"

namespace swarmfs {

using json = nlohmann::json;

Topic& Swarm::topic(const std::string& name, double ts) {
    auto [it, made] = topics_.try_emplace(name);
    if (made) it->second.changed = ts;
    return it->second;
}

std::vector<std::string> Swarm::topic_names() const {
    std::lock_guard lk(topics_mu_);
    std::vector<std::string> names;
    for (auto& [n, t] : topics_) names.push_back(n);
    return names;
}

bool Swarm::has_topic(const std::string& name) const {
    std::lock_guard lk(topics_mu_);
    return topics_.count(name) > 0;
}

Status Swarm::check_topic(const std::string& name) {
    if (valid_agent_name(name)) return {};
    return report("", make_error(EINVAL, "bad topic name \"" + name +
                                             "\": use 1-64 of A-Z a-z 0-9 _ - . "
                                             "(not starting with . or ending with ~)"));
}

Status Swarm::create_topic(const std::string& name) {
    if (auto st = check_topic(name); !st) return st;
    std::lock_guard dl(declare_mu_);
    if (has_topic(name)) return {};
    return commit("topic_created", {{"topic", name}});
}

Status Swarm::publish(const std::string& name, std::string text) {
    if (auto st = guard_message("", text); !st) return st;
    if (auto st = check_topic(name); !st) return st;
    if (!text.empty() && text.back() != '\n') text += '\n';  // one publication, one line
    std::vector<Event> batch;
    double ts = now_seconds();
    std::vector<std::string> subscribers;
    for (auto& a : all_agents()) {
        std::lock_guard lk(a->mu);
        const auto& subs = a->config.subscribe;
        if (std::find(subs.begin(), subs.end(), name) != subs.end()) subscribers.push_back(a->name);
    }
    std::sort(subscribers.begin(), subscribers.end());
    Event pub;
    pub.kind = "published";
    pub.ts = ts;
    pub.data = {{"topic", name}, {"text", text}, {"subscribers", subscribers}};
    batch.push_back(std::move(pub));
    for (auto& agent : subscribers) {
        Event m;
        m.kind = "message";
        m.ts = ts;
        m.data = {{"msg", ++msg_seq_}, {"agent", agent}, {"text", text}, {"topic", name}};
        batch.push_back(std::move(m));
    }
    if (auto r = log_->commit(std::move(batch)); !r) return report("", r.error());
    return {};
}

std::shared_ptr<ByteStream> Swarm::topic_stream(const std::string& name) const {
    std::lock_guard lk(topics_mu_);
    auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : it->second.stream;
}

Result<Stamp> Swarm::topic_stamp(const std::string& name) const {
    std::lock_guard lk(topics_mu_);
    auto it = topics_.find(name);
    if (it == topics_.end()) return make_error(ENOENT, "no topic " + name);
    return Stamp{it->second.stream->size(),
                 std::max(it->second.changed, it->second.stream->mtime())};
}

}  // namespace swarmfs
