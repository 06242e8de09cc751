// The event log: JSON lines, oldest first, endless, live.
#include <nlohmann/json.hpp>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

using Log = MountedSwarm;

// The complete lines of `s` parsed as JSON (the last partial line is dropped).
std::vector<nlohmann::json> events(const std::string& s, std::string* bad = nullptr) {
    std::vector<nlohmann::json> v;
    auto ls = lines(s);
    if (!s.empty() && s.back() != '\n' && !ls.empty()) ls.pop_back();
    for (const auto& l : ls) {
        auto j = nlohmann::json::parse(l, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            if (bad) *bad = l;
            continue;
        }
        v.push_back(j);
    }
    return v;
}

bool has_event(const std::vector<nlohmann::json>& evs, const std::string& kind,
               const std::string& agent) {
    for (const auto& e : evs)
        if (e.value("kind", "") == kind && (agent.empty() || e.value("agent", "") == agent))
            return true;
    return false;
}

TEST_F(Log, OneJsonObjectPerLineWithTurnEvents) {
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    ASSERT_EQ(send("upper", "hello\n"), 0);
    EXPECT_EQ(cat_stream("agents/upper/output"), "HELLO\n");

    // log never ends: read it for a while with a timeout.
    Proc cat("cat " + shq(p("log")));
    ASSERT_TRUE(cat.wait_for("turn_finished", 5)) << "log so far:\n" << cat.out();
    cat.pump(0.3);
    EXPECT_FALSE(cat.exited()) << "cat log ended: log must never return EOF";
    const std::string text = cat.out();

    std::string bad;
    auto evs = events(text, &bad);
    EXPECT_TRUE(bad.empty()) << "not a JSON object line: " << bad;
    ASSERT_GE(evs.size(), 4u) << text;
    for (const auto& l : lines(text)) {
        if (l.empty()) continue;
        EXPECT_EQ(l.front(), '{') << l;
        EXPECT_NE(l.find("\"kind\""), std::string::npos) << l;
    }
    long long last_id = -1;
    for (const auto& e : evs) {
        ASSERT_TRUE(e.contains("id") && e["id"].is_number_integer()) << e.dump();
        EXPECT_GT(e["id"].get<long long>(), last_id) << "ids must increase: " << e.dump();
        last_id = e["id"].get<long long>();
        EXPECT_TRUE(e.contains("ts") && e["ts"].is_string()) << e.dump();
        EXPECT_TRUE(e.contains("kind") && e["kind"].is_string()) << e.dump();
    }
    EXPECT_TRUE(has_event(evs, "agent_created", "upper")) << text;
    EXPECT_TRUE(has_event(evs, "message", "upper")) << text;
    EXPECT_TRUE(has_event(evs, "turn_started", "upper")) << text;
    EXPECT_TRUE(has_event(evs, "turn_finished", "upper")) << text;

    // Order: created < message < started < finished.
    auto pos = [&](const std::string& kind) {
        for (size_t i = 0; i < evs.size(); ++i)
            if (evs[i].value("kind", "") == kind) return static_cast<long>(i);
        return -1L;
    };
    EXPECT_LT(pos("agent_created"), pos("message"));
    EXPECT_LT(pos("message"), pos("turn_started"));
    EXPECT_LT(pos("turn_started"), pos("turn_finished"));
}

TEST_F(Log, BlockedReaderGetsNewEventsLive) {
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    Proc cat("cat " + shq(p("log")));
    ASSERT_TRUE(cat.wait_for("agent_created", 5)) << cat.out();
    cat.pump(0.3);  // now parked at the end of the log
    ASSERT_FALSE(cat.exited()) << "cat log ended:\n" << cat.out();
    ASSERT_EQ(cat.out().find("\"message\""), std::string::npos) << cat.out();

    const double t0 = now();
    ASSERT_EQ(send("upper", "live\n"), 0);
    EXPECT_TRUE(cat.wait_for("\"message\"", 3)) << "no message event arrived live:\n" << cat.out();
    EXPECT_LT(now() - t0, 3.0);
    EXPECT_TRUE(cat.wait_for("turn_finished", 5)) << cat.out();
    EXPECT_FALSE(cat.exited());
}

TEST_F(Log, TailFollowSeesNewEvents) {
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    // tail block-buffers into a pipe and log never ends: ask for line
    // buffering, as on a terminal.
    Proc tail("timeout 6 stdbuf -oL tail -n +1 -f " + shq(p("log")));
    ASSERT_TRUE(tail.wait_for("agent_created", 4)) << tail.out();
    ASSERT_EQ(send("upper", "x\n"), 0);
    EXPECT_TRUE(tail.wait_for("turn_finished", 4)) << tail.out();
}

TEST_F(Log, ErrorsAreLogged) {
    Proc cat("cat " + shq(p("log")));
    EXPECT_EQ(write_file(p("ctl"), "frobnicate\n"), EINVAL);
    ASSERT_TRUE(cat.wait_for("\"error\"", 3)) << "no error event:\n" << cat.out();
}

}  // namespace
}  // namespace swarmfs::it
