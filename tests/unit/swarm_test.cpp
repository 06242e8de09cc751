// The kernel without FUSE: agents, conversations, turns, errors, restart.
#include "agents/swarm.h"

#include <gtest/gtest.h>

#include "test_util.h"

using namespace swarmfs;
using swarmfs::test::contains;
using test::eventually;

namespace {
std::unique_ptr<Swarm> open_swarm(const std::string& db,
                                  nlohmann::json agents = nlohmann::json::object()) {
    SwarmOptions o;
    // These tests watch host processes and files (pids, barriers): the
    // sandbox, on by default, would hide both. sandbox_test covers it.
    o.sandbox = false;
    o.db_path = db;
    o.agents = std::move(agents);
    auto s = Swarm::open(o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
}

std::string output(Swarm& s, const std::string& agent) { return s.agent_output(agent)->snapshot(); }

}  // namespace

class SwarmTest : public ::testing::Test {
  protected:
    test::TempDir dir;
    std::string db = dir.file("swarm.db");
};

TEST_F(SwarmTest, ExecAgentRepliesAndCountsTurns) {
    auto s = open_swarm(db);
    ASSERT_TRUE(s->create_agent("upper").ok());
    ASSERT_TRUE(s->set_config_text("upper", R"({"exec": ["tr", "a-z", "A-Z"]})").ok());
    ASSERT_TRUE(s->send("upper", "hello\n").ok());
    ASSERT_TRUE(s->wait_idle(10));
    EXPECT_EQ(output(*s, "upper"), "HELLO\n");
    auto st = s->agent_status("upper");
    ASSERT_TRUE(st.ok());
    EXPECT_TRUE(contains(*st, "state idle\n")) << *st;
    EXPECT_TRUE(contains(*st, "turns 1\n")) << *st;
    EXPECT_FALSE(s->agent_output("upper")->live()) << "idle: readers get EOF";
}

TEST_F(SwarmTest, OutputIsLiveFromAcknowledgementUntilTheTurnEnds) {
    auto s = open_swarm(db);
    ASSERT_TRUE(
        s->create_agent("slow", nlohmann::json{{"exec", {"sh", "-c", "sleep 0.3; cat"}}}).ok());
    ASSERT_TRUE(s->send("slow", "x").ok());
    EXPECT_TRUE(s->agent_output("slow")->live()) << "a reader right after the write must wait";
    ASSERT_TRUE(eventually([&] { return !s->agent_output("slow")->live(); }));
    EXPECT_EQ(output(*s, "slow"), "x");
}

TEST_F(SwarmTest, ConversationRoutesToItsAgentAndKeepsATranscript) {
    auto s = open_swarm(db);
    ASSERT_TRUE(s->create_agent("upper", nlohmann::json{{"exec", {"tr", "a-z", "A-Z"}}}).ok());
    auto id = s->create_conversation();
    ASSERT_TRUE(id.ok());
    auto unrouted = s->conv_send(*id, "hi");
    ASSERT_FALSE(unrouted.ok());
    EXPECT_EQ(unrouted.error().code, EDESTADDRREQ);
    EXPECT_EQ(s->conv_ctl(*id, "agent nosuch\n").error().code, ENOENT);
    ASSERT_TRUE(s->conv_ctl(*id, "agent upper\n").ok());
    EXPECT_EQ(*s->conv_agent(*id), "upper\n");
    ASSERT_TRUE(s->conv_send(*id, "good morning\n").ok());
    ASSERT_TRUE(s->wait_idle(10));
    EXPECT_EQ(s->conv_out(*id)->snapshot(), "GOOD MORNING\n");
    EXPECT_FALSE(s->conv_out(*id)->live()) << "idle conversation: readers of out get EOF";
    EXPECT_EQ(output(*s, "upper"), "GOOD MORNING\n") << "the agent's output shows its part too";
    auto ctx = s->conv_context(*id);
    ASSERT_TRUE(ctx.ok());
    EXPECT_TRUE(contains(*ctx, R"("role":"user")")) << *ctx;
    EXPECT_TRUE(contains(*ctx, R"("content":"GOOD MORNING\n")")) << *ctx;
    ASSERT_TRUE(s->conv_ctl(*id, "close\n").ok());
    EXPECT_EQ(s->conv_send(*id, "more").error().code, EPIPE);
}

TEST_F(SwarmTest, FailingTurnIsReportedAndTheAgentCarriesOn) {
    auto s = open_swarm(db);
    ASSERT_TRUE(s->create_agent(
                     "flaky",
                     nlohmann::json{
                         {"exec", {"sh", "-c", "read x; echo got $x; echo boom >&2; [ $x = ok ]"}}})
                    .ok());
    ASSERT_TRUE(s->create_agent("other", nlohmann::json{{"exec", {"cat"}}}).ok());
    ASSERT_TRUE(s->send("flaky", "bad\n").ok());
    ASSERT_TRUE(s->send("other", "still here\n").ok());
    ASSERT_TRUE(s->send("flaky", "ok\n").ok());
    ASSERT_TRUE(s->wait_idle(10));
    // The crash restarts it and "bad" runs once more, then is parked.
    EXPECT_EQ(output(*s, "flaky"), "got bad\ngot bad\ngot ok\n");
    EXPECT_EQ(output(*s, "other"), "still here\n");
    auto err = *s->agent_err("flaky");
    EXPECT_TRUE(contains(err, "stderr: boom")) << err;
    EXPECT_TRUE(contains(err, "exit status 1")) << err;
    EXPECT_TRUE(contains(err, "message 1 parked as failed")) << err;
    auto st = *s->agent_status("flaky");
    EXPECT_TRUE(contains(st, "turns 1\n")) << st;
    EXPECT_TRUE(contains(st, "failed 2\n")) << st;
    EXPECT_TRUE(contains(st, "restarts 2\n")) << st;
    EXPECT_TRUE(contains(st, "parked 1\n")) << st;
    EXPECT_TRUE(contains(st, "last_error exit status 1")) << st;
}

TEST_F(SwarmTest, BadConfigIsRefusedAndTheOldOneStays) {
    auto s = open_swarm(db);
    ASSERT_TRUE(s->create_agent("a", nlohmann::json{{"exec", {"cat"}}}).ok());
    auto before = *s->config_text("a");
    auto r = s->set_config_text("a", "{not json");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_EQ(*s->config_text("a"), before);
    EXPECT_TRUE(contains(*s->agent_err("a"), "config: invalid JSON"));
    ASSERT_TRUE(s->send("a", "works\n").ok());
    ASSERT_TRUE(s->wait_idle(10));
    EXPECT_EQ(output(*s, "a"), "works\n");
}

TEST_F(SwarmTest, InstructionsEditTheConfigField) {
    auto s = open_swarm(db);
    ASSERT_TRUE(
        s->create_agent(
             "a", nlohmann::json{{"exec", {"sh", "-c", "printf %s \"$SWARMFS_INSTRUCTIONS\""}}})
            .ok());
    ASSERT_TRUE(s->set_instructions("a", "Be brief.").ok());
    EXPECT_TRUE(contains(*s->config_text("a"), "\"instructions\": \"Be brief.\""));
    ASSERT_TRUE(s->send("a", "x").ok());
    ASSERT_TRUE(s->wait_idle(10));
    EXPECT_EQ(output(*s, "a"), "Be brief.") << "exec agents see their instructions";
}

TEST_F(SwarmTest, UnknownOrUnconfiguredAgentsRefuseMessages) {
    auto s = open_swarm(db);
    EXPECT_EQ(s->send("ghost", "x").error().code, ENOENT);
    ASSERT_TRUE(s->create_agent("blank").ok());
    auto r = s->send("blank", "x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_TRUE(contains(*s->agent_err("blank"), "nothing to run"));
    EXPECT_EQ(s->create_agent("blank").error().code, EEXIST);
    EXPECT_EQ(s->create_agent(".x").error().code, EINVAL);
}

TEST_F(SwarmTest, RemovingABusyAgentNeedsStopFirst) {
    auto s = open_swarm(db);
    ASSERT_TRUE(s->create_agent("busy", nlohmann::json{{"exec", {"sleep", "30"}}}).ok());
    ASSERT_TRUE(s->send("busy", "x").ok());
    ASSERT_TRUE(eventually([&] { return contains(*s->agent_status("busy"), "state running"); }));
    EXPECT_EQ(s->remove_agent("busy").error().code, EBUSY);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(s->agent_ctl("busy", "stop\n").ok());
    ASSERT_TRUE(eventually([&] { return contains(*s->agent_status("busy"), "state stopped"); }));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5))
        << "stop kills the turn now";
    EXPECT_TRUE(contains(*s->agent_err("busy"), "stopped by ctl"));
    ASSERT_TRUE(s->remove_agent("busy").ok());
    EXPECT_FALSE(s->has_agent("busy"));
}

