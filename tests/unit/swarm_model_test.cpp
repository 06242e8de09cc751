// Model agents in the kernel, without FUSE, against tests/fake_openai:
// streaming, usage, handoffs, parallel tool calls, schema rejection, retries,
// context trimming, concurrency, restart and secrets.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "agents/swarm.h"
#include "fake_openai_child.h"
#include "test_util.h"

using namespace swarmfs;
using swarmfs::test::contains;
using swarmfs::test::eventually;
using swarmfs::test::FakeOpenAI;
using json = nlohmann::json;

namespace {

constexpr const char* kKey = "sk-unit-SECRET-7777";

std::string slurp_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

class SwarmModel : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!fake.ok()) GTEST_SKIP() << "fake_openai not available (FAKE_OPENAI_PATH)";
        setenv("SWARMFS_UNIT_KEY", kKey, 1);
    }

    SwarmOptions options() {
        SwarmOptions o;
        o.db_path = dir.file("swarm.db");
        o.providers = {{"local",
                        {{"base_url", fake.base_url()},
                         {"api_key_env", "SWARMFS_UNIT_KEY"},
                         {"max_retries", 2},
                         {"backoff_initial", 0.01},
                         {"backoff_max", 0.05},
                         {"first_byte_timeout", 5},
                         {"idle_timeout", 5}}}};
        // Each call appends "start" to a file, then waits (up to 10 s) until
        // two calls have started: "together" proves the calls overlapped.
        std::string starts = dir.file("starts");
        o.tools = {{"lookup_ticket",
                    {{"exec", {"sh", "-c", "read -r a; printf '%s is open' \"$a\""}},
                     {"description", "Look up a support ticket"},
                     {"parameters",
                      {{"type", "object"},
                       {"properties", {{"id", {{"type", "integer"}}}}},
                       {"required", {"id"}}}}}},
                   {"meet",
                    {{"exec",
                      {"sh", "-c",
                       "echo start >> " + starts + "; i=0; while [ $(grep -c start " + starts +
                           ") -lt 2 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; "
                           "[ $i -lt 200 ] && echo together || echo alone"}},
                     {"description", "Meets another call"},
                     {"parameters", {{"type", "object"}}}}}};
        o.agents = {{"sales",
                     {{"provider", "local"},
                      {"model", "m"},
                      {"instructions", "You sell software."},
                      {"handoffs", {"support"}}}},
                    {"support",
                     {{"provider", "local"},
                      {"model", "m"},
                      {"instructions", "You fix bugs."},
                      {"tools", {"lookup_ticket", "meet"}}}}};
        return o;
    }

    std::unique_ptr<Swarm> open() {
        auto s = Swarm::open(options());
        EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
        return s.ok() ? std::move(*s) : nullptr;
    }

    int64_t conv(Swarm& s, const std::string& agent) {
        auto id = s.create_conversation();
        EXPECT_TRUE(id.ok());
        EXPECT_TRUE(s.conv_ctl(*id, "agent " + agent + "\n").ok());
        return *id;
    }

    // Sends one message and returns what the turn added to conv/N/out.
    std::string ask(Swarm& s, int64_t id, const std::string& text) {
        size_t before = s.conv_out(id)->snapshot().size();
        auto st = s.conv_send(id, text + "\n");
        EXPECT_TRUE(st.ok()) << st.error().message;
        EXPECT_TRUE(s.wait_idle(20));
        return s.conv_out(id)->snapshot().substr(before);
    }

    json last_request() {
        auto r = fake.requests();
        return r.empty() ? json() : r.back()["body"];
    }

    test::TempDir dir;
    FakeOpenAI fake;
};

}  // namespace

TEST_F(SwarmModel, RepliesStreamIntoBothOutputsAndUsageIsCounted) {
    auto s = open();
    int64_t n = conv(*s, "sales");
    EXPECT_EQ(ask(*s, n, "What does the Pro plan cost?"), "echo: What does the Pro plan cost?\n");
    EXPECT_EQ(s->agent_output("sales")->snapshot(), "echo: What does the Pro plan cost?\n");
    json body = last_request();
    EXPECT_EQ(body["model"], "m");
    EXPECT_EQ(body["stream"], true);
    EXPECT_EQ(body["messages"][0], json({{"role", "system"}, {"content", "You sell software."}}));
    auto st = *s->agent_status("sales");
    EXPECT_FALSE(contains(st, "tokens_in 0\n")) << st;
    EXPECT_FALSE(contains(st, "tokens_out 0\n")) << st;
    EXPECT_TRUE(contains(*s->conv_ctl_text(n), "tokens_in ")) << *s->conv_ctl_text(n);
}

