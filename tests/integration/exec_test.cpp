// Exec agents: streaming stdout, stderr to err, failures and crashes.
#include <stdlib.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

using Exec = MountedSwarm;

TEST_F(Exec, StdoutStreamsAsItArrives) {
    ASSERT_NO_FATAL_FAILURE(make_agent(
        "twice", R"({"exec": ["sh", "-c", "cat >/dev/null; echo first; sleep 2; echo second"]})"));
    ASSERT_EQ(send("twice", "go\n"), 0);
    const double t0 = now();
    Proc cat("cat " + shq(p("agents/twice/output")));
    ASSERT_TRUE(cat.wait_for("first\n", 5)) << cat.out();
    const double t_first = now() - t0;
    EXPECT_LT(t_first, 1.5) << "\"first\" came only after " << t_first << " s";
    EXPECT_EQ(cat.out(), "first\n") << "\"second\" must not be there yet";
    auto st = cat.wait_exit(10);
    ASSERT_TRUE(st) << cat.out();
    const double t_end = now() - t0;
    EXPECT_EQ(*st, 0);
    EXPECT_EQ(cat.out(), "first\nsecond\n");
    EXPECT_GT(t_end, 1.5) << "cat ended before the turn could have finished";

    // The conversation's out streams the same way.
    auto n = slurp(p("conv/clone"));
    ASSERT_FALSE(n.empty());
    n.pop_back();
    ASSERT_EQ(write_file(p("conv/" + n + "/ctl"), "agent twice\n"), 0);
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), "go\n"), 0);
    const double t1 = now();
    Proc out("cat " + shq(p("conv/" + n + "/out")));
    ASSERT_TRUE(out.wait_for("first\n", 5)) << out.out();
    EXPECT_LT(now() - t1, 1.5);
    ASSERT_TRUE(out.wait_exit(10));
    EXPECT_EQ(out.out(), "first\nsecond\n");
}

TEST_F(Exec, EnvironmentAndStdin) {
    ASSERT_NO_FATAL_FAILURE(make_agent("env", R"({"exec": ["sh", "-c",
            "read line; echo \"in=$line agent=$SWARMFS_AGENT turn=${SWARMFS_TURN:+set} msg=${SWARMFS_MSG:+set} conv=${SWARMFS_CONV:-none}\""]})"));
    ASSERT_EQ(send("env", "hi there\n"), 0);
    EXPECT_EQ(cat_stream("agents/env/output"),
              "in=hi there agent=env turn=set msg=set conv=none\n");
    auto n = slurp(p("conv/clone"));
    ASSERT_FALSE(n.empty());
    n.pop_back();
    ASSERT_EQ(write_file(p("conv/" + n + "/ctl"), "agent env\n"), 0);
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), "yo\n"), 0);
    EXPECT_EQ(cat_stream("conv/" + n + "/out"),
              "in=yo agent=env turn=set msg=set conv=" + n + "\n");
}

TEST_F(Exec, StderrGoesToErrNotOutput) {
    ASSERT_NO_FATAL_FAILURE(
        make_agent("noisy", R"({"exec": ["sh", "-c", "echo oops-on-stderr >&2; cat"]})"));
    ASSERT_EQ(send("noisy", "payload\n"), 0);
    EXPECT_EQ(cat_stream("agents/noisy/output"), "payload\n");
    ASSERT_TRUE(wait_until(
        [&] { return slurp(p("agents/noisy/err")).find("oops-on-stderr") != std::string::npos; },
        5))
        << "err: " << slurp(p("agents/noisy/err"));
    auto err = slurp(p("agents/noisy/err"));
    bool line_ok = false;
    for (const auto& l : lines(err))
        if (l.find("oops-on-stderr") != std::string::npos && l.find("stderr") < l.find("oops"))
            line_ok = true;
    EXPECT_TRUE(line_ok) << "expected `TIME turn N stderr: oops-on-stderr`, got:\n" << err;
    auto status = slurp(p("agents/noisy/status"));
    EXPECT_EQ(kv(status, "failed"), std::string("0")) << status;
    EXPECT_EQ(kv(status, "turns"), std::string("1")) << status;
}

