// ChatClient against tests/fake_openai, the loopback OpenAI server (echo
// model, scripted failures). The binary comes from FAKE_OPENAI_PATH (a
// compile definition) or the FAKE_OPENAI environment variable; without it
// these tests are skipped.
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>

#include "../fake_openai_child.h"
#include "../test_util.h"
#include "agents/provider/chat_client.h"

using namespace swarmfs;
using swarmfs::test::FakeOpenAI;
using json = nlohmann::json;

namespace {

struct Got {
    ChatResult r;
    std::string streamed;
    std::vector<std::tuple<int, double, std::string>> retries;
};

// Starts a call; the future is ready at on_done.
std::future<Got> ask(ChatClient& c, ChatOptions o, const std::string& text,
                     json tools = json::array()) {
    auto got = std::make_shared<Got>();
    auto p = std::make_shared<std::promise<Got>>();
    auto f = p->get_future();
    c.start(
        std::move(o), json::array({{{"role", "user"}, {"content", text}}}), std::move(tools),
        [got](std::string_view d) { got->streamed.append(d); },
        [got, p](const ChatResult& r) {
            got->r = r;
            p->set_value(*got);
        },
        [got](int a, double d, const std::string& why) { got->retries.emplace_back(a, d, why); });
    return f;
}

Got wait(std::future<Got> f) {
    EXPECT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    return f.get();
}

ChatOptions opts(const FakeOpenAI& s) {
    ChatOptions o;
    o.base_url = s.base_url();
    o.model = "fake-model";
    o.first_byte_timeout = 5;
    o.idle_timeout = 5;
    o.total_timeout = 30;
    o.max_retries = 2;
    o.backoff_initial = 0.01;
    o.backoff_max = 0.05;
    return o;
}

json tool(const std::string& name) {
    return {
        {"type", "function"},
        {"function",
         {{"name", name}, {"parameters", {{"type", "object"}, {"properties", json::object()}}}}}};
}

}  // namespace

TEST(ChatClientFakeOpenAI, EchoStreamsWithUsage) {
    FakeOpenAI s;
    NEED_FAKE_OPENAI(s);
    EventLoop loop;
    ChatClient client(loop);
    Got g = wait(ask(client, opts(s), "hello there, streaming world"));
    ASSERT_TRUE(g.r.ok) << g.r.error;
    EXPECT_EQ(g.r.content, "echo: hello there, streaming world");
    EXPECT_EQ(g.streamed, g.r.content);
    EXPECT_EQ(g.r.finish_reason, "stop");
    EXPECT_GT(g.r.prompt_tokens, 0);
    EXPECT_GT(g.r.completion_tokens, 0);
    auto reqs = s.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0]["body"]["stream"], true);
}

TEST(ChatClientFakeOpenAI, ParallelToolCalls) {
    FakeOpenAI s;
    NEED_FAKE_OPENAI(s);
    EventLoop loop;
    ChatClient client(loop);
    Got g =
        wait(ask(client, opts(s),
                 R"(do [tool:get_weather {"city":"Paris, FR"}] and [tool:get_time {"tz":"CET"}])",
                 json::array({tool("get_weather"), tool("get_time")})));
    ASSERT_TRUE(g.r.ok) << g.r.error;
    EXPECT_EQ(g.r.finish_reason, "tool_calls");
    ASSERT_EQ(g.r.tool_calls.size(), 2u);
    EXPECT_EQ(g.r.tool_calls[0].name, "get_weather");
    EXPECT_EQ(json::parse(g.r.tool_calls[0].arguments), json({{"city", "Paris, FR"}}));
    EXPECT_EQ(g.r.tool_calls[1].name, "get_time");
    EXPECT_EQ(json::parse(g.r.tool_calls[1].arguments), json({{"tz", "CET"}}));
    EXPECT_FALSE(g.r.tool_calls[0].id.empty());
    EXPECT_NE(g.r.tool_calls[0].id, g.r.tool_calls[1].id);
}

