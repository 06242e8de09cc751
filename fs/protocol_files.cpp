#include "fs/protocol_files.h"

#include <algorithm>

#include "fs/control_file.h"
#include "fs/document_file.h"
#include "fs/query_file.h"
#include "fs/queue_file.h"
#include "fs/snapshot_file.h"
#include "fs/stream_file.h"

namespace swarmfs::fs {

namespace {

using TextFn = std::function<Result<std::string>()>;

Factory snapshot(TextFn text, TimeFn mtime) {
    return [text = std::move(text), mtime = std::move(mtime)] {
        return std::make_shared<SnapshotFile>(text, mtime);
    };
}

// A document the owner may edit (with its draft check) and a view may only
// read: an agent must not grant itself more by rewriting its definition.
Factory document(const Actor& as, TextFn text, std::function<Status(std::string_view)> set,
                 TimeFn mtime, std::function<Status(std::string_view)> check = nullptr) {
    if (as) return snapshot(std::move(text), std::move(mtime));
    return [text = std::move(text), set = std::move(set), mtime = std::move(mtime),
            check = std::move(check)] {
        return std::make_shared<DocumentFile>(text, set, mtime, check);
    };
}

}  // namespace

bool serves(Swarm& s, const std::string& agent, int64_t id) {
    auto ids = s.conversations_of(agent);
    return std::binary_search(ids.begin(), ids.end(), id);
}

TimeFn agent_changed_fn(Swarm& s, const std::string& agent) {
    return [&s, agent] {
        auto t = s.agent_changed(agent);
        return t ? *t : 0.0;
    };
}

TimeFn conv_changed_fn(Swarm& s, int64_t id) {
    return [&s, id] {
        auto t = s.conv_changed(id);
        return t ? *t : 0.0;
    };
}

FixedEntries agent_files(Swarm& s, const std::string& n, const Actor& as) {
    TimeFn changed = agent_changed_fn(s, n);
    FixedEntries e;
    e.add({"ctl", [&s, n, as, changed] {
               return std::make_shared<ControlFile>([&s, n] { return s.agent_ctl_text(n); },
                                                    [&s, n, as](std::string_view c) {
                                                        return as ? s.agent_ctl_as(*as, c)
                                                                  : s.agent_ctl(n, c);
                                                    },
                                                    changed);
           }});
    if (!as) e.add({"inbox", [&s, n] { return inbox_file(s, n, std::nullopt); }});
    e.add({"output", [&s, n] {
               return std::make_shared<StreamFile>([&s, n] { return s.agent_output(n); }, true);
           }});
    e.add(
        {"status", snapshot([&s, n] { return s.agent_status(n); }, [] { return now_seconds(); })});
    e.add({"config", document(
                         as, [&s, n] { return s.config_text(n); },
                         [&s, n](std::string_view t) { return s.set_config_text(n, t); }, changed,
                         [&s, n](std::string_view t) { return s.check_config_draft(n, t); })});
    e.add({"instructions",
           document(
               as, [&s, n] { return s.instructions(n); },
               [&s, n](std::string_view t) { return s.set_instructions(n, t); }, changed)});
    e.add({"err", snapshot([&s, n] { return s.agent_err(n); }, changed)});
    e.add({"caps", snapshot([&s, n] { return s.caps_text(n); }, changed)});
    return e;
}

std::shared_ptr<Node> inbox_file(Swarm& s, const std::string& to, const Actor& as) {
    return std::make_shared<QueueFile>(
        [&s, to, as](std::string m) {
            return as ? s.send_as(*as, to, std::move(m)) : s.send(to, std::move(m));
        },
        [&s, to, as] { return as ? s.can_send_as(*as, to) : s.can_send(to); },
        [&s, to]() -> Status {
            if (!s.has_agent(to)) return make_error(ENOENT, "no agent " + to);
            return {};
        });
}

FixedEntries conv_files(Swarm& s, int64_t id, const Actor& as) {
    TimeFn changed = conv_changed_fn(s, id);
    FixedEntries e;
    e.add({"ctl", [&s, id, as, changed] {
               return std::make_shared<ControlFile>([&s, id] { return s.conv_ctl_text(id); },
                                                    [&s, id, as](std::string_view c) {
                                                        return as ? s.conv_ctl_as(*as, id, c)
                                                                  : s.conv_ctl(id, c);
                                                    },
                                                    changed);
           }});
    if (!as)
        e.add({"in", [&s, id] {
                   return std::make_shared<QueueFile>(
                       [&s, id](std::string m) { return s.conv_send(id, std::move(m)); },
                       [&s, id] { return s.conv_can_send(id); },
                       [&s, id]() -> Status {
                           if (!s.has_conversation(id))
                               return make_error(ENOENT, "no conversation");
                           return {};
                       });
               }});
    e.add({"out", [&s, id] {
               return std::make_shared<StreamFile>([&s, id] { return s.conv_out(id); }, true);
           }});
    e.add({"agent", snapshot([&s, id] { return s.conv_agent(id); }, changed)});
    // Variables travel with the conversation to whoever it is handed to:
    // the agent serving it may set them, as may the owner.
    e.add({"vars", [&s, id, as, changed] {
               return std::make_shared<DocumentFile>(
                   [&s, id] { return s.conv_vars(id); },
                   [&s, id, as](std::string_view t) -> Status {
                       if (as && !serves(s, *as, id))
                           return make_error(EACCES, "conversation " + std::to_string(id) +
                                                         " is not served by " + *as);
                       return s.set_conv_vars(id, t);
                   },
                   changed, [&s, id](std::string_view t) { return s.check_vars_draft(id, t); });
           }});
    e.add({"context", snapshot([&s, id] { return s.conv_context(id); }, changed)});
    return e;
}

std::shared_ptr<DirNode> tool_dir(Swarm& s, const std::string& tool, const Actor& as) {
    FixedEntries e;
    e.add(
        {"spec", snapshot([&s, tool] { return s.tool_spec(tool); }, [&s] { return s.started(); })});
    e.add({"call", [&s, tool, as] {
               return std::make_shared<QueryFile>(
                   [&s, tool, as](std::string req, std::function<void(Result<std::string>)> done) {
                       if (as)
                           s.call_tool_as(*as, tool, std::move(req), std::move(done));
                       else
                           s.call_tool(tool, std::move(req), std::move(done));
                   },
                   [&s, tool]() -> Status {
                       if (!s.tool_spec(tool)) return make_error(ENOENT, "no tool " + tool);
                       return {};
                   });
           }});
    return std::make_shared<FixedDir>(std::move(e), [&s] { return s.started(); });
}

std::shared_ptr<TopicFile> topic_file(Swarm& s, const std::string& topic, const Actor& as) {
    auto publish = std::make_shared<QueueFile>(
        [&s, topic, as](std::string m) {
            return as ? s.publish_as(*as, topic, std::move(m)) : s.publish(topic, std::move(m));
        },
        [&s, topic, as] { return as ? s.check_publish_as(*as, topic) : s.check_topic(topic); },
        [&s, topic]() -> Status {
            if (!s.has_topic(topic)) return make_error(ENOENT, "no topic " + topic);
            return {};
        });
    auto follow = std::make_shared<StreamFile>([&s, topic] { return s.topic_stream(topic); }, true);
    return std::make_shared<TopicFile>(std::move(publish), std::move(follow));
}

}  // namespace swarmfs::fs
