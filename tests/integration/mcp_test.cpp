// A model agent calls tools of a real Model Context Protocol server
// (@modelcontextprotocol/server-everything from the npm registry, installed by
// tests/unit/tools/install-mcp-everything.sh) through the mount. Skipped, with
// the reason, only when npm or its registry cannot be reached.
#include <cstdio>
#include <filesystem>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

std::string g_entry, g_skip;

class Mcp : public MountedSwarm {
  protected:
    static void SetUpTestSuite() {
        if (!g_entry.empty() || !g_skip.empty()) return;
        std::string cache =
            (std::filesystem::temp_directory_path() / "swarmfs-test-cache" / "mcp-everything")
                .string();
        auto r = sh("sh " +
                        shq(std::string(SWARMFS_SOURCE_DIR) +
                            "/tests/unit/tools/install-mcp-everything.sh") +
                        " " + shq(cache),
                    300);
        std::string out = r.out;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        if (r.status != 0 || !std::filesystem::exists(out))
            g_skip = r.err.empty() ? "install-mcp-everything.sh failed" : r.err;
        else
            g_entry = out;
    }
    void SetUp() override {
        if (!g_skip.empty()) GTEST_SKIP() << "npm registry unreachable: " << g_skip;
        ASSERT_NO_FATAL_FAILURE(fake_.start());
        MountedSwarm::SetUp();
    }
    void TearDown() override {
        MountedSwarm::TearDown();
        fake_.stop();
    }
    std::string swarm_config() const override {
        return R"({"providers": {"local": {"base_url": ")" + fake_.base_url() + R"("}},
          "tools": {"every": {"mcp": ["node", ")" +
               g_entry + R"("], "tools": ["echo", "get-sum"]}},
          "agents": {"helper": {"provider": "local", "model": "m", "tools": ["every__echo", "every__get-sum"]}}})";
    }
    FakeOpenAI fake_;
};

TEST_F(Mcp, TheServersToolsAreFilesAndTheModelCallsThem) {
    auto tools = list_dir(p("tools"));
    ASSERT_TRUE(tools);
    EXPECT_EQ(*tools, (std::vector<std::string>{"every__echo", "every__get-sum"}))
        << "the allow-list keeps the other tools out";
    EXPECT_NE(slurp(p("tools/every__get-sum/spec")).find("\"required\""), std::string::npos);

    std::string n = slurp(p("conv/clone"));
    n.pop_back();
    ASSERT_EQ(write_file(p("conv/" + n + "/ctl"), "agent helper\n"), 0);
    ASSERT_EQ(
        write_file(
            p("conv/" + n + "/in"),
            R"(add [tool:every__get-sum {"a": 2, "b": 3.25}] [tool:every__echo {"message": "hi mcp"}])"
            "\n"),
        0);
    std::string out = cat_stream("conv/" + n + "/out", 60);
    EXPECT_NE(out.find("tool every__get-sum said: "), std::string::npos) << out;
    EXPECT_NE(out.find("5.25"), std::string::npos) << out;
    EXPECT_NE(out.find("tool every__echo said: Echo: hi mcp"), std::string::npos) << out;
    // Arguments the schema refuses never reach the server.
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), R"([tool:every__get-sum {"a": "two", "b": 3}])"
                                                 "\n"),
              0);
    out = cat_stream("conv/" + n + "/out", 60);
    EXPECT_NE(out.find("expected number, got string"), std::string::npos) << out;
    // And the query file reaches the same server.
    auto r = sh("exec 3<>" + shq(p("tools/every__echo/call")) +
                "; echo '{\"message\": \"by hand\"}' >&3; cat <&3");
    EXPECT_EQ(r.out, "Echo: by hand\n") << r.err;
}

}  // namespace
}  // namespace swarmfs::it
