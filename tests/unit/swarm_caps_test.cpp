// Capabilities in the kernel, without FUSE: default deny, the caps file,
// pledge (narrow, never widen, durable), the owner's grant and revoke,
// vault modes with ownership, and the calls made on an agent's behalf.
#include <gtest/gtest.h>

#include "agents/swarm.h"
#include "test_util.h"

using namespace swarmfs;
using json = nlohmann::json;
using test::contains;
using test::eventually;

namespace {
std::unique_ptr<Swarm> open_swarm(const std::string& db, json agents = json::object()) {
    SwarmOptions o;
    o.db_path = db;
    o.agents = std::move(agents);
    auto s = Swarm::open(o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
}

std::string log_text(Swarm& s) { return s.log_stream()->snapshot(); }

const json kCat = {"cat"};
}  // namespace

class SwarmCaps : public ::testing::Test {
  protected:
    test::TempDir dir;
    std::string db = dir.file("swarm.db");
};

TEST_F(SwarmCaps, AnAgentWithoutCapsMaySendPublishAndCallNothing) {
    auto s = open_swarm(db, {{"a", {{"exec", kCat}}}, {"b", {{"exec", kCat}}}});
    ASSERT_TRUE(s->create_topic("alerts").ok());

    auto sent = s->send_as("a", "b", "hi");
    ASSERT_FALSE(sent.ok());
    EXPECT_EQ(sent.error().code, EPERM);
    EXPECT_TRUE(contains(sent.error().message, "send:b")) << sent.error().message;
    auto pub = s->publish_as("a", "alerts", "x");
    ASSERT_FALSE(pub.ok());
    EXPECT_EQ(pub.error().code, EPERM);

    // Nothing reached b or the topic.
    ASSERT_TRUE(s->wait_idle(10));
    EXPECT_EQ(s->agent_output("b")->snapshot(), "");
    EXPECT_EQ(s->topic_stream("alerts")->snapshot(), "");

    // Each refusal is an err line and a "refused" event naming the capability.
    auto err = s->agent_err("a");
    ASSERT_TRUE(err.ok());
    EXPECT_TRUE(contains(*err, "send:b")) << *err;
    EXPECT_TRUE(contains(*err, "publish:alerts")) << *err;
    ASSERT_TRUE(eventually([&] {
        std::string l = log_text(*s);
        return contains(l, R"("kind":"refused")") && contains(l, R"("capability":"send:b")") &&
               contains(l, R"("capability":"publish:alerts")");
    })) << log_text(*s);
}

TEST_F(SwarmCaps, HeldCapabilitiesAllowExactlyWhatTheyName) {
    auto s = open_swarm(db, {{"a", {{"exec", kCat}, {"caps", {"send:b", "publish:alerts"}}}},
                             {"b", {{"exec", kCat}}},
                             {"c", {{"exec", kCat}}}});
    ASSERT_TRUE(s->create_topic("alerts").ok());
    ASSERT_TRUE(s->create_topic("other").ok());
    EXPECT_TRUE(s->send_as("a", "b", "to b\n").ok());
    EXPECT_EQ(s->send_as("a", "c", "to c\n").error().code, EPERM);
    EXPECT_TRUE(s->publish_as("a", "alerts", "up\n").ok());
    EXPECT_EQ(s->publish_as("a", "other", "x\n").error().code, EPERM);
    ASSERT_TRUE(s->wait_idle(10));
    EXPECT_EQ(s->agent_output("b")->snapshot(), "to b\n");
    EXPECT_EQ(s->agent_output("c")->snapshot(), "");
    EXPECT_TRUE(contains(s->topic_stream("alerts")->snapshot(), "up"));
}

TEST_F(SwarmCaps, TheCapsFileShowsGrantsToolsHandoffsUnveilAndOwnership) {
    auto s = open_swarm(db, {{"r",
                              {{"exec", kCat},
                               {"caps", {"send:w", "net"}},
                               {"handoffs", {"support"}},
                               {"unveil", {{"/vault/kb", "r"}}},
                               {"owns", {"research"}}}}});
    auto text = s->caps_text("r");
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text,
              "handoff:support\nnet\nsend:w\n"
              "unveil r /vault/kb\nunveil rw /vault/research\n"
              "owns /vault/research\n");
}

