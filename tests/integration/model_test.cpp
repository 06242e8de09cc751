// Model agents through the mount, against the loopback OpenAI-compatible
// server (tests/fake_openai): streaming, handoffs, tools, retries, secrets.
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

constexpr const char* kKey = "sk-test-SECRET-4242";

class Model : public WithFakeModel<> {
  protected:
    std::string fake_args() const override { return std::string("--require-key ") + kKey; }
    void before_mount() override { setenv("SWARMFS_TEST_KEY", kKey, 1); }
    std::string swarm_config() const override {
        std::string url = fake_.base_url();
        return R"({"providers": {"local": {"base_url": ")" + url +
               R"(", "api_key_env": "SWARMFS_TEST_KEY", "backoff_initial": 0.05, "backoff_max": 0.2,
                    "max_retries": 2, "first_byte_timeout": 5, "idle_timeout": 5}},
          "tools": {"lookup_ticket": {"exec": ["sh", "-c", "read -r a; printf '%s is open' \"$a\""],
                                      "description": "Look up a support ticket",
                                      "parameters": {"type": "object", "properties": {"id": {"type": "integer"}},
                                                     "required": ["id"]}}},
          "agents": {
            "sales": {"provider": "local", "model": "m", "instructions": "You sell software.", "handoffs": ["support"]},
            "support": {"provider": "local", "model": "m", "instructions": "You fix bugs.", "tools": ["lookup_ticket"]}}})";
    }
    std::string conv(const std::string& agent) {
        std::string n = slurp(p("conv/clone"));
        if (!n.empty()) n.pop_back();
        EXPECT_EQ(write_file(p("conv/" + n + "/ctl"), "agent " + agent + "\n"), 0);
        return n;
    }
    std::string ask(const std::string& n, const std::string& text) {
        EXPECT_EQ(write_file(p("conv/" + n + "/in"), text + "\n"), 0);
        return cat_stream("conv/" + n + "/out");
    }
    void script(const std::string& steps) { ASSERT_NO_FATAL_FAILURE(fake_.script(steps)); }
};

TEST_F(Model, RepliesStreamIntoOutAndUsageIsCounted) {
    std::string n = conv("sales");
    EXPECT_EQ(ask(n, "What does the Pro plan cost?"), "echo: What does the Pro plan cost?\n");
    EXPECT_EQ(ask(n, "[system]"),
              "echo: What does the Pro plan cost?\nsystem: You sell software.\n");
    auto st = slurp(p("agents/sales/status"));
    EXPECT_EQ(kv(st, "turns"), std::string("2")) << st;
    EXPECT_NE(kv(st, "tokens_in"), std::string("0")) << st;
    EXPECT_NE(kv(st, "tokens_out"), std::string("0")) << st;
    EXPECT_NE(kv(slurp(p("conv/" + n + "/ctl")), "tokens_in"), std::string("0"));
}

TEST_F(Model, FirstBytesArriveBeforeTheResponseEnds) {
    script(R"([{"chunk_delay_ms": 300}])");
    std::string n = conv("sales");
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), "one two three four five six\n"), 0);
    double t0 = now();
    Proc cat("cat " + shq(p("conv/" + n + "/out")));
    ASSERT_TRUE(cat.wait_for("echo:", 5)) << cat.out();
    double first = now() - t0;
    ASSERT_TRUE(cat.wait_exit(15));
    double all = now() - t0;
    EXPECT_LT(first, all - 0.5) << "first bytes at " << first << " s, end at " << all << " s";
    EXPECT_EQ(cat.out(), "echo: one two three four five six\n");
}

TEST_F(Model, HandoffMovesTheConversationWithItsTranscriptAndVars) {
    std::string n = conv("sales");
    ASSERT_EQ(write_file(p("conv/" + n + "/vars"), "{\"user\": \"ada\"}\n"), 0);
    ask(n, "Pricing?");
    std::string out = ask(n, "My API returns 401 [handoff:support]");
    EXPECT_NE(out.find("tool transfer_to_support said: Transferred to support"), std::string::npos)
        << out;
    EXPECT_EQ(slurp(p("conv/" + n + "/agent")), "support\n");
    auto ctx = slurp(p("conv/" + n + "/context"));
    EXPECT_NE(ctx.find("\"name\":\"transfer_to_support\""), std::string::npos) << ctx;
    EXPECT_NE(ctx.find(R"("role":"handoff")"), std::string::npos) << ctx;
    EXPECT_NE(ctx.find("Pricing?"), std::string::npos) << "the transcript moved with it";
    EXPECT_NE(slurp(p("agents/support/output")).find("transfer_to_support said"),
              std::string::npos);
    EXPECT_EQ(nlohmann::json::parse(slurp(p("conv/" + n + "/vars"))),
              nlohmann::json({{"user", "ada"}}));
    // Support can use its tool; sales could not.
    out = ask(n, R"(check [tool:lookup_ticket {"id": 42}] [tool:lookup_ticket {"id": 7}])");
    EXPECT_NE(out.find(R"(tool lookup_ticket said: {"id":42} is open)"), std::string::npos) << out;
    EXPECT_NE(out.find(R"(tool lookup_ticket said: {"id":7} is open)"), std::string::npos) << out;
}

