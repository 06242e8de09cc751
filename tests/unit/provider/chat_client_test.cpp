#include "agents/provider/chat_client.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <future>
#include <random>
#include <sstream>

#include "../test_util.h"
#include "fake_server.h"

using namespace swarmfs;
using namespace swarmfs::test;
using json = nlohmann::json;

namespace {

// An atomic counter that can be copied (Outcome is copied out of Pending).
struct Count {
    std::atomic<int> v{0};
    Count() = default;
    Count(const Count& o) : v(o.v.load()) {}
    Count& operator=(const Count& o) {
        v = o.v.load();
        return *this;
    }
    int operator++() { return ++v; }
    operator int() const { return v.load(); }
};

struct Outcome {
    ChatResult r;
    std::vector<std::string> deltas;
    std::vector<double> delta_times;
    std::vector<std::tuple<int, double, std::string>> retries;
    double started = 0, done_time = 0;
    Count done_calls, deltas_seen;  // polled from the test thread
    std::string text() const {
        std::string s;
        for (auto& d : deltas) s += d;
        return s;
    }
};

ChatOptions fast(const std::string& base_url) {
    ChatOptions o;
    o.base_url = base_url;
    o.model = "test-model";
    o.connect_timeout = 2;
    o.first_byte_timeout = 5;
    o.idle_timeout = 5;
    o.total_timeout = 20;
    o.max_retries = 2;
    o.backoff_initial = 0.01;
    o.backoff_max = 0.05;
    return o;
}

json user(const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); }

// Starts a call and gives access to its outcome once done.
struct Pending {
    std::shared_ptr<Outcome> out = std::make_shared<Outcome>();
    std::shared_ptr<std::promise<void>> done = std::make_shared<std::promise<void>>();
    std::shared_future<void> fut = done->get_future().share();
    ChatClient::CallId id = 0;

    Pending(ChatClient& c, ChatOptions o, json messages = user("hi"), json tools = json::array()) {
        auto out_ = out;
        auto done_ = done;
        out->started = monotonic_seconds();
        id = c.start(
            std::move(o), std::move(messages), std::move(tools),
            [out_](std::string_view d) {
                out_->deltas.emplace_back(d);
                out_->delta_times.push_back(monotonic_seconds());
                ++out_->deltas_seen;
            },
            [out_, done_](const ChatResult& r) {
                out_->r = r;
                out_->done_time = monotonic_seconds();
                if (++out_->done_calls == 1) done_->set_value();
            },
            [out_](int attempt, double delay, const std::string& why) {
                out_->retries.emplace_back(attempt, delay, why);
            });
    }
    bool wait(double seconds = 20) {
        return fut.wait_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000))) ==
               std::future_status::ready;
    }
    Outcome& get() {
        EXPECT_TRUE(wait()) << "on_done never came";
        return *out;
    }
};

Outcome run(ChatClient& c, ChatOptions o, json messages = user("hi"), json tools = json::array()) {
    Pending p(c, std::move(o), std::move(messages), std::move(tools));
    Outcome out = p.get();
    // Exactly once: give a stray second on_done a moment to show up.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(p.out->done_calls, 1);
    return out;
}

// One call with fast() options against srv, on a loop and client of its own.
Outcome ask(FakeServer& srv, json messages = user("hi"), json tools = json::array()) {
    EventLoop loop;
    ChatClient client(loop);
    return run(client, fast(srv.base_url()), std::move(messages), std::move(tools));
}

// One call (with fast() options) against a server that answers every
// request with handler.
struct Served {
    Outcome o;
    int requests = 0;
};
Served serve(FakeServer::Handler handler, int max_retries = 2) {
    FakeServer srv(std::move(handler));
    Served s;
    {
        EventLoop loop;
        ChatClient client(loop);
        ChatOptions opts = fast(srv.base_url());
        opts.max_retries = max_retries;
        s.o = run(client, opts);
    }
    s.requests = srv.count();
    return s;
}
// The same with a fixed response.
Served serve(const std::string& response, int max_retries = 2) {
    return serve([response](FakeConn& c, const FakeRequest&) { c.send(response); }, max_retries);
}

}  // namespace

TEST(ChatClient, StreamsDeltasAsTheyArrive) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(sse_head() + sse(role_chunk()) + sse(delta("Hello")));
        c.sleep_ms(300);
        c.send(sse(delta(", world")) + sse(finish("stop")) + sse(usage(11, 2)) + done_event());
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "Hello, world");
    EXPECT_EQ(o.text(), "Hello, world");
    ASSERT_EQ(o.deltas.size(), 2u);
    EXPECT_EQ(o.deltas[0], "Hello");
    // The first delta reached us while the server was still sleeping.
    EXPECT_GE(o.done_time - o.delta_times[0], 0.25);
    EXPECT_EQ(o.r.finish_reason, "stop");
    EXPECT_EQ(o.r.prompt_tokens, 11);
    EXPECT_EQ(o.r.completion_tokens, 2);
    EXPECT_EQ(o.r.attempts, 1);
    EXPECT_EQ(o.r.http_status, 200);
    EXPECT_EQ(o.r.skipped_events, 0);
}

