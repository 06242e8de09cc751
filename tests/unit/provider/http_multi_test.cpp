#include "agents/provider/http_multi.h"

#include <gtest/gtest.h>

#include <future>

#include "fake_server.h"
#include "../test_util.h"

using namespace swarmfs;
using namespace swarmfs::test;

namespace {
// Runs fn on the loop thread and waits for it.
void on_loop(EventLoop& loop, const std::function<void()>& fn) {
    std::promise<void> p;
    loop.post([&] {
        fn();
        p.set_value();
    });
    p.get_future().wait();
}
}  // namespace

TEST(HttpMulti, HeadDataDoneInOrder) {
    FakeServer srv([](FakeConn& c, const FakeRequest& r) {
        c.send("HTTP/1.1 201 Created\r\nX-Thing: a\r\nx-thing: b\r\nContent-Length: " +
               std::to_string(r.body.size()) + "\r\nConnection: close\r\n\r\n" + r.body);
    });
    EventLoop loop;
    std::unique_ptr<HttpMulti> http;
    std::promise<void> done;
    std::vector<std::string> trace;
    HttpHead head;
    HttpDone result;
    on_loop(loop, [&] {
        http = std::make_unique<HttpMulti>(loop);
        HttpRequest req;
        req.url = srv.base_url() + "/echo";
        req.body = "payload";
        HttpCallbacks cb;
        cb.on_head = [&](const HttpHead& h) {
            head = h;
            trace.push_back("head");
        };
        cb.on_data = [&](std::string_view d) { trace.push_back("data:" + std::string(d)); };
        cb.on_done = [&](const HttpDone& d) {
            result = d;
            trace.push_back("done");
            done.set_value();
        };
        http->start(std::move(req), std::move(cb));
    });
    ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(trace, (std::vector<std::string>{"head", "data:payload", "done"}));
    EXPECT_EQ(head.status, 201);
    EXPECT_EQ(head.reason, "Created");
    EXPECT_EQ(head.header("x-thing"), "a, b");
    EXPECT_EQ(result.code, CURLE_OK);
    EXPECT_EQ(result.status, 201);
    EXPECT_EQ(result.body_bytes, 7u);
    on_loop(loop, [&] {
        EXPECT_EQ(http->in_flight(), 0u);
        http.reset();
    });
}

TEST(HttpMulti, CancelAndStartFromInsideACallback) {
    std::atomic<int> closed{0};
    FakeServer srv([&](FakeConn& c, const FakeRequest& r) {
        if (r.path.ends_with("/slow")) {
            c.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nfirst");
            if (c.wait_closed(5000)) ++closed;
        } else {
            c.send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfast");
        }
    });
    EventLoop loop;
    std::unique_ptr<HttpMulti> http;
    std::promise<std::string> second;
    int slow_data = 0, slow_done = 0;
    on_loop(loop, [&] {
        http = std::make_unique<HttpMulti>(loop);
        HttpRequest req;
        req.method = "GET";
        req.url = srv.base_url() + "/slow";
        HttpCallbacks cb;
        auto id = std::make_shared<HttpMulti::Id>(0);
        cb.on_data = [&, id](std::string_view) {
            ++slow_data;
            http->cancel(*id);  // inside libcurl's write callback: deferred
            HttpRequest next;
            next.method = "GET";
            next.url = srv.base_url() + "/fast";
            HttpCallbacks ncb;
            auto body = std::make_shared<std::string>();
            ncb.on_data = [body](std::string_view d) { body->append(d); };
            ncb.on_done = [&, body](const HttpDone&) { second.set_value(*body); };
            http->start(std::move(next), std::move(ncb));  // also deferred
        };
        cb.on_done = [&](const HttpDone&) { ++slow_done; };
        *id = http->start(std::move(req), std::move(cb));
    });
    auto f = second.get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(f.get(), "fast");
    EXPECT_TRUE(eventually([&] { return closed.load() == 1; }, 5));
    on_loop(loop, [&] {
        EXPECT_EQ(slow_data, 1);
        EXPECT_EQ(slow_done, 0);  // a cancelled transfer reports nothing
        http.reset();
    });
}

TEST(HttpMulti, DestroyingAbortsTransfersSilently) {
    std::atomic<int> closed{0};
    FakeServer srv([&](FakeConn& c, const FakeRequest&) {
        if (c.wait_closed(5000)) ++closed;
    });
    EventLoop loop;
    std::unique_ptr<HttpMulti> http;
    std::atomic<int> dones{0};
    on_loop(loop, [&] {
        http = std::make_unique<HttpMulti>(loop);
        for (int i = 0; i < 3; ++i) {
            HttpRequest req;
            req.url = srv.base_url() + "/x";
            HttpCallbacks cb;
            cb.on_done = [&](const HttpDone&) { ++dones; };
            http->start(std::move(req), std::move(cb));
        }
    });
    ASSERT_TRUE(eventually([&] { return srv.count() == 3; }));
    on_loop(loop, [&] { http.reset(); });
    EXPECT_TRUE(eventually([&] { return closed.load() == 3; }, 5));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(dones.load(), 0);
}