TEST_F(SwarmModel, TheFirstTokensAreReadableBeforeTheReplyEnds) {
    auto s = open();
    int64_t n = conv(*s, "sales");
    fake.script(json::array({{{"chunk_delay_ms", 200}}}));
    ASSERT_TRUE(s->conv_send(n, "one two three four five\n").ok());
    auto out = s->conv_out(n);
    ASSERT_TRUE(eventually([&] { return !out->snapshot().empty(); }));
    EXPECT_TRUE(out->live()) << "the stream was still open when the first bytes arrived";
    EXPECT_NE(out->snapshot(), "echo: one two three four five\n");
    ASSERT_TRUE(s->wait_idle(20));
    EXPECT_EQ(out->snapshot(), "echo: one two three four five\n");
}

TEST_F(SwarmModel, HandoffMovesTranscriptAndVarsAndTheTargetContinuesTheTurn) {
    auto s = open();
    int64_t n = conv(*s, "sales");
    ASSERT_TRUE(s->set_conv_vars(n, R"({"user": "ada"})").ok());
    ask(*s, n, "Pricing?");
    std::string out = ask(*s, n, "My API returns 401 [handoff:support]");
    EXPECT_TRUE(contains(out, "tool transfer_to_support said: Transferred to support")) << out;
    EXPECT_EQ(*s->conv_agent(n), "support\n");
    // Support's request carried its own prompt and the whole transcript.
    json body = last_request();
    EXPECT_EQ(body["messages"][0]["content"], "You fix bugs.");
    EXPECT_TRUE(contains(body["messages"].dump(), "Pricing?")) << body.dump();
    EXPECT_TRUE(contains(s->agent_output("support")->snapshot(), "transfer_to_support said"));
    EXPECT_FALSE(contains(s->agent_output("sales")->snapshot(), "transfer_to_support said"))
        << "each agent's output shows its own part";
    EXPECT_EQ(json::parse(*s->conv_vars(n)), json({{"user", "ada"}}));
    EXPECT_TRUE(contains(*s->conv_context(n), R"("role":"handoff")"));
}

TEST_F(SwarmModel, AHandoffNotListedIsAnErrorTheModelSeesAndIsLogged) {
    auto s = open();
    int64_t n = conv(*s, "support");  // support lists no handoffs
    // A model that calls a transfer tool it was never offered.
    fake.script(
        json::array({{{"tool_calls", {{{"name", "transfer_to_sales"}, {"arguments", "{}"}}}}}}));
    std::string out = ask(*s, n, "give me to sales");
    EXPECT_TRUE(contains(out, "tool transfer_to_sales said: ")) << out;
    EXPECT_FALSE(contains(out, "Transferred")) << out;
    EXPECT_EQ(*s->conv_agent(n), "support\n") << "the conversation stayed";
    EXPECT_TRUE(contains(*s->agent_err("support"), "transfer_to_sales"))
        << *s->agent_err("support");
    EXPECT_TRUE(eventually([&] {
        return contains(s->log_stream()->snapshot(), "transfer_to_sales");
    })) << "the refusal is in the log";
}

TEST_F(SwarmModel, ParallelToolCallsOverlapAndBothAnswersReturn) {
    auto s = open();
    int64_t n = conv(*s, "support");
    std::string out = ask(*s, n, "[tool:meet {}] [tool:meet {}]");
    EXPECT_EQ(out, "tool meet said: together\ntool meet said: together\n")
        << "the two calls ran at the same time";
    // The second request answered both calls, in order.
    json msgs = last_request()["messages"];
    ASSERT_GE(msgs.size(), 4u);
    EXPECT_EQ(msgs[msgs.size() - 1]["role"], "tool");
    EXPECT_EQ(msgs[msgs.size() - 2]["role"], "tool");
}

