#include "agents/restart_intensity.h"

#include <gtest/gtest.h>

using namespace swarmfs;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
const Clock::time_point t0 = Clock::time_point{} + 1000s;
}

TEST(RestartIntensity, DefaultAllowsFiveRestartsInThirtySecondsThenGivesUp) {
    RestartIntensity ri;
    EXPECT_EQ(ri.max_restarts(), 5);
    EXPECT_EQ(ri.period(), 30s);
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(ri.allow_restart(t0 + i * 1s)) << i;
    EXPECT_EQ(ri.recent(t0 + 5s), 5);
    EXPECT_FALSE(ri.allow_restart(t0 + 5s));
    EXPECT_FALSE(ri.allow_restart(t0 + 6s));
    EXPECT_EQ(ri.recent(t0 + 6s), 5);  // refusals are not restarts
}

TEST(RestartIntensity, RestartsOlderThanThePeriodNoLongerCount) {
    RestartIntensity ri(3, 10s);
    EXPECT_TRUE(ri.allow_restart(t0));
    EXPECT_TRUE(ri.allow_restart(t0 + 4s));
    EXPECT_TRUE(ri.allow_restart(t0 + 8s));
    EXPECT_FALSE(ri.allow_restart(t0 + 9s));
    EXPECT_EQ(ri.recent(t0 + 10s), 2);  // the one at t0 is exactly a period old
    EXPECT_TRUE(ri.allow_restart(t0 + 10s));
    EXPECT_EQ(ri.recent(t0 + 10s), 3);
    EXPECT_EQ(ri.recent(t0 + 1h), 0);
}

TEST(RestartIntensity, SlowCrashesRestartForever) {
    RestartIntensity ri(5, 30s);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(ri.allow_restart(t0 + i * 7s)) << i;
    EXPECT_EQ(ri.recent(t0 + 99 * 7s), 5);
}

TEST(RestartIntensity, ResetGivesAFreshStart) {
    RestartIntensity ri(2, 30s);
    EXPECT_TRUE(ri.allow_restart(t0));
    EXPECT_TRUE(ri.allow_restart(t0));
    EXPECT_FALSE(ri.allow_restart(t0));
    ri.reset();
    EXPECT_EQ(ri.recent(t0), 0);
    EXPECT_TRUE(ri.allow_restart(t0));
}

TEST(RestartIntensity, ZeroMaxRestartsNeverRestarts) {
    RestartIntensity ri(0, 30s);
    EXPECT_FALSE(ri.allow_restart(t0));
    EXPECT_EQ(ri.recent(t0), 0);
}

TEST(RestartIntensity, StatusReadsLikeTheStatusFile) {
    RestartIntensity ri;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(ri.allow_restart(t0));
    EXPECT_EQ(ri.status(t0, "exec exited with status 1"),
              "crashed 3/5 in 30s: exec exited with status 1");
    EXPECT_EQ(ri.status(t0, ""), "crashed 3/5 in 30s");
    EXPECT_EQ(format_crash_status(6, 5, 1500ms, "line one\nline two"),
              "crashed 6/5 in 1.5s: line one line two");
}
