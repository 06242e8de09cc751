#include "agents/tools/exec_tool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "agents/tools/tool_registry.h"
#include "tools_test_util.h"

using namespace swarmfs;
using namespace swarmfs::test;
using json = nlohmann::json;

namespace {
struct ExecToolTest : ::testing::Test {
    TempDir dir;
    EventLoop loop;
    ToolRegistry reg{loop, dir.path.string()};

    std::shared_ptr<Tool> load_one(const std::string& name, json entry) {
        Status st = reg.load({{name, std::move(entry)}});
        EXPECT_TRUE(st) << st.error().message;
        auto t = reg.get(name);
        EXPECT_TRUE(t);
        return t;
    }
    Error load_error(json section) {
        Status st = reg.load(section);
        EXPECT_FALSE(st) << section.dump();
        return st ? Error{} : st.error();
    }
};
}  // namespace

TEST_F(ExecToolTest, ArgumentsAsOneLineOfJsonOnStdinResultIsStdout) {
    auto t = load_one("cat", {{"exec", {"cat"}}, {"description", "echo the arguments"}});
    json args = {{"message", "hi there"}, {"n", 3}};
    auto r = call_tool(loop, *t, args);
    EXPECT_TRUE(r.ok) << r.content;
    EXPECT_EQ(r.content, args.dump());  // one line, its newline trimmed
}

TEST_F(ExecToolTest, SedPicksAnArgument) {
    auto t = load_one("greet", {{"exec", {"sed", "-e", R"re(s/.*"name":"\([^"]*\)".*/hello \1/)re"}},
                                {"parameters",
                                 {{"type", "object"},
                                  {"properties", {{"name", {{"type", "string"}}}}},
                                  {"required", {"name"}}}}});
    auto r = call_tool(loop, *t, {{"name", "bob"}});
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.content, "hello bob");
}

TEST_F(ExecToolTest, OnlyOneTrailingNewlineIsTrimmed) {
    auto t = load_one("two", {{"exec", {"sh", "-c", "printf 'a\\n\\n'"}}});
    auto r = call_tool(loop, *t, json::object());
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.content, "a\n");
}

TEST_F(ExecToolTest, NonZeroExitGivesStatusAndFirstLinesOfStderr) {
    auto t = load_one("bad", {{"exec", {"sh", "-c", "echo partial; echo 'no such thing' >&2; "
                                                     "echo 'second line' >&2; exit 2"}}});
    auto r = call_tool(loop, *t, json::object());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "exit status 2: no such thing\nsecond line");
    auto quiet = load_one("quiet", {{"exec", {"sh", "-c", "exit 4"}}});
    r = call_tool(loop, *quiet, json::object());
    EXPECT_EQ(r.content, "exit status 4");
}

TEST_F(ExecToolTest, TimeoutKillsTheProcessGroup) {
    std::string marker = dir.file("survived");
    // The grandchild would write the marker if it outlived the timeout.
    auto t = load_one("sleepy", {{"exec", {"sh", "-c", "(sleep 1.5; touch " + marker + ") & sleep 30"}},
                                 {"timeout", 0.3}});
    auto start = std::chrono::steady_clock::now();
    auto r = call_tool(loop, *t, json::object());
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "timed out after 0.3 s");
    EXPECT_LT(took, 5);
    std::this_thread::sleep_for(std::chrono::milliseconds(1800));
    EXPECT_FALSE(std::filesystem::exists(marker)) << "a grandchild outlived the timeout";
}

TEST_F(ExecToolTest, BadArgumentsAreRefusedBeforeTheToolRuns) {
    std::string ran = dir.file("ran");
    auto t = load_one("touch", {{"exec", {"sh", "-c", "touch " + ran + "; echo done"}},
                                {"parameters",
                                 {{"type", "object"},
                                  {"properties", {{"n", {{"type", "integer"}}}}},
                                  {"required", {"n"}},
                                  {"additionalProperties", false}}}});
    auto r = call_tool(loop, *t, {{"n", "seven"}});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.content, "invalid arguments for touch: /n: expected integer, got string");
    r = call_tool(loop, *t, {{"n", 1}, {"m", 2}});
    EXPECT_EQ(r.content, "invalid arguments for touch: unknown property \"m\" (allowed: n)");
    r = call_tool(loop, *t, json::object());
    EXPECT_EQ(r.content, "invalid arguments for touch: missing required property \"n\"");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_FALSE(std::filesystem::exists(ran)) << "the tool ran with bad arguments";
    // And with good ones it does run.
    r = call_tool(loop, *t, {{"n", 7}});
    EXPECT_TRUE(r.ok) << r.content;
    EXPECT_TRUE(std::filesystem::exists(ran));
}