TEST_F(SwarmTest, StoppedAgentKeepsItsQueueForStart) {
    auto s = open_swarm(db);
    ASSERT_TRUE(s->create_agent("a", nlohmann::json{{"exec", {"cat"}}}).ok());
    ASSERT_TRUE(s->agent_ctl("a", "stop\n").ok());
    ASSERT_TRUE(s->send("a", "one\n").ok());
    ASSERT_TRUE(s->send("a", "two\n").ok());
    EXPECT_FALSE(s->agent_output("a")->live()) << "a stopped agent's readers do not wait";
    EXPECT_TRUE(contains(*s->agent_status("a"), "queue 2"));
    ASSERT_TRUE(s->agent_ctl("a", "start\n").ok());
    ASSERT_TRUE(s->wait_idle(10));
    EXPECT_EQ(output(*s, "a"), "one\ntwo\n");
}

TEST_F(SwarmTest, RestartRestoresStateAndRunsUnfinishedMessagesOnce) {
    {
        auto s = open_swarm(db);
        ASSERT_TRUE(s->create_agent("upper", nlohmann::json{{"exec", {"tr", "a-z", "A-Z"}}}).ok());
        ASSERT_TRUE(s->create_agent("held", nlohmann::json{{"exec", {"cat"}}}).ok());
        ASSERT_TRUE(s->send("upper", "done before\n").ok());
        ASSERT_TRUE(s->wait_idle(10));
        auto id = s->create_conversation();
        ASSERT_TRUE(s->conv_ctl(*id, "agent upper\n").ok());
        // Acknowledged but never run: the agent is stopped when we go down.
        ASSERT_TRUE(s->agent_ctl("held", "stop\n").ok());
        ASSERT_TRUE(s->send("held", "pending one\n").ok());
        ASSERT_TRUE(s->send("held", "pending two\n").ok());
        s->shutdown();
    }
    auto s = open_swarm(db);
    EXPECT_EQ(s->agent_names(), (std::vector<std::string>{"held", "upper"}));
    EXPECT_EQ(output(*s, "upper"), "DONE BEFORE\n");
    EXPECT_EQ(s->conversation_ids().size(), 1u);
    EXPECT_EQ(*s->conv_agent(1), "upper\n");
    auto st = *s->agent_status("held");
    EXPECT_TRUE(contains(st, "state stopped\n")) << st;
    EXPECT_TRUE(contains(st, "queue 2\n")) << st;
    ASSERT_TRUE(s->agent_ctl("held", "start\n").ok());
    ASSERT_TRUE(s->wait_idle(10));
    EXPECT_EQ(output(*s, "held"), "pending one\npending two\n") << "each exactly once";
}

