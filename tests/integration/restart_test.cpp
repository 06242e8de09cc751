// Durability: acknowledged messages survive kill -9; state comes back on
// restart; SIGTERM unmounts cleanly.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <map>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

using Restart = MountedSwarm;

TEST_F(Restart, AcknowledgedMessagesSurviveKill9AndRunExactlyOnce) {
    ASSERT_NO_FATAL_FAILURE(make_agent("slow", R"({"exec": ["sh", "-c", "sleep 1; cat"]})"));
    for (const char* m : {"m1\n", "m2\n", "m3\n"}) ASSERT_EQ(send("slow", m), 0);
    kill9();  // right after the writes were acknowledged
    ASSERT_FALSE(mounted());
    ASSERT_NO_FATAL_FAILURE(restart());

    auto names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, std::vector<std::string>{"slow"});
    const std::string out = cat_stream("agents/slow/output", 20);
    for (const char* m : {"m1\n", "m2\n", "m3\n"})
        EXPECT_EQ(count(out, m), 1u) << "output:\n" << out;
    EXPECT_EQ(out.size(), 9u) << out;
    ASSERT_TRUE(wait_idle("slow"));
    auto status = slurp(p("agents/slow/status"));
    EXPECT_EQ(kv(status, "turns"), std::string("3")) << status;
    EXPECT_EQ(kv(status, "queue"), std::string("0")) << status;

    // And once more across a clean restart: nothing runs twice.
    EXPECT_EQ(WEXITSTATUS(stop()), 0);
    ASSERT_NO_FATAL_FAILURE(restart());
    sleep_for(1.5);
    EXPECT_EQ(cat_stream("agents/slow/output", 10), out);
}

TEST_F(Restart, StateComesBackUnchanged) {
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    ASSERT_EQ(write_file(p("agents/upper/instructions"), "Shout.\n"), 0);
    ASSERT_NO_FATAL_FAILURE(make_agent("fail", R"({"exec": ["sh", "-c", "exit 3"]})"));
    ASSERT_EQ(send("upper", "hello\n"), 0);
    EXPECT_EQ(cat_stream("agents/upper/output"), "HELLO\n");
    ASSERT_EQ(send("fail", "x\n"), 0);
    cat_stream("agents/fail/output");
    auto n = slurp(p("conv/clone"));
    ASSERT_FALSE(n.empty());
    n.pop_back();
    ASSERT_EQ(write_file(p("conv/" + n + "/ctl"), "agent upper\n"), 0);
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), "good morning\n"), 0);
    EXPECT_EQ(cat_stream("conv/" + n + "/out"), "GOOD MORNING\n");
    auto closed = slurp(p("conv/clone"));
    ASSERT_FALSE(closed.empty());
    closed.pop_back();
    ASSERT_EQ(write_file(p("conv/" + closed + "/ctl"), "agent upper\nclose\n"), 0);
    ASSERT_TRUE(wait_idle("upper"));
    ASSERT_TRUE(wait_idle("fail"));

    const std::vector<std::string> files = {"agents/upper/output",
                                            "agents/upper/config",
                                            "agents/upper/instructions",
                                            "agents/upper/status",
                                            "agents/fail/status",
                                            "conv/" + n + "/out",
                                            "conv/" + n + "/context",
                                            "conv/" + n + "/agent",
                                            "conv/" + n + "/ctl",
                                            "conv/" + closed + "/ctl",
                                            "ctl"};
    auto is_stream = [](const std::string& f) {
        return f.ends_with("/out") || f.ends_with("/output");
    };
    std::map<std::string, std::string> before;
    for (const auto& f : files) before[f] = is_stream(f) ? cat_stream(f) : slurp(p(f));
    const auto agents_before = list_dir(p("agents"));
    const auto convs_before = list_dir(p("conv"));

    kill9();
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(list_dir(p("agents")), agents_before);
    EXPECT_EQ(list_dir(p("conv")), convs_before);
    for (const auto& f : files) {
        std::string now_content = is_stream(f) ? cat_stream(f) : slurp(p(f));
        EXPECT_EQ(now_content, before[f]) << f << " changed across kill -9 + restart";
    }
    // fail's last_error survives too.
    EXPECT_NE(slurp(p("agents/fail/status")).find("exit status 3"), std::string::npos);

    // Work goes on: new messages, new conversations get fresh numbers.
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), "again\n"), 0);
    EXPECT_EQ(cat_stream("conv/" + n + "/out"), "GOOD MORNING\nAGAIN\n");
    EXPECT_EQ(cat_stream("agents/upper/output"), "HELLO\nGOOD MORNING\nAGAIN\n");
    EXPECT_EQ(write_file(p("conv/" + closed + "/in"), "x\n", O_WRONLY | O_TRUNC), EPIPE);
    auto n2 = slurp(p("conv/clone"));
    ASSERT_FALSE(n2.empty());
    n2.pop_back();
    EXPECT_TRUE(std::find(convs_before->begin(), convs_before->end(), n2) == convs_before->end())
        << "conversation number " << n2 << " reused after restart";
}

TEST_F(Restart, SigtermUnmountsCleanly) {
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    ASSERT_EQ(send("upper", "hello\n"), 0);
    EXPECT_EQ(cat_stream("agents/upper/output"), "HELLO\n");
    int st = stop(10);
    ASSERT_NE(st, -1);
    EXPECT_TRUE(WIFEXITED(st)) << "server died of signal " << WTERMSIG(st);
    EXPECT_EQ(WEXITSTATUS(st), 0);
    EXPECT_FALSE(mounted()) << "mount still present after SIGTERM";
    auto r = sh("grep -F " + shq(" " + mnt() + " ") + " /proc/mounts");
    EXPECT_NE(r.status, 0) << r.out;

    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(cat_stream("agents/upper/output"), "HELLO\n");
}

TEST_F(Restart, SigtermWithBlockedReaderStillExits) {
    ASSERT_NO_FATAL_FAILURE(make_agent("busy", R"({"exec": ["sh", "-c", "cat; sleep 30"]})"));
    ASSERT_EQ(send("busy", "x\n"), 0);
    Proc cat("cat " + shq(p("agents/busy/output")));
    ASSERT_TRUE(cat.wait_for("x\n", 5));
    Proc log("cat " + shq(p("log")));
    ASSERT_TRUE(log.wait_for("turn_started", 5));
    const double t0 = now();
    int st = stop(10);
    EXPECT_LT(now() - t0, 5) << "SIGTERM with parked readers took too long";
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
    EXPECT_FALSE(mounted());
    EXPECT_TRUE(cat.wait_exit(5)) << "reader still blocked after the server exited";
    EXPECT_TRUE(log.wait_exit(5)) << "log reader still blocked after the server exited";
}

TEST_F(Restart, SigintUnmountsCleanly) {
    kill(server_pid(), SIGINT);
    ASSERT_TRUE(wait_until([&] { return !mounted(); }, 10)) << "SIGINT did not unmount";
    int st = stop(5);  // reaps
    if (st != -1) {
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    }
}

}  // namespace
}  // namespace swarmfs::it
