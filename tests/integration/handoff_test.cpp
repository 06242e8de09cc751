// An exec agent hands its conversation to another through the mount, as the
// seed's sales agent hands a technical question to support.
#include <nlohmann/json.hpp>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

class Handoff : public MountedSwarm {
  protected:
    std::string swarm_config() const override {
        return R"({"agents": {
          "sales": {"exec": ["sh", "-c", "read q; case \"$q\" in *401*) echo 'Let me get support.'; echo 'handoff support' > \"$SWARMFS_MNT/conv/$SWARMFS_CONV/ctl\" || exit 9;; *) echo \"Pro is 10 USD, $(printf %s \"$SWARMFS_VARS\")\";; esac"],
                    "handoffs": ["support"]},
          "support": {"exec": ["sh", "-c", "read q; echo \"support: $q vars=$SWARMFS_VARS\""]},
          "rogue": {"exec": ["sh", "-c", "echo 'handoff sales' > \"$SWARMFS_MNT/conv/$SWARMFS_CONV/ctl\" && echo wrote || echo refused"]}}})";
    }
    std::string open_conv(const std::string& agent) {
        std::string n = slurp(p("conv/clone"));
        if (!n.empty()) n.pop_back();
        EXPECT_EQ(write_file(p("conv/" + n + "/ctl"), "agent " + agent + "\n"), 0);
        return n;
    }
};

TEST_F(Handoff, SupportContinuesTheSameConversationWithItsVars) {
    std::string n = open_conv("sales");
    ASSERT_EQ(write_file(p("conv/" + n + "/vars"), "{\"user\": \"ada\"}\n"), 0);
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), "What does Pro cost?\n"), 0);
    EXPECT_EQ(cat_stream("conv/" + n + "/out"), "Pro is 10 USD, {\"user\":\"ada\"}\n");
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), "My API returns 401\n"), 0);
    // One cat sees both agents' parts: out never breaks across the handoff.
    EXPECT_EQ(cat_stream("conv/" + n + "/out"),
              "Pro is 10 USD, {\"user\":\"ada\"}\nLet me get support.\n"
              "support: My API returns 401 vars={\"user\":\"ada\"}\n");
    EXPECT_EQ(slurp(p("conv/" + n + "/agent")), "support\n");
    EXPECT_EQ(slurp(p("agents/support/output")),
              "support: My API returns 401 vars={\"user\":\"ada\"}\n");
    EXPECT_EQ(slurp(p("agents/sales/output")),
              "Pro is 10 USD, {\"user\":\"ada\"}\nLet me get support.\n");
    auto ctx = slurp(p("conv/" + n + "/context"));
    EXPECT_NE(ctx.find(R"({"from":"sales","role":"handoff","to":"support"})"), std::string::npos)
        << ctx;
    auto vars = nlohmann::json::parse(slurp(p("conv/" + n + "/vars")), nullptr, false);
    EXPECT_EQ(vars, nlohmann::json({{"user", "ada"}}));
}

TEST_F(Handoff, AgentNotListedIsRefusedWithEpermAndLogged) {
    std::string n = open_conv("rogue");
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), "go\n"), 0);
    EXPECT_EQ(cat_stream("conv/" + n + "/out"), "refused\n");
    EXPECT_EQ(slurp(p("conv/" + n + "/agent")), "rogue\n");
    EXPECT_NE(slurp(p("agents/rogue/err")).find("may not hand off to sales"), std::string::npos);
    // And directly: the errno a program sees.
    EXPECT_EQ(write_file(p("conv/" + n + "/ctl"), "handoff sales\n"), EPERM);
    EXPECT_EQ(write_file(p("conv/" + n + "/ctl"), "handoff nobody\n"), ENOENT);
}

TEST_F(Handoff, VarsMustBeAJsonObject) {
    std::string n = open_conv("sales");
    EXPECT_EQ(write_file(p("conv/" + n + "/vars"), "[1, 2]\n"), EINVAL);
    EXPECT_EQ(write_file(p("conv/" + n + "/vars"), "{bad\n"), EINVAL);
    EXPECT_EQ(slurp(p("conv/" + n + "/vars")), "{}\n");
}

}  // namespace
}  // namespace swarmfs::it