TEST_F(SwarmModel, ArgumentsAreCheckedAgainstTheSchemaBeforeTheToolRuns) {
    auto s = open();
    int64_t n = conv(*s, "support");
    std::string out = ask(*s, n, R"([tool:lookup_ticket {"id": "x"}])");
    EXPECT_TRUE(contains(out, "tool lookup_ticket said: error: invalid arguments")) << out;
    EXPECT_FALSE(contains(out, "is open")) << "the tool must not have run";
    out = ask(*s, n, R"([tool:lookup_ticket {"id": 42}])");
    EXPECT_EQ(out, "tool lookup_ticket said: {\"id\":42} is open\n");
}

TEST_F(SwarmModel, RetriesThenFailsClearlyAndTheConversationStaysUsable) {
    auto s = open();
    int64_t n = conv(*s, "sales");
    fake.script(json::array({{{"status", 429}, {"retry_after", 0}}, {{"status", 500}}}));
    EXPECT_EQ(ask(*s, n, "hello"), "echo: hello\n") << "third attempt answers";
    // Three attempts, a restart, three more: then the message is parked.
    json fail = json::array();
    for (int i = 0; i < 6; ++i) fail.push_back({{"status", 503}});
    fake.script(fail);
    ask(*s, n, "doomed");
    auto err = *s->agent_err("sales");
    EXPECT_TRUE(contains(err, "after 3 attempts")) << err;
    EXPECT_TRUE(contains(err, "parked as failed")) << err;
    EXPECT_TRUE(contains(*s->agent_status("sales"), "failed 2\n"));
    EXPECT_TRUE(contains(*s->agent_status("sales"), "parked 1\n"));
    EXPECT_EQ(ask(*s, n, "[count]"), "messages: 5\n");
    // What the user said stays said; the failed turn left no half answer.
    std::vector<std::string> roles;
    json sent = last_request();
    for (auto& m : sent["messages"]) roles.push_back(m["role"]);
    EXPECT_EQ(roles, (std::vector<std::string>{"system", "user", "assistant", "user", "user"}));
}

TEST_F(SwarmModel, ContextIsTrimmedOldestFirstAtTheWindowEdge) {
    auto s = open();
    // 100-character messages: ~29 estimated tokens each, echoed replies ~30.
    ASSERT_TRUE(s->create_agent("small", json{{"provider", "local"},
                                              {"model", "m"},
                                              {"instructions", "Be brief."},
                                              {"context_window", 256}})
                    .ok());
    int64_t n = conv(*s, "small");
    for (int i = 0; i < 6; ++i) ask(*s, n, "m" + std::to_string(i) + std::string(98, 'x'));
    ask(*s, n, "m6" + std::string(98, 'x'));
    json msgs = last_request()["messages"];
    ASSERT_GE(msgs.size(), 2u);
    EXPECT_EQ(msgs[0]["role"], "system") << "the system prompt always stays";
    EXPECT_EQ(msgs.back()["content"].get<std::string>().substr(0, 2), "m6")
        << "the latest message always stays";
    // Whole exchanges dropped, oldest first: it starts at a user message,
    // and the first kept one is newer than every dropped one.
    ASSERT_GE(msgs.size(), 3u);
    EXPECT_EQ(msgs[1]["role"], "user");
    std::string first = msgs[1]["content"];
    int kept_from = first[1] - '0';
    EXPECT_GT(kept_from, 0) << "something had to go: 7 exchanges do not fit in 256 tokens";
    EXPECT_EQ(msgs.size(), 1 + 2 * (6 - kept_from) + 1u);
    // At the edge: what was sent fits the window (characters/4 per message
    // plus 4), and one more exchange would not have.
    auto cost = [](const json& m) {
        return static_cast<int64_t>(m.value("content", "").size() / 4 + 4);
    };
    int64_t sent = 0;
    for (auto& m : msgs) sent += cost(m);
    EXPECT_LE(sent, 256);
    int64_t one_more = cost(json{{"content", "m0" + std::string(98, 'x')}}) +
                       cost(json{{"content", "echo: m0" + std::string(98, 'x')}});
    EXPECT_GT(sent + one_more, 256);
}

