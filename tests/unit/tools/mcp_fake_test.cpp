// The MCP client against tests/unit/tools/fake-mcp-server.sh, a server that
// misbehaves on request (sh and sed only).
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "agents/tools/mcp_client.h"
#include "agents/tools/tool_registry.h"
#include "tools_test_util.h"

using namespace swarmfs;
using namespace swarmfs::test;
using json = nlohmann::json;

namespace {
struct McpFakeTest : ::testing::Test {
    TempDir dir;
    EventLoop loop;
    std::unique_ptr<ToolRegistry> reg = std::make_unique<ToolRegistry>(loop, dir.path.string());
    std::string log = dir.file("server.log");

    json entry(const std::string& mode = "normal", json extra = json::object()) {
        json e = {{"mcp", {"sh", tools_test_dir() + "/fake-mcp-server.sh"}},
                  {"env", {{"FAKE_MCP_MODE", mode}, {"FAKE_MCP_LOG", log}}}};
        e.update(extra);
        return e;
    }
    void load(const std::string& mode = "normal", json extra = json::object()) {
        Status st = reg->load({{"fake", entry(mode, std::move(extra))}});
        ASSERT_TRUE(st) << st.error().message;
    }
    ToolResult call(const std::string& name, json args = json::object()) {
        auto t = reg->get(name);
        if (!t) {
            ADD_FAILURE() << "no tool " << name;
            return {};
        }
        return call_tool(loop, *t, std::move(args));
    }
    int starts() {
        std::string s = read_file(log);
        int n = 0;
        for (size_t p = 0; (p = s.find("start ", p)) != std::string::npos; ++p)
            if (p == 0 || s[p - 1] == '\n') ++n;
        return n;
    }
    pid_t last_pid() {
        std::string s = read_file(log);
        size_t p = s.rfind("start ");
        return p == std::string::npos ? -1 : std::stoi(s.substr(p + 6));
    }
};
}  // namespace

TEST_F(McpFakeTest, ListsToolsAsServerDoubleUnderscoreTool) {
    load();
    EXPECT_EQ(reg->names(), (std::vector<std::string>{"fake__die", "fake__echo", "fake__fail",
                                                      "fake__hang", "fake__image", "fake__pingme",
                                                      "fake__rpcerror", "fake__slow"}));
    auto t = reg->get("fake__echo");
    EXPECT_EQ(t->spec().description, "Echo a message");
    EXPECT_EQ(t->spec().parameters["required"], json({"message"}));
    auto r = call("fake__echo", {{"message", "hi"}});
    EXPECT_TRUE(r.ok) << r.content;
    EXPECT_EQ(r.content, "echo: hi");
    // The handshake as the log saw it.
    std::string s = read_file(log);
    EXPECT_NE(s.find(R"("method":"initialize","params":{"capabilities":{},"clientInfo":{"name":"swarmfs")"),
              std::string::npos)
        << s;
    EXPECT_NE(s.find(R"({"jsonrpc":"2.0","method":"notifications/initialized"})"), std::string::npos);
}

TEST_F(McpFakeTest, AnswersOutOfOrderAreMatchedById) {
    load();
    auto t = reg->get("fake__slow");
    constexpr int N = 6;
    std::vector<std::shared_ptr<std::promise<ToolResult>>> ps;
    for (int i = 0; i < N; ++i) {
        ps.push_back(std::make_shared<std::promise<ToolResult>>());
        // The first call is answered last.
        t->call({{"message", "m" + std::to_string(i)}, {"delay", 0.1 * (N - i)}},
                [p = ps.back()](ToolResult r) { p->set_value(std::move(r)); });
    }
    for (int i = 0; i < N; ++i) {
        auto f = ps[i]->get_future();
        ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
        auto r = f.get();
        EXPECT_TRUE(r.ok);
        EXPECT_EQ(r.content, "slow: m" + std::to_string(i));
    }
}

TEST_F(McpFakeTest, IsErrorAndRpcErrorsAreFailures) {
    load();
    auto r = call("fake__fail");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "it failed on purpose");
    r = call("fake__rpcerror");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "MCP error -32602: Unknown tool: rpcerror");
}

TEST_F(McpFakeTest, NonTextContentIsDescribed) {
    load();
    auto r = call("fake__image");
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.content, "here it is\n[image image/png]");
}

