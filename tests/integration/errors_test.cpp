// Errors: the right errno, a line in err, and nothing valid lost.
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

using Errors = MountedSwarm;

std::string conv_new(const std::string& clone_path) {
    auto n = slurp(clone_path);
    if (!n.empty() && n.back() == '\n') n.pop_back();
    return n;
}

TEST_F(Errors, MalformedConfigIsRejectedAndOldOneStays) {
    const std::string good = R"({"exec": ["tr", "a-z", "A-Z"]})";
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", good));
    const auto before = slurp(p("agents/upper/config"));
    const auto err_before = lines(slurp(p("agents/upper/err"))).size();

    const char* stage = "";
    int e = write_file(p("agents/upper/config"), "{\"exec\": [\"cat\"", O_WRONLY | O_TRUNC, &stage);
    EXPECT_EQ(e, EINVAL) << "at " << stage << ": " << strerror(e);

    auto err = slurp(p("agents/upper/err"));
    EXPECT_EQ(lines(err).size(), err_before + 1) << err;
    EXPECT_NE(err.find("config"), std::string::npos) << err;
    EXPECT_EQ(slurp(p("agents/upper/config")), before);
    auto cfg = nlohmann::json::parse(slurp(p("agents/upper/config")), nullptr, false);
    ASSERT_FALSE(cfg.is_discarded());
    EXPECT_EQ(cfg["exec"], nlohmann::json::parse(R"(["tr", "a-z", "A-Z"])"));

    // Valid JSON but not a valid config.
    e = write_file(p("agents/upper/config"), R"({"exec": "not-a-list-or-string", "x": )",
                   O_WRONLY | O_TRUNC);
    EXPECT_EQ(e, EINVAL);
    e = write_file(p("agents/upper/config"), "[1, 2, 3]\n", O_WRONLY | O_TRUNC);
    EXPECT_EQ(e, EINVAL) << "a config must be a JSON object";
    EXPECT_EQ(slurp(p("agents/upper/config")), before);

    // A following message still runs under the old config.
    ASSERT_EQ(send("upper", "still\n"), 0);
    EXPECT_EQ(cat_stream("agents/upper/output"), "STILL\n");
}

TEST_F(Errors, BadCtlCommands) {
    ASSERT_NO_FATAL_FAILURE(make_agent("a", R"({"exec": ["cat"]})"));
    const auto n = lines(slurp(p("agents/a/err"))).size();
    EXPECT_EQ(write_file(p("agents/a/ctl"), "frobnicate\n"), EINVAL);
    auto err = slurp(p("agents/a/err"));
    EXPECT_EQ(lines(err).size(), n + 1) << err;
    EXPECT_NE(err.find("frobnicate"), std::string::npos) << err;

    EXPECT_EQ(write_file(p("ctl"), "frobnicate\n"), EINVAL);
    EXPECT_EQ(write_file(p("ctl"), "spawn\n"), EINVAL) << "spawn without a name";
    EXPECT_EQ(write_file(p("ctl"), "spawn bad/name\n"), EINVAL);

    auto c = conv_new(p("conv/clone"));
    ASSERT_FALSE(c.empty());
    EXPECT_EQ(write_file(p("conv/" + c + "/ctl"), "frobnicate\n"), EINVAL);
    // Nothing changed: the agent still works.
    ASSERT_EQ(send("a", "ok\n"), 0);
    EXPECT_EQ(cat_stream("agents/a/output"), "ok\n");
}

TEST_F(Errors, FirstBadCommandStopsTheWrite) {
    ASSERT_NO_FATAL_FAILURE(make_agent("a", R"({"exec": ["cat"]})"));
    // One write, three lines: the good spawn runs, the bad line fails the
    // write, the spawn after it does not run.
    EXPECT_EQ(write_file(p("ctl"), "spawn first\nfrobnicate\nspawn third\n"), EINVAL);
    auto names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, (std::vector<std::string>{"a", "first"}));
}