TEST_F(Exec, NonZeroExitFailsTheTurnAndTheAgentGoesOn) {
    // Fails on "fail", echoes anything else.
    ASSERT_NO_FATAL_FAILURE(make_agent(
        "picky",
        R"({"exec": ["sh", "-c", "read x; if [ \"$x\" = fail ]; then exit 3; fi; echo ok:$x"]})"));
    ASSERT_EQ(send("picky", "fail\n"), 0);
    cat_stream("agents/picky/output");
    ASSERT_TRUE(wait_idle("picky"));
    auto err = slurp(p("agents/picky/err"));
    EXPECT_NE(err.find("exit status 3"), std::string::npos) << err;
    // Supervision: the crash restarts the agent and the message runs once
    // more; crashing again, it is parked as failed, and said so.
    EXPECT_NE(err.find("message 1 parked as failed"), std::string::npos) << err;
    auto status = slurp(p("agents/picky/status"));
    EXPECT_EQ(kv(status, "failed"), std::string("2")) << status;
    EXPECT_EQ(kv(status, "restarts"), std::string("2")) << status;
    EXPECT_EQ(kv(status, "parked"), std::string("1")) << status;
    EXPECT_EQ(kv(status, "state"), std::string("idle")) << status;
    auto last = kv(status, "last_error");
    ASSERT_TRUE(last) << status;
    EXPECT_NE(last->find("exit status 3"), std::string::npos) << status;
    auto root = slurp(p("status"));
    EXPECT_EQ(kv(root, "failed"), std::string("2")) << root;

    // The next message runs.
    ASSERT_EQ(send("picky", "good\n"), 0);
    EXPECT_EQ(cat_stream("agents/picky/output"), "ok:good\n");
    status = slurp(p("agents/picky/status"));
    EXPECT_EQ(kv(status, "failed"), std::string("2")) << status;
    EXPECT_EQ(kv(status, "state"), std::string("idle")) << status;
}

