#include "vault/event_log.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <thread>
#include <vector>

#include "test_util.h"

using namespace swarmfs;

static Event ev(const std::string& kind, nlohmann::json data = nlohmann::json::object()) {
    Event e;
    e.kind = kind;
    e.data = std::move(data);
    return e;
}

TEST(EventLog, CommitAssignsIncreasingIdsAndSurvivesReopen) {
    test::TempDir dir;
    std::string db = dir.file("swarm.db");
    {
        auto log = EventLog::open(db);
        ASSERT_TRUE(log.ok()) << log.error().message;
        auto a = (*log)->commit({ev("message", {{"text", "one"}})});
        auto b =
            (*log)->commit({ev("message", {{"text", "two"}}), ev("message", {{"text", "three"}})});
        ASSERT_TRUE(a.ok());
        ASSERT_TRUE(b.ok());
        EXPECT_EQ(*a, 1);
        EXPECT_EQ(*b, 3);
    }
    auto log = EventLog::open(db);
    ASSERT_TRUE(log.ok());
    std::vector<std::string> texts;
    ASSERT_TRUE((*log)->for_each(0, [&](const Event& e) { texts.push_back(e.data["text"]); }).ok());
    EXPECT_EQ(texts, (std::vector<std::string>{"one", "two", "three"}));
    texts.clear();
    ASSERT_TRUE((*log)->for_each(2, [&](const Event& e) { texts.push_back(e.data["text"]); }).ok());
    EXPECT_EQ(texts, (std::vector<std::string>{"three"}));
}

TEST(EventLog, UsesWalAndRefusesUpdatesAndDeletes) {
    test::TempDir dir;
    std::string db = dir.file("swarm.db");
    {
        auto log = EventLog::open(db);
        ASSERT_TRUE(log.ok());
        ASSERT_TRUE((*log)->commit({ev("x")}).ok());
    }
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, nullptr);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
    sqlite3_finalize(st);
    EXPECT_NE(sqlite3_exec(raw, "UPDATE events SET kind='y'", nullptr, nullptr, nullptr),
              SQLITE_OK);
    EXPECT_NE(sqlite3_exec(raw, "DELETE FROM events", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
}

TEST(EventLog, ConcurrentCommitsAreAllDurableAndObservedInIdOrder) {
    test::TempDir dir;
    std::string db = dir.file("swarm.db");
    std::vector<int64_t> observed;
    std::mutex mu;
    {
        auto log = EventLog::open(db);
        ASSERT_TRUE(log.ok());
        (*log)->set_observer([&](const Event& e) {
            std::lock_guard lk(mu);
            observed.push_back(e.id);
        });
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < 25; ++i)
                    ASSERT_TRUE((*log)->commit({ev("message", {{"t", t}, {"i", i}})}).ok());
            });
        for (auto& th : threads) th.join();
        (*log)->post({ev("posted")});
        (*log)->drain();
    }
    ASSERT_EQ(observed.size(), 201u);
    EXPECT_TRUE(std::is_sorted(observed.begin(), observed.end()));
    auto log = EventLog::open(db);
    ASSERT_TRUE(log.ok());
    int n = 0;
    ASSERT_TRUE((*log)->for_each(0, [&](const Event&) { ++n; }).ok());
    EXPECT_EQ(n, 201);
}

TEST(EventLog, LineIsOneJsonObjectWithIdTimeAndKind) {
    Event e = ev("message", {{"agent", "upper"}, {"text", "hi\n"}});
    e.id = 7;
    e.ts = 1'800'000'000.25;
    std::string line = e.to_line();
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per event";
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["id"], 7);
    EXPECT_EQ(j["kind"], "message");
    EXPECT_EQ(j["agent"], "upper");
    EXPECT_EQ(j["ts"], "2027-01-15T08:00:00.250Z");
}

TEST(EventLog, OpenFailsWithReadableErrorForUnwritablePath) {
    auto log = EventLog::open("/nonexistent-dir/x/swarm.db");
    ASSERT_FALSE(log.ok());
    EXPECT_NE(log.error().message.find("/nonexistent-dir/x/swarm.db"), std::string::npos);
}
