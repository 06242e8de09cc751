// A model agent calls tools of a real Model Context Protocol server
// (@modelcontextprotocol/server-everything from the npm registry, installed by
// tests/unit/tools/install-mcp-everything.sh) through the mount. Skipped, with
// the reason, only when npm or its registry cannot be reached.
#include <cstdio>
#include <filesystem>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

std::string g_entry, g_cache, g_skip;

// Installs the server once per process (cached across runs on disk).
void install() {
    if (!g_entry.empty() || !g_skip.empty()) return;
    std::string cache =
        (std::filesystem::temp_directory_path() / "swarmfs-test-cache" / "mcp-everything").string();
    auto r = sh(
        "sh " +
            shq(std::string(SWARMFS_SOURCE_DIR) + "/tests/unit/tools/install-mcp-everything.sh") +
            " " + shq(cache),
        300);
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    if (r.status != 0 || !std::filesystem::exists(out))
        g_skip = r.err.empty() ? "install-mcp-everything.sh failed" : r.err;
    else
        g_entry = out, g_cache = cache;
}

class Mcp : public WithFakeModel<> {
  protected:
    static void SetUpTestSuite() { install(); }
    void SetUp() override {
        if (!g_skip.empty()) GTEST_SKIP() << "npm registry unreachable: " << g_skip;
        WithFakeModel::SetUp();
    }
    std::string swarm_config() const override {
        return R"({"providers": {"local": {"base_url": ")" + fake_.base_url() + R"("}},
          "tools": {"every": {"mcp": ["node", ")" +
               g_entry + R"("], "tools": ["echo", "get-sum"], "read": [")" + g_cache + R"("]}},
          "agents": {"helper": {"provider": "local", "model": "m", "tools": ["every__echo", "every__get-sum"]}}})";
    }
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

    // The server ran in a sandbox of its own: a uid of its own past the
    // agents' range (uid_base + 1000000), another pid namespace (ps on the
    // host shows it so).
    // Ours: other tests run the same server, unsandboxed, at the same time.
    auto descends_from_server = [this](std::string pid) {
        for (int depth = 0; depth < 8 && !pid.empty() && pid != "0" && pid != "1"; ++depth) {
            if (pid == std::to_string(server_pid())) return true;
            std::string st = slurp("/proc/" + pid + "/status");
            auto at = st.find("\nPPid:\t");
            if (at == std::string::npos) return false;
            pid = st.substr(at + 7, st.find('\n', at + 7) - (at + 7));
        }
        return false;
    };
    std::string pid;
    for (auto& e : std::filesystem::directory_iterator("/proc")) {
        std::string cmd = slurp(e.path().string() + "/cmdline");
        if (cmd.rfind("node", 0) == 0 && cmd.find(g_entry) != std::string::npos &&
            descends_from_server(e.path().filename().string()))
            pid = e.path().filename().string();
    }
    ASSERT_FALSE(pid.empty()) << "the server's node process is not running";
    EXPECT_NE(slurp("/proc/" + pid + "/status").find("\nUid:\t1900000\t1900000"), std::string::npos)
        << slurp("/proc/" + pid + "/status");
    EXPECT_NE(std::filesystem::read_symlink("/proc/" + pid + "/ns/pid"),
              std::filesystem::read_symlink("/proc/self/ns/pid"));
}

// Without the read path its program is not in its sandbox, and the
// server fails to start saying so.
TEST(McpSandbox, AServerWhoseProgramIsNotShownDoesNotStart) {
    install();
    if (!g_skip.empty()) GTEST_SKIP() << "npm registry unreachable: " << g_skip;
    auto r = sh(
        "d=$(mktemp -d) && trap 'umount -l $d/mnt 2>/dev/null; rm -rf $d' EXIT && mkdir $d/mnt && "
        "echo '{\"tools\": {\"every\": {\"mcp\": [\"node\", \"" +
            g_entry + "\"]}}}' > $d/swarm.json && timeout 60 " + shq(SWARMFS_BIN) +
            " $d/mnt --state $d/state --config $d/swarm.json -f",
        90);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("tools.every: MCP server every exited"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace swarmfs::it