TEST(ChatClient, SendsAStreamingRequestWithToolsExtraAndKey) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) { c.send(sse_answer({"ok"})); });
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions opts = fast(srv.base_url() + "/");  // a trailing slash is tolerated
    opts.api_key = "sk-test-123";
    opts.extra = {{"temperature", 0.25}, {"max_tokens", 50}};
    json tools =
        json::array({{{"type", "function"},
                      {"function", {{"name", "lookup"}, {"parameters", {{"type", "object"}}}}}}});
    Outcome o = run(client, opts, user("question"), tools);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    auto reqs = srv.requests();
    ASSERT_EQ(reqs.size(), 1u);
    const FakeRequest& r = reqs[0];
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/v1/chat/completions");
    EXPECT_EQ(r.header("authorization"), "Bearer sk-test-123");
    EXPECT_NE(r.header("content-type").find("application/json"), std::string::npos);
    EXPECT_EQ(r.header("expect"), "");
    json body = r.json();
    EXPECT_EQ(body["model"], "test-model");
    EXPECT_EQ(body["stream"], true);
    EXPECT_EQ(body["stream_options"]["include_usage"], true);
    EXPECT_EQ(body["messages"], user("question"));
    EXPECT_EQ(body["tools"], tools);
    EXPECT_EQ(body["temperature"], 0.25);
    EXPECT_EQ(body["max_tokens"], 50);
}

TEST(ChatClient, NoKeyMeansNoAuthorizationAndNoToolsMeansNoToolsField) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) { c.send(sse_answer({"ok"})); });
    Outcome o = ask(srv, user("q"), json());
    ASSERT_TRUE(o.r.ok) << o.r.error;
    auto r = srv.requests().at(0);
    EXPECT_EQ(r.headers.count("authorization"), 0u);
    EXPECT_FALSE(r.json().contains("tools"));
}

TEST(ChatClient, ChunkedCrLfSseSplitAcrossWrites) {
    // Chunked transfer encoding, CRLF line ends, and JSON split in the
    // middle of a line and of a UTF-8 character across TCP writes.
    std::string body = "data: " + delta("caf\xC3\xA9 ").dump() + "\r\n\r\n" + ": ping\r\n\r\n" +
                       "data: " + delta("ol\xC3\xA9").dump() + "\r\n\r\n" +
                       "data: " + finish("stop").dump() + "\r\n\r\ndata: [DONE]\r\n\r\n";
    FakeServer srv([body](FakeConn& c, const FakeRequest&) {
        c.send(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
        size_t pos = 0;
        size_t sizes[] = {3, 10, 1, 17, 2, 40, 5};
        int i = 0;
        while (pos < body.size()) {
            size_t n = std::min(sizes[i++ % 7], body.size() - pos);
            char hex[16];
            snprintf(hex, sizeof hex, "%zx\r\n", n);
            c.send(std::string(hex) + body.substr(pos, n) + "\r\n");
            c.sleep_ms(1);
            pos += n;
        }
        c.send("0\r\n\r\n");
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "caf\xC3\xA9 ol\xC3\xA9");
}

TEST(ChatClient, ToolCallDeltasAcrossChunksAndTwoParallelCalls) {
    auto tc = [](json calls) {
        return json{
            {"id", "c"},
            {"choices",
             {{{"index", 0}, {"delta", {{"tool_calls", calls}}}, {"finish_reason", nullptr}}}}};
    };
    FakeServer srv([&](FakeConn& c, const FakeRequest&) {
        std::string s = sse_head() + sse(role_chunk());
        s += sse(tc(json::array({{{"index", 0},
                                  {"id", "call_a"},
                                  {"type", "function"},
                                  {"function", {{"name", "get_weather"}, {"arguments", ""}}}}})));
        s += sse(tc(json::array({{{"index", 0}, {"function", {{"arguments", "{\"city\":"}}}}})));
        s += sse(
            tc(json::array({{{"index", 1},
                             {"id", "call_b"},
                             {"type", "function"},
                             {"function", {{"name", "get_time"}, {"arguments", "{\"tz\""}}}}})));
        s += sse(tc(json::array({{{"index", 0}, {"function", {{"arguments", "\"Paris\"}"}}}},
                                 {{"index", 1}, {"function", {{"arguments", ":\"CET\"}"}}}}})));
        s += sse(finish("tool_calls")) + sse(usage(20, 9)) + done_event();
        // Split the whole thing into 7-byte writes.
        c.send(s.substr(0, s.find("\r\n\r\n") + 4));
        for (size_t pos = s.find("\r\n\r\n") + 4; pos < s.size(); pos += 7) {
            c.send(s.substr(pos, 7));
            if (pos % 5 == 0) c.sleep_ms(1);
        }
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "");
    EXPECT_TRUE(o.deltas.empty());
    EXPECT_EQ(o.r.finish_reason, "tool_calls");
    ASSERT_EQ(o.r.tool_calls.size(), 2u);
    EXPECT_EQ(o.r.tool_calls[0].id, "call_a");
    EXPECT_EQ(o.r.tool_calls[0].name, "get_weather");
    EXPECT_EQ(o.r.tool_calls[0].arguments, "{\"city\":\"Paris\"}");
    EXPECT_EQ(o.r.tool_calls[1].id, "call_b");
    EXPECT_EQ(o.r.tool_calls[1].name, "get_time");
    EXPECT_EQ(o.r.tool_calls[1].arguments, "{\"tz\":\"CET\"}");
    EXPECT_EQ(o.r.prompt_tokens, 20);
    EXPECT_EQ(o.r.completion_tokens, 9);
}

TEST(ChatClient, AcceptsANonStreamingJsonAnswer) {
    json answer = {{"id", "x"},
                   {"object", "chat.completion"},
                   {"choices",
                    {{{"index", 0},
                      {"message",
                       {{"role", "assistant"},
                        {"content", "plain answer"},
                        {"tool_calls",
                         {{{"id", "t1"},
                           {"type", "function"},
                           {"function", {{"name", "f"}, {"arguments", "{}"}}}}}}}},
                      {"finish_reason", "stop"}}}},
                   {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 2}}}};
    FakeServer srv(
        [&](FakeConn& c, const FakeRequest&) { c.send(http_response(200, "OK", answer.dump())); });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "plain answer");
    EXPECT_EQ(o.text(), "plain answer");
    EXPECT_EQ(o.r.finish_reason, "stop");
    ASSERT_EQ(o.r.tool_calls.size(), 1u);
    EXPECT_EQ(o.r.tool_calls[0].name, "f");
    EXPECT_EQ(o.r.prompt_tokens, 5);
}

