// The event loop every turn depends on survives a callback that throws.
#include "agents/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

#include "test_util.h"

using namespace swarmfs;

TEST(EventLoop, ACallbackThatThrowsDoesNotStopTheLoop) {
    EventLoop loop;
    std::atomic<int> ran{0};
    loop.post([] { throw std::runtime_error("boom"); });
    loop.post([&] { ++ran; });
    loop.after(0.01, [] { throw std::logic_error("timer boom"); });
    loop.after(0.02, [&] { ++ran; });
    EXPECT_TRUE(test::eventually([&] { return ran == 2; }));
}