TEST_F(McpFakeTest, BadArgumentsNeverReachTheServer) {
    load();
    auto r = call("fake__echo", {{"message", 5}});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "invalid arguments for fake__echo: /message: expected string, got integer");
    r = call("fake__slow", {{"message", "x"}, {"delay", -1}});
    EXPECT_EQ(r.content, "invalid arguments for fake__slow: /delay: must be >= 0, got -1");
    EXPECT_EQ(read_file(log).find("tools/call"), std::string::npos);
}

TEST_F(McpFakeTest, ServerDyingMidCallFailsPendingCallsAndRestartsOnTheNext) {
    load();
    auto slow = reg->get("fake__slow");
    auto p = std::make_shared<std::promise<ToolResult>>();
    slow->call({{"message", "never"}, {"delay", 5}}, [p](ToolResult r) { p->set_value(r); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r = call("fake__die");
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.content.find("MCP server fake exited (exit status 3)"), std::string::npos) << r.content;
    EXPECT_NE(r.content.find("fake: dying mid-call"), std::string::npos) << r.content;
    auto f = p->get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_EQ(f.get().content, r.content);  // the pending call learns the same reason
    EXPECT_EQ(starts(), 1);
    r = call("fake__echo", {{"message", "again"}});
    EXPECT_TRUE(r.ok) << r.content;
    EXPECT_EQ(r.content, "echo: again");
    EXPECT_EQ(starts(), 2);
}

TEST_F(McpFakeTest, AtMostThreeRestartsPerMinute) {
    load();
    for (int i = 0; i < 4; ++i) {  // the first death needs no restart; three restarts follow
        auto r = call("fake__die");
        EXPECT_NE(r.content.find("exited (exit status 3)"), std::string::npos) << i << r.content;
    }
    EXPECT_EQ(starts(), 4);
    auto r = call("fake__echo", {{"message", "x"}});
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.content.find("MCP server fake is down and was restarted 3 times in the last 60 s"),
              std::string::npos)
        << r.content;
    EXPECT_EQ(starts(), 4);
}

TEST_F(McpFakeTest, CallTimeoutLeavesTheServerUsable) {
    // McpServer itself, so the hanging call and the next one have their own
    // time limits (the fake server is slow under a loaded machine).
    McpServerConfig c;
    c.name = "fake";
    c.argv = {"sh", tools_test_dir() + "/fake-mcp-server.sh"};
    c.env = {{"FAKE_MCP_LOG", log}};
    c.workdir = dir.path.string();
    auto server = McpServer::create(loop, c);
    std::promise<std::string> started;
    loop.post([&] {
        server->start([&](Result<std::vector<McpToolInfo>> r) {
            started.set_value(r ? "" : r.error().message);
        });
    });
    ASSERT_EQ(started.get_future().get(), "");
    auto call = [&](const std::string& tool, json args, double timeout) {
        auto p = std::make_shared<std::promise<ToolResult>>();
        loop.post([&, p, tool, args, timeout] {
            server->call(tool, args, timeout, [p](ToolResult r) { p->set_value(std::move(r)); });
        });
        auto f = p->get_future();
        EXPECT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
        return f.get();
    };
    auto start = std::chrono::steady_clock::now();
    auto r = call("hang", json::object(), 0.4);
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "timed out after 0.4 s");
    EXPECT_LT(took, 5);
    r = call("echo", {{"message", "still here"}}, 30);
    EXPECT_EQ(r.content, "echo: still here");
    EXPECT_EQ(starts(), 1);
    EXPECT_TRUE(eventually([&] {
        return read_file(log).find(R"("method":"notifications/cancelled")") != std::string::npos;
    }));
    std::promise<size_t> pending;
    loop.post([&] {
        size_t n = server->pending_requests();  // the timed-out id is forgotten
        server->stop();
        pending.set_value(n);
    });
    EXPECT_EQ(pending.get_future().get(), 0u);
}

TEST_F(McpFakeTest, TheEntryTimeoutAppliesToItsTools) {
    load("normal", {{"timeout", 0.4}});
    auto r = call("fake__hang");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "timed out after 0.4 s");
}

TEST_F(McpFakeTest, ServerRequestsAreAnsweredAndJunkLinesIgnored) {
    load("junk");
    auto r = call("fake__pingme");
    EXPECT_EQ(r.content, "pinged");
    EXPECT_TRUE(eventually([&] {
        return read_file(log).find(R"({"id":"srv-1","jsonrpc":"2.0","result":{}})") !=
               std::string::npos;
    }));
}