TEST(ChatClient, MalformedEventsAreSkippedAndCounted) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(sse_head() + "data: {not json\n\n" + sse(delta("a")) +
               "data: \"just a string\"\n\n" + sse(delta("b")) + sse(finish("stop")) +
               done_event());
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "ab");
    EXPECT_EQ(o.r.skipped_events, 2);
}

TEST(ChatClient, FinishReasonWithoutDoneIsEnough) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(sse_head() + sse(delta("x")) + sse(finish("length")));
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.finish_reason, "length");
}

TEST(ChatClient, StreamEndingEarlyAfterTextFailsWithoutRetry) {
    FakeServer srv(
        [](FakeConn& c, const FakeRequest&) { c.send(sse_head() + sse(delta("partial"))); });
    Outcome o = ask(srv);
    EXPECT_FALSE(o.r.ok);
    EXPECT_NE(o.r.error.find("stream broke after"), std::string::npos) << o.r.error;
    EXPECT_NE(o.r.error.find("stream ended early"), std::string::npos) << o.r.error;
    EXPECT_EQ(o.r.attempts, 1);
    EXPECT_EQ(srv.count(), 1);
    EXPECT_EQ(o.text(), "partial");
}

TEST(ChatClient, StreamEndingEarlyBeforeTextIsRetried) {
    FakeServer srv([](FakeConn& c, const FakeRequest& r) {
        if (r.number == 0)
            c.send(sse_head() + sse(role_chunk()));  // then close: nothing delivered
        else
            c.send(sse_answer({"second"}));
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "second");
    EXPECT_EQ(o.r.attempts, 2);
    ASSERT_EQ(o.retries.size(), 1u);
    EXPECT_EQ(std::get<0>(o.retries[0]), 2);
    EXPECT_NE(std::get<2>(o.retries[0]).find("stream ended early"), std::string::npos);
}

TEST(ChatClient, ServerErrorThenSuccess) {
    FakeServer srv([](FakeConn& c, const FakeRequest& r) {
        if (r.number == 0)
            c.send(http_response(500, "Internal Server Error", R"({"error":{"message":"boom"}})"));
        else
            c.send(sse_answer({"fine"}));
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "fine");
    EXPECT_EQ(o.r.attempts, 2);
    ASSERT_EQ(o.retries.size(), 1u);
    EXPECT_EQ(std::get<2>(o.retries[0]), "HTTP 500 Internal Server Error: boom");
    EXPECT_LE(std::get<1>(o.retries[0]), 0.01);  // full jitter within backoff_initial
}

TEST(ChatClient, RetryAfterSecondsIsHonoured) {
    FakeServer srv([](FakeConn& c, const FakeRequest& r) {
        if (r.number == 0)
            c.send(http_response(429, "Too Many Requests", R"({"error":{"message":"slow down"}})",
                                 "Retry-After: 1\r\n"));
        else
            c.send(sse_answer({"ok"}));
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.attempts, 2);
    auto reqs = srv.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_GE(reqs[1].when - reqs[0].when, 1.0);
    ASSERT_EQ(o.retries.size(), 1u);
    EXPECT_DOUBLE_EQ(std::get<1>(o.retries[0]), 1.0);  // not the tiny backoff of the options
    EXPECT_NE(std::get<2>(o.retries[0]).find("429"), std::string::npos);
}

TEST(ChatClient, RetryAfterHttpDateAndMilliseconds) {
    FakeServer srv([](FakeConn& c, const FakeRequest& r) {
        if (r.number == 0) {
            char date[64];
            time_t when = time(nullptr) + 2;
            tm g;
            gmtime_r(&when, &g);
            strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &g);
            c.send(http_response(503, "Service Unavailable", "busy",
                                 "Retry-After: " + std::string(date) + "\r\n", "text/plain"));
        } else if (r.number == 1) {
            c.send(http_response(429, "Too Many Requests", "{}",
                                 "retry-after-ms: 300\r\nRetry-After: 9\r\n"));
        } else {
            c.send(sse_answer({"ok"}));
        }
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    ASSERT_EQ(o.retries.size(), 2u);
    EXPECT_GE(std::get<1>(o.retries[0]), 0.9);  // an HTTP-date 2 s ahead, whole seconds
    EXPECT_LE(std::get<1>(o.retries[0]), 2.1);
    EXPECT_EQ(std::get<2>(o.retries[0]), "HTTP 503 Service Unavailable: busy");
    EXPECT_DOUBLE_EQ(std::get<1>(o.retries[1]), 0.3);
}

TEST(ChatClient, ClientErrorFailsAtOnce) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(http_response(
            400, "Bad Request",
            R"({"error":{"message":"model 'nope' not found","type":"invalid_request_error"}})"));
    });
    Outcome o = ask(srv);
    EXPECT_FALSE(o.r.ok);
    EXPECT_EQ(o.r.error, "HTTP 400 Bad Request: model 'nope' not found");
    EXPECT_EQ(o.r.http_status, 400);
    EXPECT_EQ(o.r.attempts, 1);
    EXPECT_TRUE(o.retries.empty());
    EXPECT_EQ(srv.count(), 1);
}

TEST(ChatClient, RetriesExhaustedGiveAClearReason) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(http_response(503, "Service Unavailable", "", "", "text/plain"));
    });
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions opts = fast(srv.base_url());
    opts.max_retries = 4;
    Outcome o = run(client, opts);
    EXPECT_FALSE(o.r.ok);
    EXPECT_EQ(o.r.error, "model request failed after 5 attempts: HTTP 503 Service Unavailable");
    EXPECT_EQ(o.r.attempts, 5);
    EXPECT_EQ(o.r.http_status, 503);
    EXPECT_EQ(srv.count(), 5);
    ASSERT_EQ(o.retries.size(), 4u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(std::get<0>(o.retries[i]), i + 2);
        EXPECT_LE(std::get<1>(o.retries[i]), std::min(0.05, 0.01 * (1 << i)) + 1e-9);
    }
}