TEST_F(SwarmCaps, PledgeNarrowsRefusesWideningAndSurvivesARestart) {
    {
        auto s = open_swarm(db, {{"a", {{"exec", kCat}, {"caps", {"send:b", "publish:x"}}}},
                                 {"b", {{"exec", kCat}}}});
        ASSERT_TRUE(s->agent_ctl_as("a", "pledge send:b").ok());
        auto caps = s->caps_of("a");
        ASSERT_TRUE(caps.ok());
        EXPECT_FALSE(caps->allows(Capability::Kind::publish, "x"));
        EXPECT_TRUE(caps->allows(Capability::Kind::send, "b"));

        // Widening: back to what was dropped, or something never held.
        for (const char* wider : {"pledge send:b publish:x", "pledge send:*", "pledge net"}) {
            auto st = s->agent_ctl_as("a", wider);
            ASSERT_FALSE(st.ok()) << wider;
            EXPECT_EQ(st.error().code, EPERM) << wider;
        }
        EXPECT_EQ(s->caps_text("a").value(), "send:b\npledged\n");
        auto err = s->agent_err("a");
        EXPECT_TRUE(contains(*err, "pledge")) << *err;
        ASSERT_TRUE(eventually([&] { return contains(log_text(*s), R"("kind":"refused")"); }));
    }
    // The pledge is in the log: a restarted server keeps it.
    auto s = open_swarm(db);
    EXPECT_EQ(s->caps_text("a").value(), "send:b\npledged\n");
    EXPECT_EQ(s->publish_as("a", "x", "y").error().code, EPERM);
}

// An agent refused in a loop gets its errno every time, but the durable log
// records refusals at a bounded rate, and the next record counts the rest.
TEST_F(SwarmCaps, RefusalsInALoopAreAllRefusedButNotAllRecorded) {
    auto s =
        open_swarm(db, {{"a", {{"exec", kCat}}}, {"b", {{"exec", kCat}}}, {"c", {{"exec", kCat}}}});
    const size_t n = 2000;
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(s->send_as("a", "b", "x\n").error().code, EPERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few tokens come back
    ASSERT_EQ(s->send_as("a", "c", "last\n").error().code, EPERM);
    std::vector<json> refused;
    ASSERT_TRUE(eventually([&] {
        refused.clear();
        std::istringstream in(log_text(*s));
        for (std::string line; std::getline(in, line);)
            if (contains(line, R"("kind":"refused")")) refused.push_back(json::parse(line));
        return !refused.empty() && refused.back().value("capability", "") == "send:c";
    })) << log_text(*s);
    uint64_t unlogged = 0;
    for (auto& r : refused) unlogged += r.value("unlogged", uint64_t{0});
    EXPECT_LT(refused.size(), 200u) << "the log took every one of " << n << " refusals";
    EXPECT_GE(refused.size(), 50u) << "a burst of refusals is recorded";
    EXPECT_GT(refused.back().value("unlogged", uint64_t{0}), 0u);
    EXPECT_EQ(refused.size() + unlogged, n + 1) << "the count adds up";
    EXPECT_TRUE(contains(*s->agent_err("a"), "more refusals before it, not recorded"));
    EXPECT_EQ(s->agent_output("b")->snapshot(), "");
}

TEST_F(SwarmCaps, TheAgentsOwnCtlOnlyPledges) {
    auto s = open_swarm(db, {{"a", {{"exec", kCat}}}});
    for (const char* cmd : {"start", "stop", "priority interactive", "budget 0"}) {
        auto st = s->agent_ctl_as("a", cmd);
        ASSERT_FALSE(st.ok()) << cmd;
        EXPECT_EQ(st.error().code, EINVAL) << cmd << ": unknown command from inside the view";
    }
    EXPECT_TRUE(s->agent_ctl("a", "priority interactive").ok()) << "the owner's ctl still works";
}

TEST_F(SwarmCaps, TheOwnersGrantReplacesAPledgeButAnInstructionsEditDoesNot) {
    auto s = open_swarm(
        db, {{"a", {{"exec", kCat}, {"caps", {"send:b", "publish:x"}}}}, {"b", {{"exec", kCat}}}});
    ASSERT_TRUE(s->agent_ctl_as("a", "pledge send:b").ok());
    ASSERT_TRUE(s->set_instructions("a", "be brief").ok());
    EXPECT_FALSE(s->caps_of("a")->allows(Capability::Kind::publish, "x"));

    ASSERT_TRUE(s->ctl("grant a publish:y").ok());
    auto caps = s->caps_of("a");
    EXPECT_TRUE(caps->allows(Capability::Kind::publish, "y"));
    EXPECT_TRUE(caps->allows(Capability::Kind::publish, "x")) << "a new grant replaces the pledge";
    EXPECT_FALSE(contains(s->caps_text("a").value(), "pledged"));

    ASSERT_TRUE(s->ctl("revoke a publish:x").ok());
    EXPECT_FALSE(s->caps_of("a")->allows(Capability::Kind::publish, "x"));
    auto bad = s->ctl("revoke a net");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, EINVAL);
    EXPECT_TRUE(contains(bad.error().message, "was not granted net")) << bad.error().message;
    EXPECT_EQ(s->ctl("grant a bogus:thing").error().code, EINVAL);
}

