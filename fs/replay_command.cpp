#include "fs/replay_command.h"

#include <cstdio>
#include <filesystem>
#include <string>

#include "vault/event_log.h"

namespace swarmfs {

namespace {
void usage(FILE* out) {
    fprintf(out,
            "usage: swarmfs replay --state DIR [--agent NAME] [--conv N] [--turn N] [--msg N]\n"
            "                      [--kind KIND] [--after ID]\n"
            "  Prints the swarm's event history (state/swarm.db) as JSON lines, oldest first,\n"
            "  the same lines as MNT/log. Filters combine; --agent also matches handoffs\n"
            "  from or to the agent. Safe while the swarm is mounted.\n");
}

bool matches(const nlohmann::json& d, const char* key, const std::string& want) {
    if (want.empty()) return true;
    if (!d.contains(key)) return false;
    const auto& v = d[key];
    return v.is_string() ? v.get<std::string>() == want : v.dump() == want;
}
}  // namespace

int replay_command(int argc, char** argv) {
    std::string state, agent, conv, turn, msg, kind;
    int64_t after = 0;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        std::string v;
        bool ok = true;
        if (a == "--state")
            ok = value(state);
        else if (a == "--agent")
            ok = value(agent);
        else if (a == "--conv")
            ok = value(conv);
        else if (a == "--turn")
            ok = value(turn);
        else if (a == "--msg")
            ok = value(msg);
        else if (a == "--kind")
            ok = value(kind);
        else if (a == "--after") {
            ok = value(v);
            if (ok) after = std::atoll(v.c_str());
        } else if (a == "-h" || a == "--help") {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "swarmfs replay: unknown argument %s\n", a.c_str());
            ok = false;
        }
        if (!ok) {
            usage(stderr);
            return 2;
        }
    }
    if (state.empty()) {
        usage(stderr);
        return 2;
    }
    std::string db = state + "/swarm.db";
    if (!std::filesystem::exists(db)) {
        fprintf(stderr, "swarmfs replay: no event log at %s\n", db.c_str());
        return 1;
    }
    auto log = EventLog::open(db);
    if (!log) {
        fprintf(stderr, "swarmfs replay: %s: %s\n", db.c_str(), log.error().message.c_str());
        return 1;
    }
    auto st = (*log)->for_each(after, [&](const Event& e) {
        const auto& d = e.data;
        if (!kind.empty() && e.kind != kind) return;
        if (!agent.empty() && !matches(d, "agent", agent) && !matches(d, "from", agent) &&
            !matches(d, "to", agent))
            return;
        if (!matches(d, "conv", conv) || !matches(d, "turn", turn) || !matches(d, "msg", msg))
            return;
        std::string line = e.to_line();
        fwrite(line.data(), 1, line.size(), stdout);
    });
    if (!st) {
        fprintf(stderr, "swarmfs replay: %s\n", st.error().message.c_str());
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace swarmfs
