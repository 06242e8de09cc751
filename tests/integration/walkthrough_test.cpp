// The issue's walkthrough, exactly as a user types it in a shell.
#include <nlohmann/json.hpp>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

using Walkthrough = MountedSwarm;

TEST_F(Walkthrough, ShellSession) {
    const std::string cd = "cd " + shq(mnt()) + " && ";
    auto r = sh(cd + "mkdir agents/upper");
    ASSERT_EQ(r.status, 0) << r.err;
    r = sh(cd + R"(echo '{"exec": ["tr", "a-z", "A-Z"]}' > agents/upper/config)");
    ASSERT_EQ(r.status, 0) << r.err;
    r = sh(cd + "echo hello > agents/upper/inbox");
    ASSERT_EQ(r.status, 0) << r.err;

    // cat blocks until the turn finishes, then ends.
    r = sh(cd + "cat agents/upper/output", 15);
    ASSERT_FALSE(r.timed_out) << "cat output did not end; got: " << r.out;
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "HELLO\n");

    r = sh(cd + "cat agents/upper/status");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(kv(r.out, "state"), std::string("idle")) << r.out;
    EXPECT_EQ(kv(r.out, "turns"), std::string("1")) << r.out;
    EXPECT_EQ(kv(r.out, "queue"), std::string("0")) << r.out;

    // A conversation routed to the agent.
    r = sh(cd +
           "N=$(cat conv/clone) && echo \"agent upper\" > conv/$N/ctl && "
           "echo \"good morning\" > conv/$N/in && echo $N");
    ASSERT_EQ(r.status, 0) << r.err;
    std::string n = r.out;
    while (!n.empty() && n.back() == '\n') n.pop_back();
    ASSERT_FALSE(n.empty());
    // cat out ends once the reply is complete.
    r = sh(cd + "cat conv/" + n + "/out", 15);
    EXPECT_FALSE(r.timed_out) << "cat conv/N/out did not end; got: " << r.out;
    EXPECT_EQ(r.out, "GOOD MORNING\n");

    r = sh(cd + "cat conv/" + n + "/agent");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "upper");

    r = sh(cd + "cat conv/" + n + "/context");
    ASSERT_EQ(r.status, 0) << r.err;
    std::vector<nlohmann::json> ctx;
    for (const auto& l : lines(r.out)) {
        auto j = nlohmann::json::parse(l, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << "context line is not JSON: " << l;
        ctx.push_back(j);
    }
    ASSERT_EQ(ctx.size(), 2u) << r.out;
    EXPECT_EQ(ctx[0].value("role", ""), "user") << r.out;
    EXPECT_EQ(ctx[0].value("content", ""), "good morning\n") << r.out;
    EXPECT_EQ(ctx[1].value("role", ""), "assistant") << r.out;
    EXPECT_EQ(ctx[1].value("agent", ""), "upper") << r.out;
    EXPECT_EQ(ctx[1].value("content", ""), "GOOD MORNING\n") << r.out;

    r = sh(cd + "cat conv/" + n + "/ctl");
    EXPECT_EQ(kv(r.out, "agent"), std::string("upper")) << r.out;
    EXPECT_EQ(kv(r.out, "state"), std::string("idle")) << r.out;

    // The agent's output has both replies, in order.
    r = sh(cd + "cat agents/upper/output", 15);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.out, "HELLO\nGOOD MORNING\n");
    r = sh(cd + "cat agents/upper/status");
    EXPECT_EQ(kv(r.out, "turns"), std::string("2")) << r.out;

    // Root views agree.
    r = sh(cd + "cat ctl");
    ASSERT_EQ(r.status, 0) << r.err;
    ASSERT_EQ(lines(r.out).size(), 1u) << r.out;
    EXPECT_EQ(r.out, "upper idle 0 2\n");
    r = sh(cd + "cat status");
    EXPECT_EQ(kv(r.out, "agents"), std::string("1")) << r.out;
    EXPECT_EQ(kv(r.out, "conversations"), std::string("1")) << r.out;
    EXPECT_EQ(kv(r.out, "turns"), std::string("2")) << r.out;
    EXPECT_EQ(kv(r.out, "failed"), std::string("0")) << r.out;
    EXPECT_EQ(kv(r.out, "running"), std::string("0")) << r.out;
}

}  // namespace
}  // namespace swarmfs::it