// A revoke is the owner taking something away: what the agent pledged away
// before must stay away, and it survives a restart.
TEST_F(SwarmCaps, ARevokeNarrowsAPledgeAndGivesNothingBack) {
    {
        auto s = open_swarm(db, {{"a",
                                  {{"exec", kCat},
                                   {"caps", {"send:b", "publish:x", "publish:y", "net"}},
                                   {"unveil", {{"/vault/kb", "rw"}, {"/vault/docs", "r"}}}}},
                                 {"b", {{"exec", kCat}}}});
        ASSERT_TRUE(s->agent_ctl_as("a", "pledge send:b publish:x publish:y").ok());
        ASSERT_TRUE(s->agent_ctl_as("a", "unveil /vault/kb r").ok());
        ASSERT_TRUE(s->ctl("revoke a publish:y").ok());
        EXPECT_EQ(s->caps_text("a").value(),
                  "publish:x\nsend:b\nunveil r /vault/docs\nunveil r /vault/kb\npledged\n")
            << "net stays pledged away, /vault/kb stays read-only";
        EXPECT_EQ(s->publish_as("a", "y", "z").error().code, EPERM);
    }
    auto s = open_swarm(db);
    EXPECT_EQ(s->caps_text("a").value(),
              "publish:x\nsend:b\nunveil r /vault/docs\nunveil r /vault/kb\npledged\n");
    // A wider grant is the owner's new word: it replaces the pledge.
    ASSERT_TRUE(s->ctl("grant a publish:z").ok());
    EXPECT_EQ(s->caps_text("a").value(),
              "net\npublish:x\npublish:z\nsend:b\nunveil r /vault/docs\nunveil rw /vault/kb\n");
}

TEST_F(SwarmCaps, RevokeTakesAToolFromTheToolsList) {
    auto s =
        open_swarm(db, {{"a", {{"exec", kCat}, {"handoffs", {"b"}}}}, {"b", {{"exec", kCat}}}});
    EXPECT_TRUE(s->caps_of("a")->allows(Capability::Kind::handoff, "b"));
    ASSERT_TRUE(s->ctl("revoke a handoff:b").ok());
    EXPECT_FALSE(s->caps_of("a")->allows(Capability::Kind::handoff, "b"));
    EXPECT_FALSE(contains(s->config_text("a").value(), "handoffs"));
}