TEST(ChatClient, ConnectionRefusedIsRetriedThenReported) {
    int port;
    {
        FakeServer closed(nullptr);
        port = closed.port();
    }  // a port nobody listens on now
    EventLoop loop;
    ChatClient client(loop);
    Outcome o = run(client, fast("http://127.0.0.1:" + std::to_string(port) + "/v1"));
    EXPECT_FALSE(o.r.ok);
    EXPECT_EQ(o.r.attempts, 3);
    EXPECT_NE(o.r.error.find("model request failed after 3 attempts"), std::string::npos)
        << o.r.error;
    EXPECT_NE(o.r.error.find("onnect"), std::string::npos) << o.r.error;
    EXPECT_EQ(o.r.http_status, 0);
}

TEST(ChatClient, DroppedConnectionBeforeAnyByteIsRetried) {
    FakeServer srv([](FakeConn& c, const FakeRequest& r) {
        if (r.number == 0)
            c.reset();  // RST, no response at all
        else
            c.send(sse_answer({"after drop"}));
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "after drop");
    EXPECT_EQ(o.r.attempts, 2);
}

TEST(ChatClient, DroppedConnectionMidStreamIsNotRetried) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: "
            "chunked\r\n\r\n");
        std::string ev = sse(delta("half"));
        char hex[16];
        snprintf(hex, sizeof hex, "%zx\r\n", ev.size());
        c.send(hex + ev + "\r\n");
        c.sleep_ms(50);
        c.reset();
    });
    Outcome o = ask(srv);
    EXPECT_FALSE(o.r.ok);
    EXPECT_EQ(o.r.attempts, 1);
    EXPECT_NE(o.r.error.find("stream broke after"), std::string::npos) << o.r.error;
    EXPECT_EQ(o.text(), "half");
    EXPECT_EQ(srv.count(), 1);
}

TEST(ChatClient, ErrorEventInsideTheStream) {
    FakeServer srv([](FakeConn& c, const FakeRequest& r) {
        if (r.number == 0)
            c.send(sse_head() + sse({{"error", {{"message", "overloaded"}}}}));
        else
            c.send(sse_answer({"ok"}));
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    ASSERT_EQ(o.retries.size(), 1u);
    EXPECT_EQ(std::get<2>(o.retries[0]), "server error in stream: overloaded");
}

TEST(ChatClient, FirstByteTimeout) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) { c.sleep_ms(3000); });
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions opts = fast(srv.base_url());
    opts.first_byte_timeout = 0.3;
    opts.max_retries = 0;
    Outcome o = run(client, opts);
    EXPECT_FALSE(o.r.ok);
    EXPECT_NE(o.r.error.find("first-byte timeout"), std::string::npos) << o.r.error;
    double took = o.done_time - o.started;
    EXPECT_GE(took, 0.29);
    EXPECT_LT(took, 1.5);
}

TEST(ChatClient, IdleTimeoutAfterText) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(sse_head() + sse(delta("tick")));
        c.sleep_ms(3000);
    });
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions opts = fast(srv.base_url());
    opts.idle_timeout = 0.3;
    Outcome o = run(client, opts);
    EXPECT_FALSE(o.r.ok);
    EXPECT_NE(o.r.error.find("idle timeout"), std::string::npos) << o.r.error;
    EXPECT_NE(o.r.error.find("stream broke after"), std::string::npos) << o.r.error;
    EXPECT_EQ(o.r.attempts, 1);
    EXPECT_LT(o.done_time - o.started, 1.5);
}

