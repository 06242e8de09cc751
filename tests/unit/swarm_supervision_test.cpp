// The kernel's scheduler and supervisor without FUSE: priority classes under
// a full pool, aging, stop mid-turn, the turn time limit, restart intensity
// and parked messages, one_for_all groups, and all of it across a restart.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "agents/swarm.h"
#include "test_util.h"

using namespace swarmfs;
using swarmfs::test::contains;
using swarmfs::test::eventually;
using json = nlohmann::json;

namespace {

std::string read_all(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

void touch(const std::string& path) { std::ofstream(path) << ""; }

class Supervision : public ::testing::Test {
  protected:
    std::unique_ptr<Swarm> open(int workers = 64, double aging = 5,
                                json supervisors = json::object()) {
        SwarmOptions o;
        // These tests watch host processes and files (pids, barriers): the
        // sandbox, on by default, would hide both. sandbox_test covers it.
        o.sandbox = false;
        o.db_path = dir.file("swarm.db");
        o.workers = workers;
        o.aging = aging;
        o.supervisors = std::move(supervisors);
        auto s = Swarm::open(o);
        EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
        return s.ok() ? std::move(*s) : nullptr;
    }
    // An exec agent that holds its turn until the file `gate` exists.
    json gated(const std::string& gate, const std::string& then = "cat") {
        return {
            {"exec",
             {"sh", "-c", "while [ ! -e " + dir.file(gate) + " ]; do sleep 0.02; done; " + then}}};
    }
    std::string status(Swarm& s, const std::string& agent) { return *s.agent_status(agent); }

    test::TempDir dir;
};

}  // namespace

TEST_F(Supervision, UnderAFullPoolInteractiveWorkStartsFirst) {
    auto s = open(/*workers=*/1);
    std::string order = dir.file("order");
    ASSERT_TRUE(s->create_agent("blocker", gated("go")).ok());
    for (auto [name, prio] :
         {std::pair{"bg", "background"}, {"def", "default"}, {"ui", "interactive"}})
        ASSERT_TRUE(
            s->create_agent(
                 name, json{{"exec", {"sh", "-c", std::string("echo ") + name + " >> " + order}},
                            {"priority", prio}})
                .ok());
    ASSERT_TRUE(s->send("blocker", "x").ok());
    ASSERT_TRUE(eventually([&] { return contains(status(*s, "blocker"), "state running"); }));
    // Arrival order: background, default, interactive; the one worker is busy.
    for (auto name : {"bg", "def", "ui"}) ASSERT_TRUE(s->send(name, "m").ok());
    EXPECT_TRUE(contains(status(*s, "bg"), "state queued\n")) << status(*s, "bg");
    touch(dir.file("go"));
    ASSERT_TRUE(s->wait_idle(20));
    EXPECT_EQ(read_all(order), "ui\ndef\nbg\n");
}

TEST_F(Supervision, BackgroundWorkAgesAndIsNotStarved) {
    // aging 0.1 s: after 0.3 s of waiting, background work counts as interactive
    // and, having arrived first, goes first.
    auto s = open(/*workers=*/1, /*aging=*/0.1);
    std::string order = dir.file("order");
    ASSERT_TRUE(s->create_agent("blocker", gated("go")).ok());
    ASSERT_TRUE(s->create_agent("bg", json{{"exec", {"sh", "-c", "echo bg >> " + order}},
                                           {"priority", "background"}})
                    .ok());
    ASSERT_TRUE(s->create_agent("ui", json{{"exec", {"sh", "-c", "echo ui >> " + order}},
                                           {"priority", "interactive"}})
                    .ok());
    ASSERT_TRUE(s->send("blocker", "x").ok());
    ASSERT_TRUE(eventually([&] { return contains(status(*s, "blocker"), "state running"); }));
    ASSERT_TRUE(s->send("bg", "m").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ASSERT_TRUE(s->send("ui", "m").ok());
    touch(dir.file("go"));
    ASSERT_TRUE(s->wait_idle(20));
    EXPECT_EQ(read_all(order), "bg\nui\n");
}

TEST_F(Supervision, PriorityAndBudgetAreSetThroughCtlAndShownInConfig) {
    auto s = open();
    ASSERT_TRUE(s->create_agent("a", json{{"exec", {"cat"}}}).ok());
    ASSERT_TRUE(s->agent_ctl("a", "priority background\n").ok());
    ASSERT_TRUE(s->agent_ctl("a", "budget 5000\n").ok());
    auto cfg = json::parse(*s->config_text("a"));
    EXPECT_EQ(cfg["priority"], "background");
    EXPECT_EQ(cfg["budget"], 5000);
    EXPECT_TRUE(contains(status(*s, "a"), "priority background\n"));
    auto bad = s->agent_ctl("a", "priority urgent\n");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, EINVAL);
    bad = s->agent_ctl("a", "budget lots\n");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, EINVAL);
    EXPECT_EQ(json::parse(*s->config_text("a"))["budget"], 5000) << "nothing valid changed";
}