TEST_F(ExecToolTest, ParallelCallsEachGetTheirOwnResult) {
    // Echo the arguments after a pseudo-random sleep, so they finish out of order.
    auto t = load_one("echo", {{"exec", {"sh", "-c", "read line; sleep 0.$(( $$ % 4 ))$(( $$ % 10 )); "
                                                     "printf '%s\\n' \"$line\""}}});
    constexpr int N = 20;
    std::vector<std::shared_ptr<std::promise<ToolResult>>> ps;
    std::vector<std::thread> callers;
    for (int i = 0; i < N; ++i) ps.push_back(std::make_shared<std::promise<ToolResult>>());
    for (int i = 0; i < N; ++i)
        callers.emplace_back([&, i] {  // from many threads at once
            t->call({{"i", i}}, [p = ps[i]](ToolResult r) { p->set_value(std::move(r)); });
        });
    for (auto& c : callers) c.join();
    for (int i = 0; i < N; ++i) {
        auto f = ps[i]->get_future();
        ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready) << i;
        auto r = f.get();
        EXPECT_TRUE(r.ok) << r.content;
        EXPECT_EQ(r.content, json({{"i", i}}).dump());
    }
}

TEST_F(ExecToolTest, RelativeCommandRunsInWorkdirWithItsEnvironment) {
    std::filesystem::create_directories(dir.path / "bin");
    {
        std::ofstream f(dir.file("bin/where.sh"));
        f << "#!/bin/sh\necho \"$(pwd) $SWARMFS_TOOL $GREETING\"\n";
    }
    chmod(dir.file("bin/where.sh").c_str(), 0755);
    auto t = load_one("where", {{"exec", {"./bin/where.sh"}}, {"env", {{"GREETING", "hej"}}}});
    auto r = call_tool(loop, *t, json::object());
    EXPECT_TRUE(r.ok) << r.content;
    EXPECT_EQ(r.content, std::filesystem::canonical(dir.path).string() + " where hej");
    // PATH is inherited from the server.
    auto path = load_one("path", {{"exec", {"sh", "-c", "echo \"$PATH\""}}});
    r = call_tool(loop, *path, json::object());
    EXPECT_EQ(r.content, getenv("PATH"));
}

TEST_F(ExecToolTest, SpecAndOpenAiForm) {
    auto t = load_one("wc", {{"exec", {"wc", "-c"}}, {"description", "count bytes"}});
    EXPECT_EQ(spec_json(t->spec()),
              json::parse(R"({"name": "wc", "description": "count bytes",
                              "parameters": {"type": "object", "properties": {}}})"));
    EXPECT_EQ(openai_tool_json(t->spec())["type"], "function");
    EXPECT_EQ(openai_tool_json(t->spec())["function"]["name"], "wc");
}