TEST_F(McpFakeTest, PagedListingOddNamesAndSchemasWeCannotEnforce) {
    load("paged");
    auto names = reg->names();
    EXPECT_EQ(names.size(), 10u);
    auto odd = reg->get("fake__my_dotted_tool");
    ASSERT_TRUE(odd);
    EXPECT_EQ(odd->spec().description, "odd name");
    // A $ref schema is registered; the server, not we, checks its arguments.
    auto refd = reg->get("fake__refd");
    ASSERT_TRUE(refd);
    auto r = call_tool(loop, *refd, {{"x", 1}});
    EXPECT_EQ(r.content, "MCP error -32602: Unknown tool: refd");  // it reached the server
}

TEST_F(McpFakeTest, ToolsAllowListKeepsOnlyTheNamedTools) {
    load("normal", {{"tools", {"echo", "fail"}}});
    EXPECT_EQ(reg->names(), (std::vector<std::string>{"fake__echo", "fake__fail"}));
    Status st = reg->load({{"fake", entry("normal", {{"tools", {"nope"}}})}});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message, "tools.fake.tools: the server has no tool \"nope\"");
    EXPECT_EQ(reg->names(), (std::vector<std::string>{"fake__echo", "fake__fail"}));
}

TEST_F(McpFakeTest, AServerThatNeverAnswersFailsTheLoadInTime) {
    auto start = std::chrono::steady_clock::now();
    Status st = reg->load({{"fake", entry("silent", {{"start_timeout", 0.5}})}});
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ETIMEDOUT);
    EXPECT_NE(st.error().message.find(
                  "tools.fake: MCP server fake did not finish its handshake within 0.5 s"),
              std::string::npos)
        << st.error().message;
    EXPECT_NE(st.error().message.find("starting in mode silent"), std::string::npos)
        << st.error().message;
    EXPECT_LT(took, 3);
    pid_t pid = last_pid();
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(eventually([&] { return kill(pid, 0) != 0; })) << "the silent server still runs";
}

TEST_F(McpFakeTest, AServerThatDiesAtStartFailsTheLoadWithItsStderr) {
    Status st = reg->load({{"fake", entry("die-at-start")}});
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message,
              "tools.fake: MCP server fake exited (exit status 1); stderr: fake mcp server " +
                  std::to_string(last_pid()) +
                  " starting in mode die-at-start | fake: cannot start: no config");
}

TEST_F(McpFakeTest, ReloadAndDestructionStopTheServers) {
    load();
    pid_t first = last_pid();
    auto hang = reg->get("fake__hang");
    auto p = std::make_shared<std::promise<ToolResult>>();
    hang->call(json::object(), [p](ToolResult r) { p->set_value(r); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    load();  // a new server replaces the old one
    auto f = p->get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_EQ(f.get().content, "MCP server fake stopped: replaced by a new tools section");
    EXPECT_TRUE(eventually([&] { return kill(first, 0) != 0; }));
    // The old tool object still answers, with a reason.
    EXPECT_EQ(call_tool(loop, *hang, json::object()).content, "MCP server fake is stopped");
    pid_t second = last_pid();
    EXPECT_NE(first, second);
    EXPECT_EQ(kill(second, 0), 0);
    reg.reset();
    EXPECT_TRUE(eventually([&] { return kill(second, 0) != 0; }));
}

TEST(McpResult, ContentItemsBecomeText) {
    auto r = mcp_result_to_tool_result(json::parse(R"({"content": [
        {"type": "text", "text": "a"},
        {"type": "audio", "data": "x", "mimeType": "audio/wav"},
        {"type": "resource", "resource": {"uri": "file:///x", "text": "inline"}},
        {"type": "resource", "resource": {"uri": "file:///y", "mimeType": "application/pdf", "blob": "AA"}},
        {"type": "resource_link", "uri": "file:///z", "name": "zed"},
        {"type": "hologram"}]})"));
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.content,
              "a\n[audio audio/wav]\ninline\n[resource file:///y application/pdf]\n"
              "[resource link file:///z (zed)]\n[hologram content]");
    r = mcp_result_to_tool_result(json::parse(R"({"content": [], "structuredContent": {"t": 1}})"));
    EXPECT_EQ(r.content, R"({"t":1})");
    r = mcp_result_to_tool_result(json::parse(R"({"content": [{"type": "text", "text": "no"}], "isError": true})"));
    EXPECT_FALSE(r.ok);
}
