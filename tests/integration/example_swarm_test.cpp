// The example swarm (mount-scripts/example-swarm.json) as the README and the
// demo use it: exec agents, and the sales -> support handoff with the
// lookup_ticket tool, here against the loopback OpenAI server through
// OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, as a user would point it
// at Ollama or OpenAI.
#include <nlohmann/json.hpp>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

constexpr const char* kKey = "sk-example-SECRET-1234";

class ExampleSwarm : public WithFakeModel<> {
  protected:
    std::string fake_args() const override { return std::string("--require-key ") + kKey; }
    void before_mount() override {
        // The server inherits these, as it would from the user's shell.
        setenv("OPENAI_BASE_URL", fake_.base_url().c_str(), 1);
        setenv("OPENAI_API_KEY", kKey, 1);
        setenv("OPENAI_MODEL", "fake-model", 1);
    }
    void TearDown() override {
        WithFakeModel::TearDown();
        unsetenv("OPENAI_BASE_URL");
        unsetenv("OPENAI_API_KEY");
        unsetenv("OPENAI_MODEL");
    }
    std::string swarm_config_file() const override {
        return std::string(SWARMFS_SOURCE_DIR) + "/mount-scripts/example-swarm.json";
    }
};

TEST_F(ExampleSwarm, ExecAgentsAnswer) {
    ASSERT_EQ(send("upper", "hello\n"), 0);
    EXPECT_EQ(cat_stream("agents/upper/output"), "HELLO\n");
    ASSERT_EQ(send("wc", "files are the interface\n"), 0);
    EXPECT_EQ(cat_stream("agents/wc/output"), "4\n");
}

TEST_F(ExampleSwarm, SalesHandsATechnicalQuestionToSupportWhoUsesTheTicketTool) {
    std::string n = slurp(p("conv/clone"));
    ASSERT_FALSE(n.empty());
    n.pop_back();
    std::string c = "conv/" + n + "/";
    ASSERT_EQ(write_file(p(c + "ctl"), "agent sales\n"), 0);
    ASSERT_EQ(write_file(p(c + "in"), "What does the Pro plan cost?\n"), 0);
    EXPECT_EQ(cat_stream(c + "out"), "echo: What does the Pro plan cost?\n");
    // The echo model calls transfer_to_support when it sees the marker.
    ASSERT_EQ(write_file(p(c + "in"), "My API integration returns 401 [handoff:support]\n"), 0);
    std::string out = cat_stream(c + "out");
    EXPECT_NE(out.find("Transferred to support"), std::string::npos) << out;
    EXPECT_EQ(slurp(p(c + "agent")), "support\n");
    ASSERT_EQ(write_file(p(c + "in"), "Ticket 42 [tool:lookup_ticket {\"id\": 42}]\n"), 0);
    out = cat_stream(c + "out");
    EXPECT_NE(out.find("tool lookup_ticket said: {\"id\": 42, \"customer\": \"Ada Lovelace\""),
              std::string::npos)
        << out;
    // The whole transcript: both agents, the handoff and the tool call.
    std::string ctx = slurp(p(c + "context"));
    for (const char* want : {"What does the Pro plan cost?", "\"name\":\"transfer_to_support\"",
                             "\"role\":\"handoff\"", "\"name\":\"lookup_ticket\"", "Ada Lovelace"})
        EXPECT_NE(ctx.find(want), std::string::npos) << want << " missing from\n" << ctx;
    // The tool as a file.
    auto tools = list_dir(p("tools"));
    ASSERT_TRUE(tools);
    EXPECT_NE(std::find(tools->begin(), tools->end(), "lookup_ticket"), tools->end());
    auto spec = nlohmann::json::parse(slurp(p("tools/lookup_ticket/spec")), nullptr, false);
    ASSERT_FALSE(spec.is_discarded());
    EXPECT_EQ(spec["parameters"]["required"], nlohmann::json::array({"id"}));
    auto r =
        sh("exec 3<>" + shq(p("tools/lookup_ticket/call")) + "; echo '{\"id\": 7}' >&3; cat <&3");
    EXPECT_NE(r.out.find("Grace Hopper"), std::string::npos) << r.out << r.err;
    // The model was the one named by OPENAI_MODEL, reached at OPENAI_BASE_URL.
    EXPECT_NE(fake_.requests().find("\"model\":\"fake-model\""), std::string::npos);
}

}  // namespace
}  // namespace swarmfs::it