TEST_F(SwarmTest, KilledMidTurnTheMessageRunsAgainAndItsOutputAppearsOnce) {
    {
        auto s = open_swarm(db);
        // Hangs until the file "go" exists, which it does only after the "crash".
        ASSERT_TRUE(s->create_agent("slow", nlohmann::json{{"exec",
                                                            {"sh", "-c",
                                                             "cat; while [ ! -e " + dir.file("go") +
                                                                 " ]; do sleep 0.05; done"}}})
                        .ok());
        ASSERT_TRUE(s->send("slow", "partial\n").ok());
        ASSERT_TRUE(eventually([&] { return output(*s, "slow") == "partial\n"; }));
        s->shutdown();  // as a crash: the turn never finished
    }
    {
        FILE* go = fopen(dir.file("go").c_str(), "w");
        fclose(go);
        auto s = open_swarm(db);
        ASSERT_TRUE(s->wait_idle(10));
        EXPECT_EQ(output(*s, "slow"), "partial\n")
            << "unfinished output was not part of the record";
    }
    auto s = open_swarm(db);
    EXPECT_EQ(output(*s, "slow"), "partial\n") << "after a clean restart: still once";
}

TEST_F(SwarmTest, SwarmFileDeclaresAgentsAndRootCtlSpawnsAndKills) {
    auto s = open_swarm(db, nlohmann::json{{"echo", {{"exec", {"cat"}}}}});
    EXPECT_TRUE(s->has_agent("echo"));
    ASSERT_TRUE(s->ctl("spawn up exec=\"tr a-z A-Z\"\n").ok());
    EXPECT_TRUE(contains(*s->config_text("up"), "\"tr\""));
    ASSERT_TRUE(s->ctl("spawn k exec=[\"sh\", \"-c\", \"cat\"] description=\"a b\"\n").ok());
    EXPECT_TRUE(contains(*s->config_text("k"), "\"description\": \"a b\""));
    EXPECT_EQ(s->ctl("spawn bad exec\n").error().code, EINVAL);
    ASSERT_TRUE(s->ctl("kill k\n").ok());
    ASSERT_TRUE(s->ctl("spawn j {\"exec\": [\"rev\"]}\n").ok());
    EXPECT_TRUE(contains(*s->config_text("j"), "\"rev\""));
    EXPECT_EQ(s->ctl("spawn j\n").error().code, EEXIST);
    EXPECT_EQ(s->ctl("kill ghost\n").error().code, ENOENT);
    EXPECT_EQ(s->ctl("explode\n").error().code, EINVAL);
    ASSERT_TRUE(s->ctl("kill j\n").ok());
    EXPECT_FALSE(s->has_agent("j"));
    EXPECT_EQ(s->ctl_text(), "echo idle 0 0\nup idle 0 0\n");
}