TEST(ChatClient, IdleTimeoutIsResetByTraffic) {
    // Bytes every 100 ms for 0.6 s with a 0.3 s idle timeout: no timeout.
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(sse_head());
        for (int i = 0; i < 6; ++i) {
            c.send(sse(delta(std::to_string(i))));
            c.sleep_ms(100);
        }
        c.send(sse(finish("stop")) + done_event());
    });
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions opts = fast(srv.base_url());
    opts.idle_timeout = 0.3;
    opts.first_byte_timeout = 0.3;
    Outcome o = run(client, opts);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "012345");
}

TEST(ChatClient, IdleTimeoutBeforeTextIsRetried) {
    FakeServer srv([](FakeConn& c, const FakeRequest& r) {
        if (r.number == 0) {
            c.send(sse_head() + ": waiting\n\n");
            c.sleep_ms(3000);
        } else {
            c.send(sse_answer({"ok"}));
        }
    });
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions opts = fast(srv.base_url());
    opts.idle_timeout = 0.3;
    Outcome o = run(client, opts);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.attempts, 2);
    EXPECT_NE(std::get<2>(o.retries.at(0)).find("idle timeout"), std::string::npos);
}

TEST(ChatClient, TotalTimeout) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(sse_head());
        for (int i = 0; i < 40; ++i) {
            c.send(": still here\n\n");
            c.sleep_ms(50);
        }
    });
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions opts = fast(srv.base_url());
    opts.total_timeout = 0.4;
    opts.idle_timeout = 0.3;
    opts.max_retries = 0;
    Outcome o = run(client, opts);
    EXPECT_FALSE(o.r.ok);
    EXPECT_NE(o.r.error.find("total timeout"), std::string::npos) << o.r.error;
    EXPECT_LT(o.done_time - o.started, 1.5);
}

TEST(ChatClient, ConnectTimeout) {
    // A listener that never accepts, with its backlog full: SYNs go unanswered.
    FakeServer srv(nullptr, 0);
    std::vector<int> fillers;
    for (int i = 0; i < 8; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(srv.port()));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fillers.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions opts = fast(srv.base_url());
    opts.connect_timeout = 0.3;
    opts.first_byte_timeout = 0;
    opts.max_retries = 0;
    Outcome o = run(client, opts);
    for (int fd : fillers) close(fd);
    EXPECT_FALSE(o.r.ok);
    if (o.r.error.find("timeout") == std::string::npos)
        GTEST_SKIP() << "this kernel completed the handshake anyway: " << o.r.error;
    EXPECT_NE(o.r.error.find("connect timeout"), std::string::npos) << o.r.error;
    EXPECT_LT(o.done_time - o.started, 1.5);
}

TEST(ChatClient, CancelAbortsTheTransferAtOnce) {
    std::atomic<bool> client_closed{false};
    FakeServer srv([&](FakeConn& c, const FakeRequest&) {
        c.send(sse_head() + sse(delta("first")));
        client_closed = c.wait_closed(5000);
    });
    EventLoop loop;
    ChatClient client(loop);
    Pending p(client, fast(srv.base_url()));
    ASSERT_TRUE(eventually([&] { return p.out->deltas_seen > 0; }));
    double t0 = monotonic_seconds();
    client.cancel(p.id);
    Outcome& o = p.get();
    EXPECT_LT(monotonic_seconds() - t0, 0.5);
    EXPECT_FALSE(o.r.ok);
    EXPECT_EQ(o.r.error, "cancelled");
    EXPECT_TRUE(eventually([&] { return client_closed.load(); }, 3));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(p.out->done_calls, 1);
    EXPECT_EQ(srv.count(), 1);
    client.cancel(p.id);  // late and unknown: ignored
}

TEST(ChatClient, CancelDuringBackoffStopsRetrying) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(http_response(503, "Service Unavailable", "", "Retry-After: 5\r\n"));
    });
    EventLoop loop;
    ChatClient client(loop);
    Pending p(client, fast(srv.base_url()));
    ASSERT_TRUE(eventually([&] { return srv.count() == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    client.cancel(p.id);
    Outcome& o = p.get();
    EXPECT_EQ(o.r.error, "cancelled");
    EXPECT_EQ(o.r.attempts, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(srv.count(), 1);
}

TEST(ChatClient, CancelRightAfterStart) {
    // The answer waits a little: a server that answers at once can finish
    // the call before the cancel reaches the loop (seen under ASan), and
    // then the call rightly ends with its answer.
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        c.send(sse_answer({"x"}));
    });
    EventLoop loop;
    ChatClient client(loop);
    Pending p(client, fast(srv.base_url()));
    client.cancel(p.id);
    Outcome& o = p.get();
    EXPECT_EQ(o.r.error, "cancelled");
    EXPECT_TRUE(o.deltas.empty());
}

TEST(ChatClient, DestructorCancelsEverythingInFlight) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(sse_head() + sse(delta("x")));
        c.wait_closed(5000);
    });
    EventLoop loop;
    std::vector<std::unique_ptr<Pending>> ps;
    {
        ChatClient client(loop);
        for (int i = 0; i < 4; ++i)
            ps.push_back(std::make_unique<Pending>(client, fast(srv.base_url())));
        ASSERT_TRUE(eventually([&] { return srv.count() == 4; }));
    }
    for (auto& p : ps) {
        ASSERT_TRUE(p->wait(1));
        EXPECT_EQ(p->out->r.error, "cancelled");
        EXPECT_EQ(p->out->done_calls, 1);
    }
}

