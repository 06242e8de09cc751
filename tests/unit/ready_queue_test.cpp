#include "agents/ready_queue.h"

#include <gtest/gtest.h>

#include <vector>

using namespace swarmfs;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const Clock::time_point t0 = Clock::time_point{} + 1000s;

std::vector<uint64_t> drain(ReadyQueue& q, Clock::time_point now) {
    std::vector<uint64_t> out;
    while (auto k = q.pop(now)) out.push_back(*k);
    return out;
}

}  // namespace

TEST(ReadyQueue, PriorityNamesParseAndPrintAsUsersWriteThem) {
    EXPECT_EQ(parse_priority("interactive"), Priority::interactive);
    EXPECT_EQ(parse_priority("default"), Priority::normal);
    EXPECT_EQ(parse_priority("normal"), Priority::normal);
    EXPECT_EQ(parse_priority("background"), Priority::background);
    EXPECT_EQ(parse_priority("urgent"), std::nullopt);
    EXPECT_EQ(parse_priority(""), std::nullopt);
    EXPECT_EQ(parse_priority("Interactive"), std::nullopt);
    for (auto p : {Priority::interactive, Priority::normal, Priority::background})
        EXPECT_EQ(parse_priority(priority_name(p)), p);
    EXPECT_EQ(priority_name(Priority::normal), "default");
}

TEST(ReadyQueue, InteractiveFirstThenDefaultThenBackgroundFifoWithinEach) {
    ReadyQueue q;
    q.push(1, Priority::background, t0);
    q.push(2, Priority::normal, t0);
    q.push(3, Priority::interactive, t0);
    q.push(4, Priority::background, t0);
    q.push(5, Priority::interactive, t0);
    q.push(6, Priority::normal, t0);
    EXPECT_EQ(q.size(), 6u);
    EXPECT_EQ(q.size(Priority::interactive), 2u);
    EXPECT_EQ(drain(q, t0), (std::vector<uint64_t>{3, 5, 2, 6, 1, 4}));
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.pop(t0), std::nullopt);
}

TEST(ReadyQueue, BackgroundWorkPopsAfterTwoAgingIntervalsWhileInteractiveKeepsArriving) {
    ReadyQueue q(5s);
    q.push(999, Priority::background, t0);
    uint64_t next = 1;
    // Two interactive arrivals a second, one worker slot a second: the
    // interactive backlog only grows, yet the background job gets its turn.
    for (int s = 0;; ++s) {
        auto now = t0 + s * 1s;
        q.push(next++, Priority::interactive, now);
        q.push(next++, Priority::interactive, now);
        auto k = q.pop(now);
        ASSERT_TRUE(k);
        if (*k == 999) {
            EXPECT_EQ(s, 10);  // 2 x aging: background -> default -> interactive
            break;
        }
        ASSERT_LT(s, 10) << "background work starved";
    }
}

TEST(ReadyQueue, DefaultWorkAgesIntoInteractiveAfterOneInterval) {
    ReadyQueue q(5s);
    q.push(1, Priority::normal, t0);
    q.push(2, Priority::interactive, t0 + 4s);
    EXPECT_EQ(q.pop(t0 + 4s), 2u);  // not aged yet
    q.push(3, Priority::interactive, t0 + 5s);
    EXPECT_EQ(q.pop(t0 + 5s), 1u);  // now equal class, and it came first
    EXPECT_EQ(q.pop(t0 + 5s), 3u);
}

TEST(ReadyQueue, AgedWorkStillQueuesBehindOlderWorkOfItsNewClass) {
    ReadyQueue q(5s);
    q.push(1, Priority::interactive, t0);
    q.push(2, Priority::normal, t0 + 1s);
    EXPECT_EQ(drain(q, t0 + 60s), (std::vector<uint64_t>{1, 2}));
}

TEST(ReadyQueue, ZeroAgingIsStrictPriority) {
    ReadyQueue q(0s);
    q.push(1, Priority::background, t0);
    q.push(2, Priority::interactive, t0 + 1h);
    EXPECT_EQ(drain(q, t0 + 1h), (std::vector<uint64_t>{2, 1}));
}

TEST(ReadyQueue, RemoveTakesAKeyOutWhereverItIs) {
    ReadyQueue q;
    for (uint64_t k = 1; k <= 6; ++k) q.push(k, static_cast<Priority>(k % 3), t0);
    EXPECT_TRUE(q.remove(3));
    EXPECT_TRUE(q.remove(5));
    EXPECT_FALSE(q.remove(5));
    EXPECT_FALSE(q.remove(42));
    EXPECT_FALSE(q.contains(3));
    EXPECT_TRUE(q.contains(4));
    EXPECT_EQ(q.size(), 4u);
    EXPECT_EQ(drain(q, t0), (std::vector<uint64_t>{6, 1, 4, 2}));
}

TEST(ReadyQueue, PushingAQueuedKeyAgainKeepsItsPlace) {
    ReadyQueue q;
    EXPECT_TRUE(q.push(1, Priority::background, t0));
    EXPECT_TRUE(q.push(2, Priority::background, t0));
    EXPECT_FALSE(q.push(1, Priority::interactive, t0));
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.size(Priority::interactive), 0u);
    EXPECT_EQ(drain(q, t0), (std::vector<uint64_t>{1, 2}));
    EXPECT_TRUE(q.push(1, Priority::interactive, t0));  // once popped, it may come back
}

TEST(ReadyQueue, ArrivalsWithSlightlyOlderTimestampsStayFifo) {
    // Callers read the clock before taking the scheduler's lock, so a later
    // push can carry an earlier time; it must not jump the queue.
    ReadyQueue q(5s);
    q.push(1, Priority::background, t0 + 3s);
    q.push(2, Priority::background, t0);
    q.push(3, Priority::normal, t0 + 3s);
    EXPECT_EQ(q.pop(t0 + 8s), 3u);  // 1 and 2 have only aged to default since t0+3s
    EXPECT_EQ(drain(q, t0 + 8s), (std::vector<uint64_t>{1, 2}));
}

TEST(ReadyQueue, ManyEntriesDrainInPriorityOrder) {
    ReadyQueue q(5s);
    for (uint64_t k = 0; k < 30000; ++k) q.push(k, static_cast<Priority>(k % 3), t0);
    auto order = drain(q, t0);
    ASSERT_EQ(order.size(), 30000u);
    for (size_t i = 0; i < order.size(); ++i)
        ASSERT_EQ(order[i] % 3, i / 10000) << i;  // all interactive, then default, ...
}