TEST_F(SwarmTest, LogStreamHasOneJsonLinePerEvent) {
    auto s = open_swarm(db);
    ASSERT_TRUE(s->create_agent("a", nlohmann::json{{"exec", {"cat"}}}).ok());
    ASSERT_TRUE(s->send("a", "x").ok());
    ASSERT_TRUE(s->wait_idle(10));
    ASSERT_TRUE(eventually([&] { return contains(s->log_stream()->snapshot(), "turn_finished"); }));
    std::string log = s->log_stream()->snapshot();
    size_t start = 0, lines = 0;
    while (start < log.size()) {
        size_t end = log.find('\n', start);
        auto j = nlohmann::json::parse(log.substr(start, end - start));
        EXPECT_TRUE(j.contains("kind"));
        ++lines;
        start = end + 1;
    }
    EXPECT_GE(lines, 4u);  // created, message, started, finished
    EXPECT_TRUE(s->log_stream()->live()) << "the log never ends";
}

TEST_F(SwarmTest, ExecAgentHandsOffAndTheTargetContinuesTheSameMessage) {
    auto s = open_swarm(db);
    // "front" answers, then hands the conversation to "back" through its ctl,
    // as an exec agent does through the mount.
    ASSERT_TRUE(s->create_agent("back", nlohmann::json{{"exec", {"tr", "a-z", "A-Z"}}}).ok());
    ASSERT_TRUE(s->create_agent("front", nlohmann::json{{"exec", {"sh", "-c", "echo front saw it"}},
                                                        {"handoffs", {"back"}}})
                    .ok());
    ASSERT_TRUE(s->create_agent("other", nlohmann::json{{"exec", {"cat"}}}).ok());
    auto id = *s->create_conversation();
    ASSERT_TRUE(s->conv_ctl(id, "agent front\n").ok());
    ASSERT_TRUE(s->set_conv_vars(id, "{\"user\": \"ada\"}\n").ok());
    // Not listed, or unknown: refused with words, logged, nothing changes.
    auto refused = s->conv_ctl(id, "handoff other\n");
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, EPERM);
    EXPECT_TRUE(contains(refused.error().message, "may not hand off to other"));
    EXPECT_EQ(s->conv_ctl(id, "handoff ghost\n").error().code, ENOENT);
    EXPECT_EQ(*s->conv_agent(id), "front\n");

    // Hand off while front's turn runs: stop front first so the turn is held.
    ASSERT_TRUE(s->agent_ctl("front", "stop\n").ok());
    ASSERT_TRUE(s->conv_send(id, "help me\n").ok());
    ASSERT_TRUE(s->agent_ctl("front", "start\n").ok());
    ASSERT_TRUE(s->conv_ctl(id, "handoff back\n").ok());
    ASSERT_TRUE(s->wait_idle(10));
    ASSERT_TRUE(eventually([&] { return !s->conv_out(id)->live(); }));
    EXPECT_EQ(*s->conv_agent(id), "back\n");
    auto out = s->conv_out(id)->snapshot();
    // Either front's turn finished before the handoff (then back takes the next
    // message) or it was running and back continued it; both keep vars.
    EXPECT_TRUE(contains(out, "front saw it\n")) << out;
    ASSERT_TRUE(s->conv_send(id, "second\n").ok());
    ASSERT_TRUE(s->wait_idle(10));
    ASSERT_TRUE(eventually([&] { return contains(s->conv_out(id)->snapshot(), "SECOND\n"); }));
    EXPECT_TRUE(contains(*s->conv_vars(id), "\"user\": \"ada\""));
    EXPECT_TRUE(contains(*s->conv_context(id), R"("role":"handoff")"));
    EXPECT_EQ(s->set_conv_vars(id, "[1]").error().code, EINVAL);
}