TEST_F(Errors, UnknownAgentPathsAreEnoent) {
    EXPECT_EQ(write_file(p("agents/nosuch/inbox"), "hi\n"), ENOENT);
    struct stat sb {};
    EXPECT_EQ(stat(p("agents/nosuch").c_str(), &sb), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(write_file(p("ctl"), "kill nosuch\n"), ENOENT);
    EXPECT_EQ(stat(p("nosuchfile").c_str(), &sb), -1);
    EXPECT_EQ(errno, ENOENT);
    // Only the protocol's files exist: no creating files at the root.
    EXPECT_NE(write_file(p("newfile"), "x"), 0);
}

TEST_F(Errors, ConvWithoutAgentAndUnknownAgent) {
    auto c = conv_new(p("conv/clone"));
    ASSERT_FALSE(c.empty());
    const char* stage = "";
    int e = write_file(p("conv/" + c + "/in"), "hello?\n", O_WRONLY | O_TRUNC, &stage);
    EXPECT_EQ(e, EDESTADDRREQ) << "at " << stage << ": " << strerror(e);
    EXPECT_EQ(write_file(p("conv/" + c + "/ctl"), "agent nosuch\n"), ENOENT);
    EXPECT_EQ(slurp(p("conv/" + c + "/agent")), "");
    EXPECT_EQ(kv(slurp(p("conv/" + c + "/ctl")), "agent"), std::string("-"));
    // The rejected message was not recorded.
    EXPECT_EQ(slurp(p("conv/" + c + "/context")), "");
}

TEST_F(Errors, ClosedConversationIsEpipe) {
    ASSERT_NO_FATAL_FAILURE(make_agent("a", R"({"exec": ["cat"]})"));
    auto c = conv_new(p("conv/clone"));
    ASSERT_EQ(write_file(p("conv/" + c + "/ctl"), "agent a\n"), 0);
    ASSERT_EQ(write_file(p("conv/" + c + "/in"), "one\n"), 0);
    EXPECT_EQ(cat_stream("conv/" + c + "/out"), "one\n");
    ASSERT_EQ(write_file(p("conv/" + c + "/ctl"), "close\n"), 0);
    EXPECT_EQ(kv(slurp(p("conv/" + c + "/ctl")), "state"), std::string("closed"));
    EXPECT_EQ(write_file(p("conv/" + c + "/in"), "two\n", O_WRONLY | O_TRUNC), EPIPE);
    EXPECT_EQ(cat_stream("conv/" + c + "/out"), "one\n");
}

TEST_F(Errors, InboxWithoutExecIsEinvalAndInboxReadsEmpty) {
    ASSERT_NO_FATAL_FAILURE(make_agent("idle", R"({"instructions": "nothing to run"})"));
    EXPECT_EQ(send("idle", "hi\n"), EINVAL);
    EXPECT_EQ(kv(slurp(p("agents/idle/status")), "queue"), std::string("0"));
    // Reading an inbox gives an empty file (so cp -r of an agent works) and
    // never shows or consumes queued messages.
    int e = 0;
    auto got = read_file(p("agents/idle/inbox"), &e);
    ASSERT_TRUE(got) << strerror(e);
    EXPECT_EQ(*got, "");
}

TEST_F(Errors, MkdirNamesAreChecked) {
    const std::vector<std::string> bad_names = {"has space",          ".hidden",    "tilde~",
                                                std::string(65, 'a'), "semi;colon", "uni\xc3\xa9"};
    for (const auto& bad : bad_names) {
        errno = 0;
        EXPECT_EQ(mkdir(p("agents/" + bad).c_str(), 0755), -1) << bad;
        EXPECT_EQ(errno, EINVAL) << "mkdir agents/" << bad << ": " << strerror(errno);
    }
    const std::string longest(64, 'b');
    EXPECT_EQ(mkdir(p("agents/" + longest).c_str(), 0755), 0) << strerror(errno);
    EXPECT_EQ(mkdir(p("agents/A-z_0.9").c_str(), 0755), 0) << strerror(errno);
    EXPECT_EQ(mkdir(p("agents/A-z_0.9").c_str(), 0755), -1);
    EXPECT_EQ(errno, EEXIST);
    auto names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, (std::vector<std::string>{"A-z_0.9", longest}));
    // No folders elsewhere.
    EXPECT_EQ(mkdir(p("newdir").c_str(), 0755), -1);
}

TEST_F(Errors, RmdirOfBusyAgentIsEbusyUntilStopped) {
    ASSERT_NO_FATAL_FAILURE(make_agent("busy", R"({"exec": ["sh", "-c", "cat; sleep 20"]})"));
    ASSERT_EQ(send("busy", "x\n"), 0);
    ASSERT_TRUE(wait_until(
        [&] { return kv(slurp(p("agents/busy/status")), "state") == std::string("running"); }, 5));
    EXPECT_EQ(rmdir(p("agents/busy").c_str()), -1);
    EXPECT_EQ(errno, EBUSY) << strerror(errno);
    EXPECT_TRUE(list_dir(p("agents/busy")));

    const double t0 = now();
    ASSERT_EQ(write_file(p("agents/busy/ctl"), "stop\n"), 0);
    ASSERT_TRUE(wait_until(
        [&] { return kv(slurp(p("agents/busy/status")), "state") == std::string("stopped"); }, 5))
        << slurp(p("agents/busy/status"));
    EXPECT_LT(now() - t0, 3) << "stop did not kill the running turn promptly";
    auto err = slurp(p("agents/busy/err"));
    EXPECT_NE(err.find("stopped"), std::string::npos) << err;
    EXPECT_EQ(rmdir(p("agents/busy").c_str()), 0) << strerror(errno);
    auto names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_TRUE(names->empty());
    EXPECT_EQ(write_file(p("agents/busy/inbox"), "x\n"), ENOENT);
}

