#include "agents/token_bucket.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace swarmfs;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

const Clock::time_point t0 = Clock::time_point{} + 1000s;

}  // namespace

TEST(TokenBucket, StartsFullAndRefillsAtItsRateUpToCapacity) {
    TokenBucket b(10, 2, t0);
    EXPECT_DOUBLE_EQ(b.level(t0), 10);
    EXPECT_TRUE(b.try_take(10, t0));
    EXPECT_FALSE(b.try_take(1, t0));
    EXPECT_DOUBLE_EQ(b.level(t0 + 1s), 2);
    EXPECT_DOUBLE_EQ(b.level(t0 + 60s), 10);  // never above capacity
}

TEST(TokenBucket, WaitIsRoundedUpAndARetryThenSucceeds) {
    TokenBucket b(1000, 1000.0 / 60, t0);  // 1000 tokens per minute
    ASSERT_TRUE(b.try_take(1000, t0));
    auto wait = b.wait_for(100, t0);
    EXPECT_NEAR(secs(wait), 6.0, 0.002);
    EXPECT_FALSE(b.try_take(100, t0 + wait - 2ms));
    EXPECT_TRUE(b.try_take(100, t0 + wait));
    EXPECT_EQ(b.wait_for(0, t0 + wait), Clock::duration::zero());
}

TEST(TokenBucket, RequestLargerThanCapacityIsAdmittedWhenFullAndLeavesDebt) {
    TokenBucket b(100, 10, t0);
    ASSERT_TRUE(b.try_take(50, t0));
    EXPECT_NEAR(secs(b.wait_for(500, t0)), 5.0, 0.002);  // until full, not until 500
    EXPECT_FALSE(b.try_take(500, t0));
    EXPECT_TRUE(b.try_take(500, t0 + 5s));
    EXPECT_DOUBLE_EQ(b.level(t0 + 5s), -400);
    EXPECT_NEAR(secs(b.wait_for(1, t0 + 5s)), 40.1, 0.002);  // the debt is paid first
}

TEST(TokenBucket, TimeGoingBackwardsAddsNothing) {
    TokenBucket b(10, 1, t0);
    ASSERT_TRUE(b.try_take(10, t0 + 5s));
    EXPECT_DOUBLE_EQ(b.level(t0), 0);  // an older "now" from a slower caller
    EXPECT_DOUBLE_EQ(b.level(t0 + 6s), 1);
}

TEST(TokenBucket, AdjustRefundsUpToCapacityAndChargesIntoDebt) {
    TokenBucket b(10, 1, t0);
    b.adjust(+5, t0);
    EXPECT_DOUBLE_EQ(b.level(t0), 10);
    b.adjust(-25, t0);
    EXPECT_DOUBLE_EQ(b.level(t0), -15);
}

TEST(TokenBucket, ABucketThatNeverRefillsWaitsForever) {
    TokenBucket b(1, 0, t0);
    ASSERT_TRUE(b.try_take(1, t0));
    EXPECT_EQ(b.wait_for(1, t0 + 1h), Clock::duration::max());
}

TEST(ProviderLimiter, SixtyRpmAdmitsSixtyAtOnceThenTellsTheNextToWaitAboutOneSecond) {
    ProviderLimiter lim({.requests_per_minute = 60}, t0);
    for (int i = 0; i < 60; ++i) ASSERT_EQ(lim.acquire(0, t0), Clock::duration::zero()) << i;
    auto wait = lim.acquire(0, t0);
    EXPECT_NEAR(secs(wait), 1.0, 0.01);
    // Asking again before then is refused again, with the shorter wait left.
    EXPECT_NEAR(secs(lim.acquire(0, t0 + 500ms)), 0.5, 0.01);
    EXPECT_EQ(lim.acquire(0, t0 + wait), Clock::duration::zero());
    EXPECT_GT(lim.acquire(0, t0 + wait), Clock::duration::zero());
}

TEST(ProviderLimiter, UnlimitedAdmitsEverything) {
    ProviderLimiter lim({}, t0);
    for (int i = 0; i < 10000; ++i) ASSERT_EQ(lim.acquire(1'000'000, t0), Clock::duration::zero());
    lim.settle(10, 1'000'000'000, t0);
    EXPECT_EQ(lim.acquire(1, t0), Clock::duration::zero());
}

TEST(ProviderLimiter, TokensPerMinuteMakesATurnWaitForCapacity) {
    ProviderLimiter lim({.tokens_per_minute = 6000}, t0);  // 100 tokens a second
    EXPECT_EQ(lim.acquire(5000, t0), Clock::duration::zero());
    EXPECT_EQ(lim.acquire(1000, t0), Clock::duration::zero());
    auto wait = lim.acquire(300, t0);
    EXPECT_NEAR(secs(wait), 3.0, 0.01);
    EXPECT_EQ(lim.acquire(300, t0 + wait), Clock::duration::zero());
}

TEST(ProviderLimiter, ARefusedRequestTakesNothingFromEitherBucket) {
    ProviderLimiter lim({.requests_per_minute = 2, .tokens_per_minute = 100}, t0);
    ASSERT_EQ(lim.acquire(100, t0), Clock::duration::zero());
    // Tokens are out; the request slot must not be used up while refused.
    for (int i = 0; i < 5; ++i) EXPECT_GT(lim.acquire(50, t0), Clock::duration::zero());
    lim.settle(100, 0, t0);  // that request was never sent: tokens back
    EXPECT_EQ(lim.acquire(50, t0), Clock::duration::zero());
    EXPECT_NEAR(secs(lim.acquire(0, t0)), 30.0, 0.01);  // now the 2 rpm are spent
}

TEST(ProviderLimiter, ARequestLargerThanTheWholeTpmIsAdmittedOnceTheBucketIsFull) {
    ProviderLimiter lim({.tokens_per_minute = 600}, t0);  // 10 tokens a second
    ASSERT_EQ(lim.acquire(300, t0), Clock::duration::zero());
    auto wait = lim.acquire(5000, t0);
    EXPECT_NEAR(secs(wait), 30.0, 0.01);  // until full, then it goes
    EXPECT_EQ(lim.acquire(5000, t0 + wait), Clock::duration::zero());
    // It left the bucket deep in debt: everyone after waits for it to be paid.
    EXPECT_NEAR(secs(lim.acquire(0, t0 + wait)), 440.0, 0.01);
}

TEST(ProviderLimiter, SettleChargesUnderestimatesAsDebtAndRefundsOverestimates) {
    ProviderLimiter lim({.tokens_per_minute = 600}, t0);
    ASSERT_EQ(lim.acquire(100, t0), Clock::duration::zero());
    lim.settle(100, 1100, t0);  // used 1000 more than estimated: level -500
    EXPECT_NEAR(secs(lim.acquire(0, t0)), 50.0, 0.01);
    lim.settle(2000, 0, t0);  // a refund brings it back, but never above capacity
    EXPECT_EQ(lim.acquire(600, t0), Clock::duration::zero());
    EXPECT_GT(lim.acquire(1, t0), Clock::duration::zero());
}

TEST(ProviderLimiter, ConcurrentCallersNeverGetMoreThanTheLimit) {
    ProviderLimiter lim({.requests_per_minute = 1000, .tokens_per_minute = 100'000}, t0);
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 500; ++i) {
                if (lim.acquire(10, t0) == Clock::duration::zero()) {
                    admitted.fetch_add(1);
                    lim.settle(10, 10, t0);
                }
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(admitted.load(), 1000);
}