TEST_F(SwarmCaps, VaultModesFollowUnveilAndOwnership) {
    auto s = open_swarm(db, {{"researcher",
                              {{"exec", kCat},
                               {"unveil", {{"/vault/kb", "r"}, {"/vault/shared", "rw"}}},
                               {"owns", {"research"}}}},
                             {"librarian", {{"exec", kCat}, {"owns", {"kb"}}}}});
    EXPECT_EQ(s->vault_mode("researcher", "/kb/a.md"), Mode::r);
    EXPECT_EQ(s->vault_mode("researcher", "/research/notes.md"), Mode::rw) << "owner: implicit rw";
    EXPECT_EQ(s->vault_mode("researcher", "/shared/x"), Mode::r)
        << "rw unveiled, but only an owner writes (shared has none)";
    EXPECT_EQ(s->vault_mode("researcher", "/secret/x"), Mode::none);
    EXPECT_EQ(s->vault_mode("researcher", "/kbx"), Mode::none) << "whole components only";
    EXPECT_EQ(s->vault_mode("researcher", "/kb/../secret"), Mode::none);
    EXPECT_EQ(s->vault_mode("researcher", "/"), Mode::none);
    EXPECT_EQ(s->vault_mode("librarian", "/kb/a.md"), Mode::rw);
    EXPECT_EQ(s->vault_mode("nobody", "/kb/a.md"), Mode::none);
    EXPECT_EQ(s->vault_owner("kb"), "librarian");

    // One owner per folder.
    auto st = s->set_config_text("researcher", R"({"exec": ["cat"], "owns": ["kb"]})");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, EINVAL);
    EXPECT_TRUE(contains(st.error().message, "owned by librarian")) << st.error().message;
    EXPECT_EQ(s->vault_owner("kb"), "librarian");

    // An unveil pledge narrows the vault too.
    ASSERT_TRUE(s->agent_ctl_as("researcher", "unveil /vault/research r").ok());
    EXPECT_EQ(s->vault_mode("researcher", "/research/notes.md"), Mode::r);
    auto wider = s->agent_ctl_as("researcher", "unveil /vault rw");
    ASSERT_FALSE(wider.ok());
    EXPECT_EQ(wider.error().code, EPERM);
    ASSERT_TRUE(s->agent_ctl_as("researcher", "unveil /vault/kb none").ok());
    EXPECT_EQ(s->vault_mode("researcher", "/kb/a.md"), Mode::none);
}

TEST_F(SwarmCaps, UnveilIsForVaultPathsOnly) {
    auto s = open_swarm(db);
    auto st = s->create_agent("a", json{{"exec", kCat}, {"unveil", {{"/agents/b", "r"}}}});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, EINVAL);
    EXPECT_TRUE(contains(st.error().message, "not under /vault")) << st.error().message;
}

TEST_F(SwarmCaps, OnlyTheServingAgentHandsOffAndOnlyWhereItMay) {
    auto s = open_swarm(db, {{"a", {{"exec", kCat}, {"handoffs", {"b"}}}},
                             {"b", {{"exec", kCat}}},
                             {"c", {{"exec", kCat}}}});
    auto id = s->create_conversation();
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(s->conv_ctl(*id, "agent a").ok());

    auto other = s->conv_ctl_as("b", *id, "handoff c");
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.error().code, EACCES) << "b does not serve the conversation";
    auto not_held = s->conv_ctl_as("a", *id, "handoff c");
    ASSERT_FALSE(not_held.ok());
    EXPECT_EQ(not_held.error().code, EPERM);
    auto close = s->conv_ctl_as("a", *id, "close");
    ASSERT_FALSE(close.ok()) << "only handoff from inside a view";
    EXPECT_EQ(s->conv_agent(*id).value(), "a\n");

    ASSERT_TRUE(s->conv_ctl_as("a", *id, "handoff b").ok());
    ASSERT_TRUE(eventually([&] { return s->conv_agent(*id).value() == "b\n"; }));
    EXPECT_EQ(s->conversations_of("b"), std::vector<int64_t>{*id});
    EXPECT_TRUE(s->conversations_of("a").empty());
}

TEST_F(SwarmCaps, EachAgentHasItsOwnUidAndAUidNamesOneAgent) {
    auto s = open_swarm(db, {{"a", {{"exec", kCat}}}, {"b", {{"exec", kCat}}}});
    if (geteuid() != 0) GTEST_SKIP() << "per-agent uids need a server running as root";
    uid_t ua = s->sandbox_uid("a"), ub = s->sandbox_uid("b");
    EXPECT_NE(ua, 0u);
    EXPECT_NE(ua, ub);
    EXPECT_EQ(s->agent_for_uid(ua), std::optional<std::string>("a"));
    EXPECT_EQ(s->agent_for_uid(ub), std::optional<std::string>("b"));
    EXPECT_EQ(s->agent_for_uid(0), std::nullopt);
    EXPECT_EQ(s->agent_for_uid(getuid()), std::nullopt);
    // Stable across a restart: the log replays agents in the same order.
    s.reset();
    auto again = open_swarm(db);
    EXPECT_EQ(again->sandbox_uid("a"), ua);
    ASSERT_TRUE(again->remove_agent("a", true).ok());
    EXPECT_EQ(again->agent_for_uid(ua), std::nullopt) << "a removed agent's uid names nobody";
}