TEST_F(Errors, StopKeepsQueueAndStartResumes) {
    ASSERT_NO_FATAL_FAILURE(make_agent("slow", R"({"exec": ["sh", "-c", "sleep 1; cat"]})"));
    ASSERT_EQ(send("slow", "one\n"), 0);
    ASSERT_EQ(send("slow", "two\n"), 0);
    ASSERT_EQ(write_file(p("agents/slow/ctl"), "stop\n"), 0);
    auto st = slurp(p("agents/slow/ctl"));
    EXPECT_EQ(kv(st, "state"), std::string("stopped")) << st;
    EXPECT_NE(kv(st, "queue"), std::string("0")) << "queued messages stay queued: " << st;
    EXPECT_EQ(st.substr(0, st.find('\n')), "stop") << "ctl shows the run state as its command";
    // Stopped: output ends rather than waits.
    cat_stream("agents/slow/output", 5);
    ASSERT_EQ(write_file(p("agents/slow/ctl"), "start\n"), 0);
    st = slurp(p("agents/slow/ctl"));
    EXPECT_EQ(st.substr(0, st.find('\n')), "start") << st;
    auto out = cat_stream("agents/slow/output", 10);
    EXPECT_NE(out.find("two\n"), std::string::npos) << out;
}

TEST_F(Errors, SpawnAndKillThroughRootCtl) {
    ASSERT_EQ(write_file(p("ctl"), "spawn echo {\"exec\": [\"cat\"]}\n"), 0);
    auto names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, std::vector<std::string>{"echo"});
    auto cfg = nlohmann::json::parse(slurp(p("agents/echo/config")), nullptr, false);
    ASSERT_FALSE(cfg.is_discarded());
    EXPECT_EQ(cfg["exec"], nlohmann::json::array({"cat"}));
    ASSERT_EQ(send("echo", "ping\n"), 0);
    EXPECT_EQ(cat_stream("agents/echo/output"), "ping\n");
    auto ctl = slurp(p("ctl"));
    EXPECT_EQ(ctl, "echo idle 0 1\n");

    EXPECT_EQ(write_file(p("ctl"), "spawn echo\n"), EEXIST);
    EXPECT_EQ(write_file(p("ctl"), "spawn kv exec=cat\n"), 0);
    cfg = nlohmann::json::parse(slurp(p("agents/kv/config")), nullptr, false);
    ASSERT_FALSE(cfg.is_discarded());
    EXPECT_EQ(cfg["exec"], nlohmann::json::array({"cat"}));

    ASSERT_EQ(write_file(p("ctl"), "kill echo\n"), 0);
    names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, std::vector<std::string>{"kv"});
    EXPECT_EQ(write_file(p("ctl"), "kill echo\n"), ENOENT);
    EXPECT_EQ(send("echo", "x\n"), ENOENT);
    EXPECT_EQ(lines(slurp(p("ctl"))).size(), 1u);
}

TEST_F(Errors, KillStopsARunningTurn) {
    ASSERT_EQ(write_file(p("ctl"), "spawn busy {\"exec\": [\"sh\", \"-c\", \"cat; sleep 30\"]}\n"),
              0);
    ASSERT_EQ(send("busy", "x\n"), 0);
    Proc cat("cat " + shq(p("agents/busy/output")));
    ASSERT_TRUE(cat.wait_for("x\n", 5)) << cat.out();
    const double t0 = now();
    ASSERT_EQ(write_file(p("ctl"), "kill busy\n"), 0);
    EXPECT_LT(now() - t0, 3);
    EXPECT_TRUE(cat.wait_exit(5)) << "a reader of a killed agent's output must not hang";
    auto names = list_dir(p("agents"));
    ASSERT_TRUE(names);
    EXPECT_TRUE(names->empty());
}

}  // namespace
}  // namespace swarmfs::it
