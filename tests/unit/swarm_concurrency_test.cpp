// Turns at once: an agent's `concurrency`, the order a conversation keeps
// whatever it is, and the restart intensity's memory across a restart of
// the server. Exec agents here use files in a temp dir as barriers, so
// "ran at the same time" is proved by a turn that can only finish if the
// others started, never by a timer.
#include <gtest/gtest.h>

#include <filesystem>

#include "agents/swarm.h"
#include "test_util.h"

using namespace swarmfs;
using swarmfs::test::contains;
using swarmfs::test::eventually;
using json = nlohmann::json;

namespace {

class Concurrency : public ::testing::Test {
  protected:
    std::unique_ptr<Swarm> open() {
        SwarmOptions o;
        // These tests watch host processes and files (pids, barriers): the
        // sandbox, on by default, would hide both. sandbox_test covers it.
        o.sandbox = false;
        o.db_path = dir.file("swarm.db");
        auto s = Swarm::open(o);
        EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
        return s.ok() ? std::move(*s) : nullptr;
    }
    json sh(const std::string& script, int concurrency = 1) {
        json j = {{"exec", {"sh", "-c", script}}};
        if (concurrency != 1) j["concurrency"] = concurrency;
        return j;
    }
    std::string status(Swarm& s, const std::string& agent) { return *s.agent_status(agent); }

    test::TempDir dir;
};

}  // namespace

TEST_F(Concurrency, AnAgentAllowedFourTurnsRunsFourInboxMessagesAtOnce) {
    auto s = open();
    std::filesystem::create_directory(dir.file("b"));
    // Each turn finishes only once all four have started.
    std::string d = dir.file("b");
    ASSERT_TRUE(s->create_agent("wide", sh("touch " + d + "/$SWARMFS_MSG; while [ $(ls " + d +
                                               " | wc -l) -lt 4 ]; do sleep 0.01; done; cat",
                                           4))
                    .ok());
    for (auto m : {"1\n", "2\n", "3\n", "4\n"}) ASSERT_TRUE(s->send("wide", m).ok());
    ASSERT_TRUE(s->wait_idle(20)) << "the four turns did not all run at once: "
                                  << status(*s, "wide");
    std::string out = s->agent_output("wide")->snapshot();
    for (auto m : {"1\n", "2\n", "3\n", "4\n"}) EXPECT_TRUE(contains(out, m)) << out;
    EXPECT_TRUE(contains(status(*s, "wide"), "turns 4\n")) << status(*s, "wide");
    EXPECT_TRUE(contains(*s->config_text("wide"), "\"concurrency\": 4")) << *s->config_text("wide");
}

TEST_F(Concurrency, ByDefaultAnAgentRunsOneTurnAtATimeInOrder) {
    auto s = open();
    std::string d = dir.path.string();
    // mkdir is atomic: a second turn inside the first would fail it.
    ASSERT_TRUE(s->create_agent("narrow", sh("mkdir " + d + "/lock || echo overlap >> " + d +
                                             "/bad; sleep 0.05; rmdir " + d + "/lock; cat"))
                    .ok());
    for (auto m : {"1\n", "2\n", "3\n", "4\n"}) ASSERT_TRUE(s->send("narrow", m).ok());
    ASSERT_TRUE(s->wait_idle(20));
    EXPECT_EQ(s->agent_output("narrow")->snapshot(), "1\n2\n3\n4\n");
    EXPECT_FALSE(std::filesystem::exists(dir.file("bad"))) << "two turns overlapped";
}

TEST_F(Concurrency, AConversationKeepsItsOrderWhileTheInboxRunsBesideIt) {
    auto s = open();
    std::string d = dir.path.string();
    // A conversation's turn holds until an inbox turn has run (so the inbox
    // is not queued behind it), and two of its turns must never overlap.
    std::string script = "if [ -n \"$SWARMFS_CONV\" ]; then mkdir " + d +
                         "/conv || echo overlap >> " + d + "/bad; while [ ! -e " + d +
                         "/inbox_ran ]; do sleep 0.01; done; " + "sleep 0.05; rmdir " + d +
                         "/conv; else touch " + d + "/inbox_ran; fi; cat";
    ASSERT_TRUE(s->create_agent("desk", sh(script, 4)).ok());
    auto id = s->create_conversation();
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(s->conv_ctl(*id, "agent desk\n").ok());
    ASSERT_TRUE(s->conv_send(*id, "first\n").ok());
    ASSERT_TRUE(s->conv_send(*id, "second\n").ok());
    ASSERT_TRUE(s->conv_send(*id, "third\n").ok());
    ASSERT_TRUE(s->send("desk", "inbox\n").ok());
    ASSERT_TRUE(s->wait_idle(20)) << status(*s, "desk");
    EXPECT_EQ(s->conv_out(*id)->snapshot(), "first\nsecond\nthird\n");
    EXPECT_FALSE(std::filesystem::exists(dir.file("bad")))
        << "two turns of one conversation overlapped";
    auto ctx = s->conv_context(*id);
    ASSERT_TRUE(ctx.ok());
    EXPECT_LT(ctx->find("first"), ctx->find("second"));
    EXPECT_LT(ctx->find("second"), ctx->find("third"));
}

TEST_F(Concurrency, StopEndsEveryRunningTurnOfTheAgent) {
    auto s = open();
    ASSERT_TRUE(s->create_agent("busy", sh("sleep 60", 3)).ok());
    for (auto m : {"1\n", "2\n", "3\n"}) ASSERT_TRUE(s->send("busy", m).ok());
    ASSERT_TRUE(eventually([&] {
        return s->metrics_text().find("swarmfs_running_turns{agent=\"busy\"} 3") !=
               std::string::npos;
    }));
    ASSERT_TRUE(s->agent_ctl("busy", "stop\n").ok());
    std::string st = status(*s, "busy");
    EXPECT_TRUE(contains(st, "state stopped\n")) << st;
    EXPECT_TRUE(contains(st, "failed 3\n")) << "all three were cancelled and recorded: " << st;
}

TEST_F(Concurrency, TheRestartIntensityRemembersRecentRestartsAcrossAServerRestart) {
    auto s = open();
    ASSERT_TRUE(s->create_agent("frail", json{{"exec", {"sh", "-c", "exit 1"}},
                                              {"restart", {{"max_restarts", 2}, {"period", 600}}}})
                    .ok());
    // Crash, restart (1/2), crash again: parked, restart (2/2).
    ASSERT_TRUE(s->send("frail", "one\n").ok());
    ASSERT_TRUE(s->wait_idle(20));
    std::string st = status(*s, "frail");
    ASSERT_TRUE(contains(st, "restarts 2\n")) << st;
    ASSERT_TRUE(contains(st, "state idle\n")) << st;

    s->shutdown();
    s = open();
    // Both restarts are inside the window still: the next crash is one too many.
    ASSERT_TRUE(s->send("frail", "two\n").ok());
    ASSERT_TRUE(s->wait_idle(20));
    st = status(*s, "frail");
    EXPECT_TRUE(contains(st, "state crashed\n")) << st;
    EXPECT_TRUE(contains(st, "crashed 2/2 in 600s: exit status 1\n")) << st;
}
