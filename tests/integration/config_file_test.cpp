// --config swarm.json creates the agents it names at start-up.
#include <limits.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

class ConfigFile : public MountedSwarm {
  protected:
    std::string swarm_config() const override {
        return R"({"agents": {"echo": {"exec": ["cat"]},
                              "where": {"exec": ["sh", "-c", "cat >/dev/null; pwd"]}}})";
    }
};

TEST_F(ConfigFile, AgentsFromTheFileExistAtStart) {
    auto names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, (std::vector<std::string>{"echo", "where"}));
    auto cfg = nlohmann::json::parse(slurp(p("agents/echo/config")), nullptr, false);
    ASSERT_FALSE(cfg.is_discarded());
    EXPECT_EQ(cfg["exec"], nlohmann::json::array({"cat"}));
    ASSERT_EQ(send("echo", "from config\n"), 0);
    EXPECT_EQ(cat_stream("agents/echo/output"), "from config\n");
}

TEST_F(ConfigFile, ExecRunsInTheConfigFilesDirectory) {
    ASSERT_EQ(send("where", "x\n"), 0);
    char real[PATH_MAX];
    ASSERT_NE(realpath(dir().c_str(), real), nullptr);
    EXPECT_EQ(cat_stream("agents/where/output"), std::string(real) + "\n");
}

TEST_F(ConfigFile, RestartWithTheSameConfigKeepsState) {
    ASSERT_EQ(send("echo", "one\n"), 0);
    EXPECT_EQ(cat_stream("agents/echo/output"), "one\n");
    ASSERT_NO_FATAL_FAILURE(restart());
    auto names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, (std::vector<std::string>{"echo", "where"}));
    EXPECT_EQ(cat_stream("agents/echo/output"), "one\n");
    ASSERT_EQ(send("echo", "two\n"), 0);
    EXPECT_EQ(cat_stream("agents/echo/output"), "one\ntwo\n");
}

}  // namespace
}  // namespace swarmfs::it