TEST(ChatClient, DestroyedFromItsOwnCallback) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(sse_head() + sse(delta("x")));
        c.wait_closed(5000);
    });
    EventLoop loop;
    auto client = std::make_shared<ChatClient>(loop);
    std::promise<std::string> got;
    std::shared_ptr<ChatClient> holder = client;
    client->start(
        fast(srv.base_url()), user("hi"), json::array(),
        [&holder](std::string_view) { holder.reset(); },  // last reference: ~ChatClient on the loop
        [&got](const ChatResult& r) { got.set_value(r.error); });
    client.reset();
    auto f = got.get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_EQ(f.get(), "cancelled");
}

TEST(ChatClient, BadOptionsFailWithoutARequest) {
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions none = fast("");
    EXPECT_NE(run(client, none).r.error.find("base_url"), std::string::npos);
    Outcome o = run(client, fast("http://127.0.0.1:1/v1"), json("not an array"));
    EXPECT_EQ(o.r.error, "messages must be a JSON array");
    ChatOptions bad = fast("http://127.0.0.1:1/v1");
    bad.api_key = "sk-abc\r\nX-Injected: 1";
    o = run(client, bad);
    EXPECT_NE(o.r.error.find("control characters"), std::string::npos);
    EXPECT_EQ(o.r.error.find("sk-abc"), std::string::npos);
    o = run(client, fast("ftp://127.0.0.1:1/v1"));
    EXPECT_FALSE(o.r.ok);
    EXPECT_EQ(o.r.attempts, 1) << o.r.error;  // not retryable
}

TEST(ChatClient, InvalidUtf8InMessagesDoesNotThrow) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) { c.send(sse_answer({"ok"})); });
    Outcome o = ask(srv, user("bad \xFF\xFE bytes"));
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_FALSE(srv.requests().at(0).json().is_discarded());
}

namespace {
// The server echoes a per-request token, streamed in small pieces with
// random pauses so that many streams interleave on the client's loop.
void echo_handler(FakeConn& c, const FakeRequest& r) {
    json body = r.json();
    std::string token = body["messages"].back()["content"];
    std::mt19937 rng(std::hash<std::string>{}(token));
    c.send(sse_head() + sse(role_chunk()));
    std::string answer = "echo:" + token;
    for (size_t i = 0; i < answer.size(); i += 3) {
        c.send(sse(delta(answer.substr(i, 3))));
        c.sleep_ms(std::uniform_int_distribution<int>(0, 4)(rng));
    }
    c.send(sse(finish("stop")) +
           sse(usage(static_cast<int>(token.size()), static_cast<int>(answer.size()))) +
           done_event());
}

void concurrent(int n) {
    FakeServer srv(echo_handler);
    EventLoop loop;
    ChatClient client(loop);
    std::vector<std::unique_ptr<Pending>> ps;
    for (int i = 0; i < n; ++i) {
        std::string token =
            "token-" + std::to_string(i) + "-" + std::string(static_cast<size_t>(i % 7), 'z');
        ps.push_back(std::make_unique<Pending>(client, fast(srv.base_url()), user(token)));
    }
    for (int i = 0; i < n; ++i) {
        Outcome& o = ps[i]->get();
        std::string token =
            "token-" + std::to_string(i) + "-" + std::string(static_cast<size_t>(i % 7), 'z');
        ASSERT_TRUE(o.r.ok) << i << ": " << o.r.error;
        EXPECT_EQ(o.r.content, "echo:" + token) << i;
        EXPECT_EQ(o.text(), "echo:" + token) << i;
        EXPECT_EQ(o.r.prompt_tokens, static_cast<int64_t>(token.size()));
        EXPECT_EQ(o.r.attempts, 1);
        EXPECT_EQ(o.done_calls, 1);
    }
    EXPECT_EQ(srv.count(), n);
}
}  // namespace

TEST(ChatClient, ThirtyTwoConcurrentCallsGetOnlyTheirOwnAnswers) { concurrent(32); }
TEST(ChatClient, SixtyFourConcurrentStreamsOnOneLoop) { concurrent(64); }

TEST(ChatClient, StartAndCancelFromManyThreads) {
    FakeServer srv(echo_handler);
    EventLoop loop;
    ChatClient client(loop);
    std::vector<std::unique_ptr<Pending>> ps(32);
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            for (int i = t; i < 32; i += 4) {
                ps[i] = std::make_unique<Pending>(client, fast(srv.base_url()),
                                                  user("t" + std::to_string(i)));
                if (i % 8 == 0) client.cancel(ps[i]->id);
            }
        });
    for (auto& t : ts) t.join();
    for (int i = 0; i < 32; ++i) {
        Outcome& o = ps[i]->get();
        if (i % 8 == 0)
            EXPECT_EQ(o.r.error, "cancelled");
        else
            EXPECT_EQ(o.r.content, "echo:t" + std::to_string(i)) << o.r.error;
    }
}