TEST_F(Model, BadToolCallsReturnErrorsToTheModel) {
    std::string n = conv("support");
    std::string out = ask(n, R"([tool:lookup_ticket {"id": "x"}])");
    EXPECT_NE(out.find("error: invalid arguments"), std::string::npos) << out;
    out = ask(n, R"([tool:rm_rf {}])");
    EXPECT_NE(out.find("capability refused: agent support does not hold tool:rm_rf"),
              std::string::npos)
        << out;
    n = conv("sales");
    out = ask(n, "[handoff:nobody]");
    EXPECT_NE(out.find("no tool transfer_to_nobody offered"), std::string::npos) << out;
    EXPECT_EQ(kv(slurp(p("agents/support/status")), "state"), std::string("idle"));
}

TEST_F(Model, RetriesOn429And500ThenFailsClearlyAndStaysUsable) {
    script(R"([{"status": 429, "retry_after": 1}, {"status": 500}])");
    std::string n = conv("sales");
    double t0 = now();
    EXPECT_EQ(ask(n, "hello"), "echo: hello\n");
    EXPECT_GE(now() - t0, 0.9) << "Retry-After: 1 was not honoured";
    // Three attempts fail; the supervisor restarts the agent and the message
    // gets three more, which fail too: it is parked as failed.
    script(R"([{"status": 503}, {"status": 503}, {"status": 503},
               {"status": 503}, {"status": 503}, {"status": 503}])");
    ask(n, "doomed");
    auto err = slurp(p("agents/sales/err"));
    EXPECT_NE(err.find("after 3 attempts"), std::string::npos) << err;
    EXPECT_NE(err.find("parked as failed"), std::string::npos) << err;
    auto st = slurp(p("agents/sales/status"));
    EXPECT_EQ(kv(st, "failed"), std::string("2")) << st;
    EXPECT_EQ(kv(st, "parked"), std::string("1")) << st;
    EXPECT_EQ(ask(n, "still there?"), "echo: hello\necho: still there?\n");
}

TEST_F(Model, ConcurrentConversationsGetOnlyTheirOwnAnswers) {
    std::vector<std::string> convs;
    for (int i = 0; i < 8; ++i) convs.push_back(conv("sales"));
    std::vector<std::thread> threads;
    std::vector<std::string> outs(convs.size());
    for (size_t i = 0; i < convs.size(); ++i)
        threads.emplace_back([&, i] {
            for (int k = 0; k < 3; ++k) {
                write_file(p("conv/" + convs[i] + "/in"),
                           "user " + std::to_string(i) + " msg " + std::to_string(k) + "\n");
                outs[i] = slurp(p("conv/" + convs[i] + "/out"));
            }
        });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < convs.size(); ++i) {
        std::string want;
        for (int k = 0; k < 3; ++k)
            want += "echo: user " + std::to_string(i) + " msg " + std::to_string(k) + "\n";
        EXPECT_EQ(outs[i], want) << "conversation " << convs[i];
    }
}

TEST_F(Model, ToolsAreFilesAndQueryFilesAnswerTheirOwnCaller) {
    auto spec = nlohmann::json::parse(slurp(p("tools/lookup_ticket/spec")), nullptr, false);
    ASSERT_FALSE(spec.is_discarded());
    EXPECT_EQ(spec["name"], "lookup_ticket");
    auto r =
        sh("exec 3<>" + shq(p("tools/lookup_ticket/call")) + "; echo '{\"id\": 42}' >&3; cat <&3");
    EXPECT_EQ(r.out, "{\"id\":42} is open\n") << r.err;
    r = sh("exec 3<>" + shq(p("tools/lookup_ticket/call")) +
           "; echo '{\"id\": \"x\"}' >&3; cat <&3");
    EXPECT_NE(r.out.find("error: invalid arguments"), std::string::npos) << r.out;
    std::vector<std::thread> threads;
    std::vector<std::string> got(6);
    for (int i = 0; i < 6; ++i)
        threads.emplace_back([&, i] {
            got[i] = sh("exec 3<>" + shq(p("tools/lookup_ticket/call")) +
                        "; echo '{\"id\": " + std::to_string(i) + "}' >&3; cat <&3")
                         .out;
        });
    for (auto& t : threads) t.join();
    for (int i = 0; i < 6; ++i) EXPECT_EQ(got[i], "{\"id\":" + std::to_string(i) + "} is open\n");
}

TEST_F(Model, TheApiKeyNeverLeaks) {
    script(R"([{"status": 400, "message": "bad request"}])");
    std::string n = conv("sales");
    ask(n, "first");
    ask(n, "second");
    auto r = sh("grep -rl " + shq(kKey) + " " + shq(state()) + " " + shq(p("agents")) + " " +
                shq(p("conv")) + " " + shq(log_path()) + " 2>/dev/null; true");
    // conv/clone would make conversations and log never ends: neither is searched.
    EXPECT_EQ(r.out, "") << "the key appears in: " << r.out;
    EXPECT_NE(fake_.requests().find(std::string("Bearer ") + kKey), std::string::npos)
        << "the key did reach the provider";
}

TEST_F(Model, RestartMidConversationResumesFromTheLog) {
    std::string n = conv("sales");
    ask(n, "one");
    ASSERT_NO_FATAL_FAILURE(kill9());
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(ask(n, "[count]"), "echo: one\nmessages: 4\n") << "system, user, assistant, user";
}

}  // namespace
}  // namespace swarmfs::it
