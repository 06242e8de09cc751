// The MCP client against the reference server from npm,
// @modelcontextprotocol/server-everything, run with node.
//
// The suite installs it with install-mcp-everything.sh (beside this file)
// into $SWARMFS_TEST_CACHE/mcp-everything, default
// $TMPDIR/swarmfs-test-cache/mcp-everything, once; later runs reuse it.
// SWARMFS_MCP_EVERYTHING=/path/to/dist/index.js uses an installed copy.
// The tests skip, saying why, only when the install fails (no node/npm, the
// registry unreachable).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "agents/tools/tool_registry.h"
#include "tools_test_util.h"

using namespace swarmfs;
using namespace swarmfs::test;
using json = nlohmann::json;

namespace {
std::string g_entry, g_skip;

class McpEverythingTest : public ::testing::Test {
public:
    static void SetUpTestSuite() {
        if (!g_entry.empty() || !g_skip.empty()) return;
        if (const char* e = getenv("SWARMFS_MCP_EVERYTHING"); e && *e) {
            if (std::filesystem::exists(e)) g_entry = e;
            else g_skip = std::string("SWARMFS_MCP_EVERYTHING=") + e + " does not exist";
            return;
        }
        std::filesystem::path cache;
        if (const char* c = getenv("SWARMFS_TEST_CACHE"); c && *c) cache = c;
        else cache = std::filesystem::temp_directory_path() / "swarmfs-test-cache";
        cache /= "mcp-everything";
        std::string errfile = (std::filesystem::temp_directory_path() /
                               ("swarmfs-mcp-install-" + std::to_string(getpid()) + ".err"))
                                  .string();
        std::string cmd = "sh '" + tools_test_dir() + "/install-mcp-everything.sh' '" +
                          cache.string() + "' 2>'" + errfile + "'";
        FILE* p = popen(cmd.c_str(), "r");
        std::string out;
        if (p) {
            char buf[4096];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        }
        int status = p ? pclose(p) : -1;
        std::string err = read_file(errfile);
        std::filesystem::remove(errfile);
        while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
        if (status != 0 || out.empty() || !std::filesystem::exists(out)) {
            while (!err.empty() && err.back() == '\n') err.pop_back();
            g_skip = err.empty() ? "install-mcp-everything.sh failed" : err;
            return;
        }
        g_entry = out;
    }

protected:
    void SetUp() override {
        if (!g_skip.empty()) GTEST_SKIP() << "npm registry unreachable: " << g_skip;
    }
    void load(json extra = json::object()) {
        json e = {{"mcp", {"node", g_entry}}};
        e.update(extra);
        Status st = reg.load({{"every", e}});
        ASSERT_TRUE(st) << st.error().message;
    }
    ToolResult call(const std::string& name, json args = json::object()) {
        auto t = reg.get(name);
        if (!t) {
            ADD_FAILURE() << "no tool " << name;
            return {};
        }
        return call_tool(loop, *t, std::move(args));
    }

    TempDir dir;
    EventLoop loop;
    ToolRegistry reg{loop, dir.path.string()};
};
}  // namespace

TEST_F(McpEverythingTest, ListsItsToolsAndEchoes) {
    load();
    auto names = reg.names();
    for (const char* want : {"every__echo", "every__get-sum", "every__get-tiny-image"})
        EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
    for (auto& n : names) EXPECT_TRUE(valid_tool_name(n)) << n;
    auto echo = reg.get("every__echo");
    EXPECT_EQ(echo->spec().description, "Echoes back the input string");
    EXPECT_FALSE(echo->spec().parameters.contains("$schema"));
    auto r = call("every__echo", {{"message", "hello from swarmfs"}});
    EXPECT_TRUE(r.ok) << r.content;
    EXPECT_EQ(r.content, "Echo: hello from swarmfs");
}

TEST_F(McpEverythingTest, AddsNumbers) {
    load();
    auto r = call("every__get-sum", {{"a", 2}, {"b", 3.5}});
    EXPECT_TRUE(r.ok) << r.content;
    EXPECT_NE(r.content.find("5.5"), std::string::npos) << r.content;
}

TEST_F(McpEverythingTest, BadArgumentsAreRefusedBeforeTheServer) {
    load();
    auto r = call("every__echo", json::object());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "invalid arguments for every__echo: missing required property \"message\"");
    r = call("every__get-sum", {{"a", "two"}, {"b", 3}});
    EXPECT_EQ(r.content, "invalid arguments for every__get-sum: /a: expected number, got string");
}

TEST_F(McpEverythingTest, ImagesAreDescribed) {
    load();
    auto r = call("every__get-tiny-image");
    EXPECT_TRUE(r.ok) << r.content;
    EXPECT_NE(r.content.find("[image image/png]"), std::string::npos) << r.content;
}

TEST_F(McpEverythingTest, EnvironmentReachesTheServer) {
    load({{"env", {{"SWARMFS_TEST_MARK", "m-42"}}}});
    auto r = call("every__get-env");
    EXPECT_TRUE(r.ok) << r.content;
    EXPECT_NE(r.content.find("m-42"), std::string::npos);
    EXPECT_NE(r.content.find("\"SWARMFS_TOOL\": \"every\""), std::string::npos) << r.content.substr(0, 200);
}

TEST_F(McpEverythingTest, TwentyParallelCalls) {
    load();
    auto echo = reg.get("every__echo");
    constexpr int N = 20;
    std::vector<std::shared_ptr<std::promise<ToolResult>>> ps;
    std::vector<std::thread> callers;
    for (int i = 0; i < N; ++i) ps.push_back(std::make_shared<std::promise<ToolResult>>());
    for (int i = 0; i < N; ++i)
        callers.emplace_back([&, i] {
            echo->call({{"message", "m" + std::to_string(i)}},
                       [p = ps[i]](ToolResult r) { p->set_value(std::move(r)); });
        });
    for (auto& c : callers) c.join();
    for (int i = 0; i < N; ++i) {
        auto f = ps[i]->get_future();
        ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
        EXPECT_EQ(f.get().content, "Echo: m" + std::to_string(i));
    }
}

TEST_F(McpEverythingTest, ASlowCallTimesOutAndTheServerStaysUsable) {
    load({{"timeout", 1}});
    auto r = call("every__trigger-long-running-operation", {{"duration", 5}, {"steps", 5}});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "timed out after 1 s");
    r = call("every__echo", {{"message", "after"}});
    EXPECT_EQ(r.content, "Echo: after");
}

TEST_F(McpEverythingTest, AllowListAndUnknownTool) {
    load({{"tools", {"echo"}}});
    EXPECT_EQ(reg.names(), std::vector<std::string>{"every__echo"});
}