TEST(ChatClient, ApiKeyNeverAppearsInErrorsOrLogs) {
    const std::string key = "sk-proj-SECRET-0123456789abcdef";
    // Servers that echo the Authorization header back in every kind of error.
    FakeServer srv([](FakeConn& c, const FakeRequest& r) {
        std::string auth = r.header("authorization");
        json err = {{"error", {{"message", "Incorrect API key provided: " + auth}}}};
        std::string mode = r.json()["messages"].back()["content"];
        if (mode == "401")
            c.send(http_response(401, "Unauthorized", err.dump()));
        else if (mode == "500")
            c.send(http_response(500, "Internal " + auth, err.dump()));
        else if (mode == "stream")
            c.send(sse_head() + sse(err));
        else if (mode == "text")
            c.send(http_response(403, "Forbidden", "denied for " + auth, "", "text/plain"));
        else if (mode == "broken")
            c.send(sse_head() + sse(delta(auth)) + "data: " + auth + "\n\n");
    });
    std::ostringstream logs;
    auto previous = spdlog::default_logger();
    auto capture = std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(logs));
    capture->set_level(spdlog::level::trace);
    spdlog::set_default_logger(capture);
    std::vector<std::string> texts;
    {
        EventLoop loop;
        ChatClient client(loop);
        for (std::string mode : {"401", "500", "stream", "text", "broken"}) {
            ChatOptions opts = fast(srv.base_url());
            opts.api_key = key;
            Outcome o = run(client, opts, user(mode));
            EXPECT_FALSE(o.r.ok) << mode;
            texts.push_back(o.r.error);
            for (auto& r : o.retries) texts.push_back(std::get<2>(r));
        }
        ChatOptions refused = fast("http://127.0.0.1:1/v1");
        refused.api_key = key;
        texts.push_back(run(client, refused).r.error);
        ChatOptions url_with_key =
            fast(srv.base_url() + "/" + key);  // even a key pasted into the URL
        url_with_key.api_key = key;
        texts.push_back(run(client, url_with_key, user("401")).r.error);
    }
    spdlog::set_default_logger(previous);
    for (auto& t : texts) {
        EXPECT_EQ(t.find(key), std::string::npos) << t;
        EXPECT_FALSE(t.empty());
    }
    EXPECT_NE(texts[0].find("[redacted]"), std::string::npos) << texts[0];
    EXPECT_EQ(logs.str().find(key), std::string::npos) << logs.str();
    EXPECT_NE(logs.str().find("failed"), std::string::npos);  // something was logged
}

TEST(ChatClient, AStreamLabelledAsJsonIsStillParsed) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        std::string body =
            sse(delta("mis")) + sse(delta("labelled")) + sse(finish("stop")) + done_event();
        c.send(http_response(200, "OK", body));  // Content-Type: application/json
    });
    Outcome o = ask(srv);
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "mislabelled");
}

TEST(ChatClient, AWebPageIsNotAModelAndIsNotRetried) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(
            http_response(200, "OK", "<html><body>Please log in</body></html>", "", "text/html"));
    });
    Outcome o = ask(srv);
    EXPECT_FALSE(o.r.ok);
    EXPECT_EQ(o.r.attempts, 1);
    EXPECT_NE(o.r.error.find("text/html"), std::string::npos) << o.r.error;
    EXPECT_NE(o.r.error.find("Please log in"), std::string::npos) << o.r.error;
}

TEST(ChatClient, NamedErrorEventIsAFailure) {
    FakeServer srv([](FakeConn& c, const FakeRequest&) {
        c.send(sse_head() + "event: error\ndata: {\"message\":\"context too long\"}\n\n");
    });
    EventLoop loop;
    ChatClient client(loop);
    ChatOptions opts = fast(srv.base_url());
    opts.max_retries = 0;
    Outcome o = run(client, opts);
    EXPECT_FALSE(o.r.ok);
    EXPECT_EQ(o.r.error, "server error in stream: context too long");
}

TEST(ChatClient, AStreamLabelledAsJsonStillStreamsAsItArrives) {
    Served s = serve([](FakeConn& c, const FakeRequest&) {
        // No Content-Length: the body runs until the connection closes.
        c.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
               sse(delta("early")));
        c.sleep_ms(300);
        c.send(sse(delta(" late")) + sse(finish("stop")) + done_event());
    });
    const Outcome& o = s.o;
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "early late");
    ASSERT_EQ(o.deltas.size(), 2u);
    EXPECT_GE(o.done_time - o.delta_times[0], 0.25);  // not held back until the end
}

TEST(ChatClient, AJsonAnswerInPiecesIsNotMistakenForAStream) {
    Served s = serve([](FakeConn& c, const FakeRequest&) {
        json answer = {{"choices",
                        {{{"index", 0},
                          {"message", {{"role", "assistant"}, {"content", "whole"}}},
                          {"finish_reason", "stop"}}}}};
        std::string body = "\n  " + answer.dump();
        c.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
               body.substr(0, 4));
        c.sleep_ms(50);
        c.send(body.substr(4));
    });
    const Outcome& o = s.o;
    ASSERT_TRUE(o.r.ok) << o.r.error;
    EXPECT_EQ(o.r.content, "whole");
}

