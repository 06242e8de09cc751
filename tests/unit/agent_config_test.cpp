#include "agents/agent_config.h"

#include <gtest/gtest.h>

using namespace swarmfs;

TEST(AgentConfig, ParsesExecAgent) {
    auto c = AgentConfig::parse(R"({"exec": ["tr", "a-z", "A-Z"], "instructions": "shout"})");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->exec, (std::vector<std::string>{"tr", "a-z", "A-Z"}));
    EXPECT_EQ(c->instructions, "shout");
    EXPECT_TRUE(c->runnable());
    auto again = AgentConfig::parse(c->to_text());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->to_text(), c->to_text()) << "what is read back parses to the same config";
}

TEST(AgentConfig, EmptyObjectIsValidButNotRunnable) {
    auto c = AgentConfig::parse("{}");
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->runnable());
}

TEST(AgentConfig, RejectionsSayWhatIsWrong) {
    struct Case {
        const char* text;
        const char* words;
    } cases[] = {
        {"{bad json", "invalid JSON"},
        {"[1,2]", "must be a JSON object"},
        {R"({"exec": "tr a-z A-Z"})", "exec must be a non-empty array"},
        {R"({"exec": []})", "exec must be a non-empty array"},
        {R"({"exec": ["tr", 3]})", "only strings"},
        {R"({"modle": "x"})", "unknown key \"modle\""},
        {R"({"instructions": 5})", "instructions must be a string"},
        {R"({"env": {"A": 1}})", "env.A must be a string"},
    };
    for (auto& c : cases) {
        auto r = AgentConfig::parse(c.text);
        ASSERT_FALSE(r.ok()) << c.text;
        EXPECT_EQ(r.error().code, EINVAL);
        EXPECT_NE(r.error().message.find(c.words), std::string::npos)
            << c.text << " -> " << r.error().message;
    }
}

TEST(AgentConfig, DraftCheckFailsOnlyWhenNoContinuationCanHelp) {
    EXPECT_TRUE(AgentConfig::check_partial("{\"exec\":").ok()) << "no newline yet: undecided";
    EXPECT_TRUE(AgentConfig::check_partial("{\"exec\":\n").ok()) << "incomplete but may continue";
    EXPECT_TRUE(AgentConfig::check_partial("{\"exec\": [\"cat\"]}\n").ok());
    EXPECT_FALSE(AgentConfig::check_partial("{bad json\n").ok());
    EXPECT_FALSE(AgentConfig::check_partial("{\"exec\": 1}\n").ok()) << "complete and wrong";
    EXPECT_FALSE(AgentConfig::check_partial("{} x\n").ok());
}

TEST(AgentConfig, AgentNames) {
    for (const char* ok : {"upper", "a", "A-b_c.d", "x1"}) EXPECT_TRUE(valid_agent_name(ok)) << ok;
    for (const char* bad : {"", ".hidden", "back~", "a/b", "sp ace", "é"})
        EXPECT_FALSE(valid_agent_name(bad)) << bad;
    EXPECT_FALSE(valid_agent_name(std::string(65, 'a')));
}