TEST_F(ExecToolTest, SectionErrorsAreReadable) {
    auto e = load_error({{"x", {{"exec", {"cat"}}, {"timeot", 3}}}});
    EXPECT_EQ(e.code, EINVAL);
    EXPECT_EQ(e.message,
              "tools.x: unknown key \"timeot\" (known keys of an exec entry: description, env, "
              "exec, parameters, read, timeout)");
    e = load_error({{"x", {{"description", "d"}}}});
    EXPECT_NE(e.message.find("tools.x: needs \"exec\""), std::string::npos) << e.message;
    e = load_error({{"x", {{"exec", {"cat"}}, {"mcp", {"cat"}}}}});
    EXPECT_EQ(e.message, "tools.x: has both \"exec\" and \"mcp\"; an entry is one or the other");
    e = load_error({{"bad name", {{"exec", {"cat"}}}}});
    EXPECT_NE(e.message.find("\"bad name\" is not a valid tool name"), std::string::npos);
    e = load_error({{"a__b", {{"exec", {"cat"}}}}});
    EXPECT_NE(e.message.find("is not a valid tool name"), std::string::npos);
    e = load_error({{"x", {{"exec", json::array()}}}});
    EXPECT_NE(e.message.find("tools.x.exec: must be a non-empty array"), std::string::npos);
    e = load_error({{"x", {{"exec", {"cat"}}, {"timeout", -1}}}});
    EXPECT_NE(e.message.find("tools.x.timeout: must be a number of seconds > 0"), std::string::npos);
    e = load_error({{"x", {{"exec", {"cat"}}, {"parameters", {{"type", "string"}}}}}});
    EXPECT_NE(e.message.find("tools.x.parameters: must be a JSON Schema whose top level"),
              std::string::npos);
    e = load_error({{"x",
                     {{"exec", {"cat"}},
                      {"parameters",
                       {{"type", "object"}, {"properties", {{"y", {{"$ref", "#/defs/y"}}}}}}}}}});
    EXPECT_EQ(e.message,
              "tools.x.parameters: /properties/y: unsupported $ref \"#/defs/y\" (inline the "
              "referenced schema)");
    e = load_error(json::array());
    EXPECT_NE(e.message.find("tools: must be an object"), std::string::npos);
    e = load_error({{"x", {{"exec", {"no-such-command-swarmfs"}}}}});
    EXPECT_EQ(e.code, ENOENT);
    EXPECT_EQ(e.message, "tools.x: command not found: no-such-command-swarmfs (not on PATH)");
    e = load_error({{"x", {{"exec", {"./nope.sh"}}}}});
    EXPECT_EQ(e.code, ENOENT);
    // An MCP server's sandbox keys; an exec tool runs in its caller's.
    e = load_error({{"m", {{"mcp", {"cat"}}, {"net", "yes"}}}});
    EXPECT_EQ(e.message, "tools.m.net: must be true or false");
    e = load_error({{"m", {{"mcp", {"cat"}}, {"read", {"lib"}}}}});
    EXPECT_EQ(e.message, "tools.m.read: must contain only absolute paths, got \"lib\"");
    e = load_error({{"m", {{"mcp", {"cat"}}, {"sandbox", {{"memory", "lots"}}}}}});
    EXPECT_EQ(e.code, EINVAL);
    EXPECT_NE(e.message.find("tools.m.sandbox: sandbox.memory"), std::string::npos) << e.message;
    e = load_error({{"x", {{"exec", {"cat"}}, {"net", true}}}});
    EXPECT_NE(e.message.find("tools.x: unknown key \"net\""), std::string::npos) << e.message;
}

TEST_F(ExecToolTest, AFailedLoadKeepsTheToolsLoadedBefore) {
    ASSERT_TRUE(reg.load({{"a", {{"exec", {"cat"}}}}, {"b", {{"exec", {"cat"}}}}}));
    EXPECT_EQ(reg.names(), (std::vector<std::string>{"a", "b"}));
    EXPECT_FALSE(reg.load({{"c", {{"exec", {"cat"}}}}, {"d", {{"exec", 5}}}}));
    EXPECT_EQ(reg.names(), (std::vector<std::string>{"a", "b"}));
    ASSERT_TRUE(reg.load({{"c", {{"exec", {"cat"}}}}}));
    EXPECT_EQ(reg.names(), (std::vector<std::string>{"c"}));
    EXPECT_EQ(reg.get("a"), nullptr);
    ASSERT_TRUE(reg.load(nullptr));
    EXPECT_TRUE(reg.names().empty());
}

TEST_F(ExecToolTest, LoadOnTheLoopThreadIsRefused) {
    std::promise<Status> p;
    loop.post([&] { p.set_value(reg.load(json::object())); });
    Status st = p.get_future().get();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, EDEADLK);
}

TEST_F(ExecToolTest, ACallOutlivesTheRegistry) {
    auto t = load_one("late", {{"exec", {"sh", "-c", "sleep 0.2; echo ok"}}});
    auto p = std::make_shared<std::promise<ToolResult>>();
    t->call(json::object(), [p](ToolResult r) { p->set_value(std::move(r)); });
    ASSERT_TRUE(reg.load(nullptr));  // the tool is gone from the registry, the call is not
    t.reset();
    auto f = p->get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(f.get().content, "ok");
}

TEST(ToolArguments, ParseAndName) {
    EXPECT_EQ(*parse_tool_arguments(""), json::object());
    EXPECT_EQ(*parse_tool_arguments(" \n"), json::object());
    EXPECT_EQ(*parse_tool_arguments(R"({"a": 1})"), json({{"a", 1}}));
    auto bad = parse_tool_arguments("{\"a\": ");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, EINVAL);
    EXPECT_NE(bad.error().message.find("arguments are not valid JSON: parse error"),
              std::string::npos)
        << bad.error().message;
    EXPECT_TRUE(valid_tool_name("get-sum_2"));
    EXPECT_FALSE(valid_tool_name("a.b"));
    EXPECT_FALSE(valid_tool_name(""));
    EXPECT_FALSE(valid_tool_name(std::string(65, 'a')));
}