TEST(ChatClient, AWebPageShowsItsTextNotItsMarkup) {
    Served s = serve(
        http_response(200, "OK",
                      "<!DOCTYPE html>\n<html><head><title>Sign in &amp; continue</title>"
                      "<style>body { color: red }</style><script>var a = '<b>x</b>';</script>"
                      "</head><body><!-- form --><h1>Corp&nbsp;SSO</h1>\n\n<p>Please log in</p>"
                      "</body></html>",
                      "", "text/html; charset=utf-8"));
    EXPECT_FALSE(s.o.r.ok);
    EXPECT_EQ(s.requests, 1);
    EXPECT_EQ(s.o.r.error,
              "the server answered with a web page, not a model API (Content-Type: text/html; "
              "charset=utf-8; check base_url): Sign in & continue Corp SSO Please log in");
}

// A script behind a proxy that forgot its Content-Type (PHP's default is
// text/html) still streams: the label is checked against the bytes.
TEST(ChatClient, AStreamOrAnswerLabelledAsHtmlIsNotAWebPage) {
    Served stream =
        serve(http_response(200, "OK", sse(delta("still")) + sse(delta(" fine")) + done_event(), "",
                            "text/html; charset=UTF-8"));
    ASSERT_TRUE(stream.o.r.ok) << stream.o.r.error;
    EXPECT_EQ(stream.o.r.content, "still fine");
    json answer = {{"choices", {{{"index", 0}, {"message", {{"content", "whole"}}}}}}};
    Served whole = serve(http_response(200, "OK", answer.dump(), "", "text/html"));
    ASSERT_TRUE(whole.o.r.ok) << whole.o.r.error;
    EXPECT_EQ(whole.o.r.content, "whole");
}

TEST(ChatClient, ALongWebPageFailsWithoutWaitingForItsEnd) {
    Served s = serve([](FakeConn& c, const FakeRequest&) {
        c.send(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html><body>" +
            std::string(100 << 10, 'x'));
        c.sleep_ms(3000);  // the rest of the page never comes in time
    });
    const Outcome& o = s.o;
    EXPECT_FALSE(o.r.ok);
    EXPECT_EQ(o.r.attempts, 1);
    EXPECT_NE(o.r.error.find("web page"), std::string::npos) << o.r.error;
    EXPECT_LT(o.r.error.size(), 400u);
    EXPECT_LT(o.done_time - o.started, 2.0);
}

TEST(ChatClient, AnErrorPageInHtmlShowsItsText) {
    // nginx's own page, as a proxy in front of a model server sends it.
    Served s = serve(
        http_response(502, "Bad Gateway",
                      "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                      "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
                      "</body>\r\n</html>\r\n",
                      "", "text/html"),
        /*max_retries=*/0);
    EXPECT_FALSE(s.o.r.ok);
    EXPECT_EQ(s.o.r.error, "HTTP 502 Bad Gateway: 502 Bad Gateway 502 Bad Gateway nginx");
}

TEST(ChatClient, ARedirectNamesItsTargetAndIsNotFollowed) {
    Served s = serve(http_response(301, "Moved Permanently", "",
                                   "Location: https://api.example.test/v1/chat/completions\r\n",
                                   "text/plain"));
    EXPECT_FALSE(s.o.r.ok);
    EXPECT_EQ(s.requests, 1);
    EXPECT_EQ(
        s.o.r.error,
        "HTTP 301 Moved Permanently (redirected to https://api.example.test/v1/chat/completions)");
}

// llama.cpp's server reports a failure inside a stream as an "error:" line,
// not an event; a request it rejects (400) is not tried again.
TEST(ChatClient, LlamaCppErrorLineFailsAtOnce) {
    Served s =
        serve(sse_head() +
              "error: {\"code\":400,\"message\":\"the request exceeds the available context size\","
              "\"type\":\"exceed_context_size_error\"}\n\n");
    EXPECT_FALSE(s.o.r.ok);
    EXPECT_EQ(s.o.r.error,
              "server error in stream: the request exceeds the available context size");
    EXPECT_EQ(s.requests, 1);
}

TEST(ChatClient, StreamErrorsAreRetriedOnlyWhenAnotherTryCanHelp) {
    struct Case {
        std::string event;
        int attempts;
    };
    const std::vector<Case> cases = {
        // OpenAI: a request error with a string code.
        {sse({{"error",
               {{"message", "maximum context length is 4096 tokens"},
                {"type", "invalid_request_error"},
                {"code", "context_length_exceeded"}}}}),
         1},
        // vLLM: an HTTP code inside the error object.
        {sse({{"error",
               {{"object", "error"},
                {"message", "bad"},
                {"type", "BadRequestError"},
                {"code", 400}}}}),
         1},
        // A named event with a rate limit: worth another try.
        {"event: error\ndata: {\"error\":{\"message\":\"slow down\",\"code\":429}}\n\n", 3},
        // Anthropic-style overload through a proxy.
        {"event: error\ndata: "
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"
         "\n\n",
         3},
        // A named event whose data is plain text: nothing says it is final.
        {"event: error\ndata: upstream went away\n\n", 3},
    };
    for (const auto& k : cases) {
        Served s = serve(sse_head() + k.event);
        EXPECT_FALSE(s.o.r.ok) << k.event;
        EXPECT_EQ(s.requests, k.attempts) << k.event << " -> " << s.o.r.error;
        EXPECT_NE(s.o.r.error.find("server error in stream: "), std::string::npos) << s.o.r.error;
    }
}