TEST(ChatClientFakeOpenAI, ScriptedFailuresAndRetries) {
    FakeOpenAI s;
    NEED_FAKE_OPENAI(s);
    EventLoop loop;
    ChatClient client(loop);
    // 429 with Retry-After: 1, then 500, then the echo model.
    s.script(json::array({{{"status", 429}, {"retry_after", 1}}, {{"status", 500}}}));
    double t0 = monotonic_seconds();
    Got g = wait(ask(client, opts(s), "after trouble"));
    ASSERT_TRUE(g.r.ok) << g.r.error;
    EXPECT_EQ(g.r.content, "echo: after trouble");
    EXPECT_EQ(g.r.attempts, 3);
    EXPECT_GE(monotonic_seconds() - t0, 1.0);
    ASSERT_EQ(g.retries.size(), 2u);
    EXPECT_DOUBLE_EQ(std::get<1>(g.retries[0]), 1.0);

    s.script(json::array({{{"status", 400}, {"message", "bad thing"}}}));
    g = wait(ask(client, opts(s), "x"));
    EXPECT_FALSE(g.r.ok);
    EXPECT_EQ(g.r.attempts, 1);
    EXPECT_EQ(g.r.http_status, 400);
    EXPECT_NE(g.r.error.find("bad thing"), std::string::npos) << g.r.error;

    s.script(json::array({{{"status", 503}}, {{"status", 503}}, {{"status", 503}}}));
    g = wait(ask(client, opts(s), "x"));
    EXPECT_FALSE(g.r.ok);
    EXPECT_EQ(g.r.error.rfind("model request failed after 3 attempts: HTTP 503", 0), 0u)
        << g.r.error;
}

TEST(ChatClientFakeOpenAI, MalformedDropsAndStalls) {
    FakeOpenAI s;
    NEED_FAKE_OPENAI(s);
    EventLoop loop;
    ChatClient client(loop);
    s.script(json::array({{{"malformed", true}}}));
    Got g = wait(ask(client, opts(s), "with a bad event"));
    ASSERT_TRUE(g.r.ok) << g.r.error;
    EXPECT_EQ(g.r.skipped_events, 1);

    // Dropped after the role event only: nothing delivered, so retried.
    s.script(json::array({{{"drop_after_chunks", 1}}}));
    g = wait(ask(client, opts(s), "dropped early"));
    ASSERT_TRUE(g.r.ok) << g.r.error;
    EXPECT_EQ(g.r.attempts, 2);

    // Dropped after some content: not retried.
    s.script(json::array({{{"drop_after_chunks", 3}, {"reply", "one two three four five"}}}));
    g = wait(ask(client, opts(s), "dropped late"));
    EXPECT_FALSE(g.r.ok);
    EXPECT_EQ(g.r.attempts, 1);
    EXPECT_NE(g.r.error.find("stream broke after"), std::string::npos) << g.r.error;

    // A stall before the first byte: first-byte timeout, then success.
    s.script(json::array({{{"stall_ms", 2000}}}));
    ChatOptions o = opts(s);
    o.first_byte_timeout = 0.3;
    g = wait(ask(client, o, "stalled"));
    ASSERT_TRUE(g.r.ok) << g.r.error;
    EXPECT_EQ(g.r.attempts, 2);
    EXPECT_NE(std::get<2>(g.retries.at(0)).find("first-byte timeout"), std::string::npos);

    // A stall after content: idle timeout, no retry.
    s.script(json::array(
        {{{"stall_after_chunks", 3}, {"stall_ms", 2000}, {"reply", "one two three four"}}}));
    o.idle_timeout = 0.3;
    g = wait(ask(client, o, "stalled late"));
    EXPECT_FALSE(g.r.ok);
    EXPECT_NE(g.r.error.find("idle timeout"), std::string::npos) << g.r.error;
}

TEST(ChatClientFakeOpenAI, WrongKeyErrorNeverShowsTheKey) {
    FakeOpenAI s({"--require-key", "sk-right-key-0000"});
    NEED_FAKE_OPENAI(s);
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions o = opts(s);
    o.api_key = "sk-wrong-key-1111111111";
    Got g = wait(ask(client, o, "hi"));
    EXPECT_FALSE(g.r.ok);
    EXPECT_EQ(g.r.http_status, 401);
    EXPECT_EQ(g.r.attempts, 1);
    EXPECT_EQ(g.r.error.find(o.api_key), std::string::npos) << g.r.error;
    o.api_key = "sk-right-key-0000";
    g = wait(ask(client, o, "hi"));
    EXPECT_TRUE(g.r.ok) << g.r.error;
}

TEST(ChatClientFakeOpenAI, SixtyFourConcurrentConversations) {
    FakeOpenAI s({"--latency-ms", "2"});
    NEED_FAKE_OPENAI(s);
    EventLoop loop;
    ChatClient client(loop);
    std::vector<std::future<Got>> fs;
    for (int i = 0; i < 64; ++i)
        fs.push_back(ask(client, opts(s), "conversation number " + std::to_string(i)));
    for (int i = 0; i < 64; ++i) {
        Got g = wait(std::move(fs[i]));
        ASSERT_TRUE(g.r.ok) << i << ": " << g.r.error;
        EXPECT_EQ(g.r.content, "echo: conversation number " + std::to_string(i));
        EXPECT_EQ(g.streamed, g.r.content);
    }
}