TEST_F(Exec, FailedTurnInConversationContext) {
    ASSERT_NO_FATAL_FAILURE(
        make_agent("bad", R"({"exec": ["sh", "-c", "cat >/dev/null; exit 3"]})"));
    auto n = slurp(p("conv/clone"));
    ASSERT_FALSE(n.empty());
    n.pop_back();
    ASSERT_EQ(write_file(p("conv/" + n + "/ctl"), "agent bad\n"), 0);
    ASSERT_EQ(write_file(p("conv/" + n + "/in"), "q\n"), 0);
    cat_stream("conv/" + n + "/out");
    ASSERT_TRUE(wait_idle("bad"));
    auto ctx = slurp(p("conv/" + n + "/context"));
    bool saw_error = false;
    for (const auto& l : lines(ctx)) {
        auto j = nlohmann::json::parse(l, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << l;
        if (j.value("role", "") == "error") {
            saw_error = true;
            EXPECT_EQ(j.value("agent", ""), "bad") << l;
            EXPECT_NE(j.value("content", "").find("exit status 3"), std::string::npos) << l;
        }
    }
    EXPECT_TRUE(saw_error) << ctx;
}

TEST_F(Exec, CrashBySignalIsReportedAndOthersKeepWorking) {
    ASSERT_NO_FATAL_FAILURE(make_agent("crash", R"({"exec": ["sh", "-c", "kill -SEGV $$"]})"));
    ASSERT_NO_FATAL_FAILURE(make_agent("slowcat", R"({"exec": ["sh", "-c", "sleep 1; cat"]})"));
    ASSERT_EQ(send("slowcat", "one\n"), 0);
    ASSERT_EQ(send("crash", "boom\n"), 0);
    ASSERT_EQ(send("slowcat", "two\n"), 0);
    cat_stream("agents/crash/output");
    ASSERT_TRUE(wait_idle("crash"));
    auto err = slurp(p("agents/crash/err"));
    EXPECT_NE(err.find("signal"), std::string::npos) << err;
    EXPECT_NE(err.find("11"), std::string::npos) << "expected `killed by signal 11`: " << err;
    auto status = slurp(p("agents/crash/status"));
    EXPECT_EQ(kv(status, "failed"), std::string("2"))
        << "run once more after the crash: " << status;

    EXPECT_EQ(cat_stream("agents/slowcat/output"), "one\ntwo\n");
    auto s2 = slurp(p("agents/slowcat/status"));
    EXPECT_EQ(kv(s2, "turns"), std::string("2")) << s2;
    EXPECT_EQ(kv(s2, "failed"), std::string("0")) << s2;

    // Crash again; the mount survives and answers.
    ASSERT_EQ(send("crash", "boom\n"), 0);
    cat_stream("agents/crash/output");
    struct stat sb {};
    EXPECT_EQ(stat(p("ctl").c_str(), &sb), 0) << strerror(errno);
    EXPECT_TRUE(mounted());
    EXPECT_EQ(kill(server_pid(), 0), 0) << "server died";
    ASSERT_TRUE(wait_idle("crash"));
    status = slurp(p("agents/crash/status"));
    EXPECT_EQ(kv(status, "failed"), std::string("4")) << status;
    EXPECT_EQ(kv(status, "parked"), std::string("2")) << status;
}

TEST_F(Exec, AgentsRunInParallel) {
    ASSERT_NO_FATAL_FAILURE(make_agent("a", R"({"exec": ["sh", "-c", "sleep 1.5; cat"]})"));
    ASSERT_NO_FATAL_FAILURE(make_agent("b", R"({"exec": ["sh", "-c", "sleep 1.5; cat"]})"));
    const double t0 = now();
    ASSERT_EQ(send("a", "A\n"), 0);
    ASSERT_EQ(send("b", "B\n"), 0);
    EXPECT_EQ(cat_stream("agents/a/output"), "A\n");
    EXPECT_EQ(cat_stream("agents/b/output"), "B\n");
    EXPECT_LT(now() - t0, 2.8) << "two agents' turns did not overlap";
}

TEST_F(Exec, OneTurnAtATimePerAgentInOrder) {
    ASSERT_NO_FATAL_FAILURE(make_agent(
        "q", R"({"exec": ["sh", "-c", "read x; echo start-$x; sleep 0.3; echo end-$x"]})"));
    for (int i = 1; i <= 3; ++i) ASSERT_EQ(send("q", "m" + std::to_string(i) + "\n"), 0);
    EXPECT_EQ(cat_stream("agents/q/output"),
              "start-m1\nend-m1\nstart-m2\nend-m2\nstart-m3\nend-m3\n");
    EXPECT_EQ(kv(slurp(p("agents/q/status")), "turns"), std::string("3"));
}

// An exec tool whose program lives outside the swarm file's folder (here a
// folder under /tmp, which the sandbox has its own of): with the folder in
// the entry's "read" the sandboxed call runs it; without, the call fails
// saying the program is not there, and the server said at start why.
class ToolOutsideTheWorkdir : public MountedSwarm {
  protected:
    ToolOutsideTheWorkdir() {
        char tmpl[] = "/tmp/swarmfs-it-tooldir-XXXXXX";
        tools_ = mkdtemp(tmpl);
        chmod(tools_.c_str(), 0755);  // the tool runs as nobody
        std::string script = tools_ + "/hello.sh";
        write_file(script, "#!/bin/sh\ncat >/dev/null\necho hello from $(dirname \"$0\")\n");
        chmod(script.c_str(), 0755);
    }
    ~ToolOutsideTheWorkdir() override { sh("rm -rf " + shq(tools_)); }
    std::string swarm_config() const override {
        std::string hello = "\"" + tools_ + "/hello.sh\"";
        return R"({"tools": {
            "seen": {"exec": [)" +
               hello + R"(], "read": [")" + tools_ + R"("]},
            "unseen": {"exec": [)" +
               hello + R"(]}}})";
    }
    std::string call(const std::string& tool) {
        return sh("exec 3<>" + shq(p("tools/" + tool + "/call")) + "; printf '{}' >&3; cat <&3")
            .out;
    }
    std::string tools_;
};

TEST_F(ToolOutsideTheWorkdir, ItsReadFolderIsShownToTheSandboxedCall) {
    EXPECT_EQ(call("seen"), "hello from " + tools_ + "\n");
    std::string unseen = call("unseen");
    EXPECT_NE(unseen.find("cannot run " + tools_ + "/hello.sh: No such file or directory"),
              std::string::npos)
        << unseen;
    std::string log = server_log();
    EXPECT_NE(log.find("tools.unseen: " + tools_ + "/hello.sh is outside the workdir"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("tools.seen:"), std::string::npos) << log;
}

}  // namespace
}  // namespace swarmfs::it