TEST_F(Supervision, StopCancelsTheRunningTurnNowAndKeepsTheQueue) {
    auto s = open();
    ASSERT_TRUE(
        s->create_agent("slow", json{{"exec", {"sh", "-c", "echo started; exec sleep 60"}}}).ok());
    ASSERT_TRUE(s->send("slow", "one").ok());
    ASSERT_TRUE(s->send("slow", "two").ok());
    ASSERT_TRUE(eventually([&] { return s->agent_output("slow")->snapshot() == "started\n"; }));
    ASSERT_TRUE(s->agent_ctl("slow", "stop\n").ok());
    // stop returns once the turn is cancelled and recorded.
    std::string st = status(*s, "slow");
    EXPECT_TRUE(contains(st, "state stopped\n")) << st;
    EXPECT_TRUE(contains(st, "queue 1\n")) << st;
    EXPECT_TRUE(contains(*s->agent_err("slow"), "stopped by ctl"));
    EXPECT_TRUE(contains(st, "restarts 0\n")) << "a stop is not a crash: " << st;
    EXPECT_TRUE(
        eventually([&] { return contains(s->log_stream()->snapshot(), "stopped by ctl"); }));
}

TEST_F(Supervision, ATurnPastItsTimeLimitIsACrashRetriedOnceThenParked) {
    auto s = open();
    ASSERT_TRUE(
        s->create_agent("hang", json{{"exec", {"sleep", "60"}}, {"turn_timeout", 0.2}}).ok());
    ASSERT_TRUE(s->send("hang", "x").ok());
    ASSERT_TRUE(s->wait_idle(20));
    auto err = *s->agent_err("hang");
    EXPECT_TRUE(contains(err, "turn timed out after 0.2 s")) << err;
    EXPECT_TRUE(contains(err, "message 1 parked as failed")) << err;
    std::string st = status(*s, "hang");
    EXPECT_TRUE(contains(st, "failed 2\n")) << st;
    EXPECT_TRUE(contains(st, "parked 1\n")) << st;
    EXPECT_TRUE(contains(st, "state idle\n")) << st;
}

TEST_F(Supervision, PastItsRestartIntensityTheAgentStaysCrashedUntilRestart) {
    auto s = open();
    std::string ok = dir.file("ok");
    ASSERT_TRUE(s->create_agent("frail", json{{"exec", {"sh", "-c", "[ -e " + ok + " ] && cat"}},
                                              {"restart", {{"max_restarts", 3}, {"period", 60}}}})
                    .ok());
    for (auto m : {"one\n", "two\n", "three\n"}) ASSERT_TRUE(s->send("frail", m).ok());
    ASSERT_TRUE(s->wait_idle(20));
    // one: crash, restart, crash (parked); two: crash, restart (3/3), crash: given up.
    std::string st = status(*s, "frail");
    EXPECT_TRUE(contains(st, "state crashed\n")) << st;
    EXPECT_TRUE(contains(st, "crashed 3/3 in 60s: exit status 1\n")) << st;
    EXPECT_TRUE(contains(st, "parked 2\n")) << st;
    EXPECT_TRUE(contains(st, "queue 1\n")) << "three waits for the restart: " << st;
    EXPECT_TRUE(contains(*s->agent_err("frail"), "until \"restart\"")) << *s->agent_err("frail");
    // A new message is still accepted (acknowledged, kept), not run.
    ASSERT_TRUE(s->send("frail", "four\n").ok());
    ASSERT_TRUE(s->wait_idle(5));
    EXPECT_EQ(s->agent_output("frail")->snapshot(), "");

    // After a restart across a server restart too.
    s->shutdown();
    s = open();
    st = status(*s, "frail");
    EXPECT_TRUE(contains(st, "state crashed\n")) << "given up stays given up: " << st;
    touch(ok);
    ASSERT_TRUE(s->agent_ctl("frail", "restart\n").ok());
    ASSERT_TRUE(s->wait_idle(20));
    EXPECT_EQ(s->agent_output("frail")->snapshot(), "three\nfour\n");
    EXPECT_TRUE(contains(status(*s, "frail"), "state idle\n"));
}

