#include "agents/command_table.h"

#include <gtest/gtest.h>

using namespace swarmfs;

namespace {
struct Recorder {
    std::vector<std::string> calls;
    CommandTable table() {
        return {
            {"stop", "stop", 0, 0,
             [this](const CommandArgs&) -> Status {
                 calls.push_back("stop");
                 return {};
             }},
            {"agent", "agent NAME", 1, 1,
             [this](const CommandArgs& a) -> Status {
                 calls.push_back("agent " + a.words[0]);
                 return {};
             }},
            {"spawn", "spawn NAME [JSON]", 1, SIZE_MAX,
             [this](const CommandArgs& a) -> Status {
                 calls.push_back("spawn rest=" + a.rest);
                 return {};
             }},
        };
    }
};
}  // namespace

TEST(CommandTable, RunsEachLineInOrderSkippingCommentsAndBlanks) {
    Recorder r;
    ASSERT_TRUE(run_commands(r.table(), "stop\n\n# a comment\n  agent upper  \n").ok());
    EXPECT_EQ(r.calls, (std::vector<std::string>{"stop", "agent upper"}));
}

TEST(CommandTable, RestKeepsSpacingOfArguments) {
    Recorder r;
    ASSERT_TRUE(run_commands(r.table(), "spawn x {\"exec\": [\"tr\", \"a\"]}\n").ok());
    EXPECT_EQ(r.calls.back(), "spawn rest=x {\"exec\": [\"tr\", \"a\"]}");
}

TEST(CommandTable, UnknownCommandListsTheKnownOnes) {
    Recorder r;
    auto s = run_commands(r.table(), "frobnicate\n");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, EINVAL);
    EXPECT_NE(s.error().message.find("unknown command \"frobnicate\""), std::string::npos);
    EXPECT_NE(s.error().message.find("stop, agent, spawn"), std::string::npos);
}

TEST(CommandTable, WrongArgumentCountGivesUsage) {
    Recorder r;
    auto s = run_commands(r.table(), "agent\n");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "usage: agent NAME");
    EXPECT_FALSE(run_commands(r.table(), "stop now\n").ok());
    EXPECT_TRUE(r.calls.empty());
}

TEST(CommandTable, StopsAtFirstBadLine) {
    Recorder r;
    EXPECT_FALSE(run_commands(r.table(), "stop\nbogus\nagent a\n").ok());
    EXPECT_EQ(r.calls, (std::vector<std::string>{"stop"}));
}

TEST(CommandTable, EmptyWriteIsAnError) {
    Recorder r;
    EXPECT_FALSE(run_commands(r.table(), "\n  \n").ok());
}