TEST_F(SwarmModel, ManyConversationsAtOnceEachGetOnlyTheirOwnAnswers) {
    auto s = open();
    std::vector<int64_t> convs;
    for (int i = 0; i < 16; ++i) convs.push_back(conv(*s, i % 2 ? "sales" : "support"));
    for (int k = 0; k < 3; ++k)
        for (size_t i = 0; i < convs.size(); ++i)
            ASSERT_TRUE(s->conv_send(convs[i], "conv " + std::to_string(i) + " msg " +
                                                   std::to_string(k) + "\n")
                            .ok());
    ASSERT_TRUE(s->wait_idle(30));
    for (size_t i = 0; i < convs.size(); ++i) {
        std::string want;
        for (int k = 0; k < 3; ++k)
            want += "echo: conv " + std::to_string(i) + " msg " + std::to_string(k) + "\n";
        EXPECT_EQ(s->conv_out(convs[i])->snapshot(), want) << "conversation " << convs[i];
    }
}

TEST_F(SwarmModel, RestartResumesTheConversationFromTheLog) {
    int64_t n;
    {
        auto s = open();
        n = conv(*s, "sales");
        ask(*s, n, "one [handoff:support]");
        ask(*s, n, "two");
        s->shutdown();
    }
    auto s = open();
    EXPECT_EQ(*s->conv_agent(n), "support\n");
    std::string before = s->conv_out(n)->snapshot();
    EXPECT_TRUE(contains(before, "echo: two\n")) << before;
    ask(*s, n, "[count]");
    json msgs = last_request()["messages"];
    EXPECT_EQ(msgs[0]["content"], "You fix bugs.");
    EXPECT_TRUE(contains(msgs.dump(), "one [handoff:support]")) << msgs.dump();
    EXPECT_TRUE(contains(msgs.dump(), "transfer_to_support")) << msgs.dump();
}

TEST_F(SwarmModel, TheKeyReachesTheProviderAndNothingElse) {
    auto s = open();
    int64_t n = conv(*s, "sales");
    fake.script(json::array({{{"status", 401}, {"message", std::string("bad key ") + kKey}}}));
    ask(*s, n, "first");
    ask(*s, n, "second");
    s->shutdown();
    auto r = fake.requests();
    ASSERT_FALSE(r.empty());
    EXPECT_EQ(r.back()["headers"]["authorization"], std::string("Bearer ") + kKey);
    for (auto f : {"swarm.db", "swarm.db-wal"})
        EXPECT_FALSE(contains(slurp_file(dir.file(f)), kKey)) << f;
    EXPECT_FALSE(contains(*s->agent_err("sales"), kKey));
    EXPECT_FALSE(contains(s->agent_output("sales")->snapshot(), kKey));
}

TEST_F(SwarmModel, TurnsWaitForTheProvidersRateLimitInsteadOfFailing) {
    SwarmOptions o = options();
    o.providers["local"]["rpm"] = 60;  // a minute's worth at once, then one a second
    auto r = Swarm::open(o);
    ASSERT_TRUE(r.ok()) << r.error().message;
    auto s = std::move(*r);
    for (int i = 0; i < 61; ++i) ASSERT_TRUE(s->send("sales", "m" + std::to_string(i) + "\n").ok());
    bool saw_waiting = false;
    ASSERT_TRUE(eventually(
        [&] {
            saw_waiting = saw_waiting || contains(*s->agent_status("sales"), "state waiting\n");
            return contains(*s->agent_status("sales"), "turns 61\n");
        },
        30));
    EXPECT_TRUE(saw_waiting) << "status said it was waiting for the rate limit";
    EXPECT_TRUE(contains(*s->agent_status("sales"), "failed 0\n"));
    EXPECT_TRUE(contains(s->log_stream()->snapshot(), "\"kind\":\"rate_limited\""));
    EXPECT_EQ(fake.requests().size(), 61u);
}

TEST_F(SwarmModel, ASpentBudgetRefusesNewMessagesWithEdquotUntilRaised) {
    auto s = open();
    ASSERT_TRUE(s->agent_ctl("sales", "budget 10\n").ok());
    int64_t n = conv(*s, "sales");
    ask(*s, n, "a message long enough to spend more than ten tokens in one turn");
    auto st = s->conv_send(n, "more\n");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, EDQUOT);
    auto inbox = s->send("sales", "more\n");
    ASSERT_FALSE(inbox.ok());
    EXPECT_EQ(inbox.error().code, EDQUOT);
    EXPECT_TRUE(contains(*s->agent_err("sales"), "spent its token budget"))
        << *s->agent_err("sales");
    ASSERT_TRUE(s->agent_ctl("sales", "budget 100000\n").ok());
    EXPECT_EQ(ask(*s, n, "more"), "echo: more\n");
}