TEST_F(SwarmTest, HandoffDuringATurnForwardsThatMessageOnce) {
    auto s = open_swarm(db);
    ASSERT_TRUE(s->create_agent("back", nlohmann::json{{"exec", {"tr", "a-z", "A-Z"}}}).ok());
    // front waits until told to finish, so the handoff lands mid-turn.
    std::string gate = dir.file("gate");
    ASSERT_TRUE(
        s->create_agent("front", nlohmann::json{{"exec",
                                                 {"sh", "-c",
                                                  "cat >/dev/null; while [ ! -e " + gate +
                                                      " ]; do sleep 0.02; done; echo front"}},
                                                {"handoffs", {"back"}}})
            .ok());
    auto id = *s->create_conversation();
    ASSERT_TRUE(s->conv_ctl(id, "agent front\n").ok());
    ASSERT_TRUE(s->conv_send(id, "please escalate\n").ok());
    ASSERT_TRUE(eventually([&] { return contains(*s->agent_status("front"), "state running"); }));
    ASSERT_TRUE(s->conv_ctl(id, "handoff back\n").ok());
    FILE* f = fopen(gate.c_str(), "w");
    fclose(f);
    ASSERT_TRUE(eventually([&] { return !s->conv_out(id)->live(); }));
    EXPECT_EQ(s->conv_out(id)->snapshot(), "front\nPLEASE ESCALATE\n")
        << "the target continued the same message, once";
    EXPECT_EQ(output(*s, "back"), "PLEASE ESCALATE\n") << "each agent's output shows its part";
    EXPECT_EQ(output(*s, "front"), "front\n");
    s->shutdown();
    s.reset();
    auto again = open_swarm(db);
    ASSERT_TRUE(again->wait_idle(10));
    EXPECT_EQ(again->conv_out(id)->snapshot(), "front\nPLEASE ESCALATE\n")
        << "after restart, still once";
    EXPECT_EQ(*again->conv_agent(id), "back\n");
}