TEST_F(Supervision, ACrashInAOneForAllGroupRestartsItsSiblings) {
    auto s = open(64, 5, json{{"pair", {{"strategy", "one_for_all"}, {"agents", {"a", "b"}}}}});
    ASSERT_TRUE(s->create_agent("a", json{{"exec", {"sh", "-c", "exit 7"}}}).ok());
    ASSERT_TRUE(s->create_agent("b", gated("go", "echo done")).ok());
    ASSERT_TRUE(s->create_agent("c", gated("go", "echo done")).ok());  // not in the group
    ASSERT_TRUE(s->send("b", "x").ok());
    ASSERT_TRUE(s->send("c", "x").ok());
    ASSERT_TRUE(eventually([&] {
        return contains(status(*s, "b"), "state running") &&
               contains(status(*s, "c"), "state running");
    }));
    ASSERT_TRUE(s->send("a", "boom").ok());
    ASSERT_TRUE(eventually([&] { return contains(status(*s, "a"), "parked 1\n"); }));
    touch(dir.file("go"));
    ASSERT_TRUE(s->wait_idle(20));
    std::string b = status(*s, "b"), c = status(*s, "c");
    EXPECT_TRUE(contains(*s->agent_err("b"), "restarted with a (one_for_all group pair)"))
        << *s->agent_err("b");
    EXPECT_TRUE(contains(b, "turns 1\n")) << "its message ran again and finished: " << b;
    EXPECT_TRUE(contains(b, "parked 0\n")) << b;
    EXPECT_EQ(s->agent_output("b")->snapshot(), "done\n");
    EXPECT_TRUE(contains(c, "failed 0\n")) << "outside the group: untouched: " << c;
    EXPECT_TRUE(contains(s->log_stream()->snapshot(), "group_restarted"));
}

TEST_F(Supervision, AnExceptionWhileHandlingATurnCrashesThatTurnOnly) {
    auto s = open();
    ASSERT_TRUE(s->create_agent("flaky", json{{"exec", {"cat"}}}).ok());
    ASSERT_TRUE(s->create_agent("steady", json{{"exec", {"cat"}}}).ok());
    // A reader of flaky's output whose wake-up throws, once, when the first
    // bytes arrive: the kernel is handling flaky's turn at that moment.
    std::atomic<bool> thrown{false};
    auto out = s->agent_output("flaky");
    out->listen([&] {
        if (out->size() > 0 && !thrown.exchange(true)) throw std::runtime_error("reader fault");
    });
    ASSERT_TRUE(s->send("flaky", "hello\n").ok());
    ASSERT_TRUE(s->send("steady", "hi\n").ok());
    ASSERT_TRUE(s->wait_idle(20));
    EXPECT_TRUE(thrown);
    std::string err = *s->agent_err("flaky");
    EXPECT_TRUE(contains(err, "internal error: reader fault")) << err;
    std::string st = status(*s, "flaky");
    EXPECT_TRUE(contains(st, "restarts 1\n")) << "the supervisor restarted it: " << st;
    EXPECT_TRUE(contains(st, "turns 1\n")) << "and the retry finished: " << st;
    EXPECT_TRUE(contains(st, "state idle\n")) << st;
    EXPECT_EQ(s->agent_output("steady")->snapshot(), "hi\n");
    EXPECT_TRUE(contains(s->log_stream()->snapshot(), "internal error: reader fault"));
    // The swarm goes on.
    ASSERT_TRUE(s->send("flaky", "again\n").ok());
    ASSERT_TRUE(s->wait_idle(20));
    EXPECT_TRUE(contains(s->agent_output("flaky")->snapshot(), "again\n"));
}
