// Supervision, as Erlang/OTP does it: a crashed turn (its command failed,
// the model failed after its retries, it ran past turn_timeout) restarts the
// agent within its restart intensity (default 5 in 30 s) and runs the message
// once more; a message that crashes twice is parked as failed, in err and the
// log, never dropped silently. Past the intensity the agent stays `crashed`
// with the reason until `restart` on its ctl. A stop is the user's doing,
// not a crash. Agents in a one_for_all group restart together: a sibling's
// running turn is cancelled and its message runs again, uncounted.
#include <algorithm>
#include <chrono>

#include "agents/swarm.h"

namespace swarmfs {

using json = nlohmann::json;

RestartIntensity Swarm::intensity_for(const AgentConfig& c) {
    return RestartIntensity(static_cast<int>(c.max_restarts),
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                std::chrono::duration<double>(c.restart_period)));
}

Swarm::Verdict Swarm::supervise_locked(Agent& a, const QueuedMessage& m, CancelKind cancelled,
                                       const std::string& reason, double ts,
                                       std::vector<Event>& events,
                                       std::vector<std::pair<std::string, std::string>>& regroup) {
    switch (cancelled) {
        case CancelKind::stop:
            return Verdict::done;
        case CancelKind::regroup:
            return Verdict::retry_uncounted;
        case CancelKind::none:
        case CancelKind::crash:
            break;
    }
    Verdict verdict = m.attempts == 0 ? Verdict::retry : Verdict::park;
    if (verdict == Verdict::park) {
        ++a.parked;
        add_err_line(a,
                     "message " + std::to_string(m.msg) +
                         " parked as failed: it crashed the agent twice (last: " + reason + ")",
                     ts);
    }
    auto now = std::chrono::steady_clock::now();
    if (a.intensity.allow_restart(now)) {
        ++a.restarts;
        count_restart(a.name);
        Event e;
        e.kind = "agent_restarted";
        e.ts = ts;
        e.data = {{"agent", a.name}, {"reason", reason}, {"restarts", a.restarts}};
        events.push_back(std::move(e));
        // one_for_all: the agent's group restarts with it.
        for (auto& [group, sup] : opts_.supervisors.items()) {
            if (sup.value("strategy", "one_for_one") != "one_for_all") continue;
            const json& members = sup.value("agents", json::array());
            if (std::find(members.begin(), members.end(), a.name) == members.end()) continue;
            for (auto& member : members) {
                std::string sib = member.get<std::string>();
                if (sib != a.name)
                    regroup.emplace_back(
                        sib, "restarted with " + a.name + " (one_for_all group " + group + ")");
            }
            Event g;
            g.kind = "group_restarted";
            g.ts = ts;
            g.data = {{"group", group}, {"agent", a.name}, {"reason", reason}};
            events.push_back(std::move(g));
        }
    } else {
        a.crashed = reason;
        std::string line = a.intensity.status(now, reason) +
                           "; it stays crashed until \"restart\" is written to its ctl";
        add_err_line(a, line, ts);
        a.last_error = line;
        Event e;
        e.kind = "agent_crashed";
        e.ts = ts;
        e.data = {{"agent", a.name},
                  {"reason", reason},
                  {"max_restarts", a.config.max_restarts},
                  {"period", a.config.restart_period}};
        events.push_back(std::move(e));
    }
    return verdict;
}

}  // namespace swarmfs
