#include "agents/exec_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <future>

#include "test_util.h"

using namespace swarmfs;

namespace {
struct Run {
    std::string out, err;
    ExitInfo exit;
};

// Runs argv with input on a fresh loop and collects everything.
Run run(std::vector<std::string> argv, std::string input = "",
        std::function<void(std::shared_ptr<ExecProcess>)> after_start = nullptr,
        std::string cwd = "") {
    EventLoop loop;
    std::promise<Run> done;
    auto result = std::make_shared<Run>();
    std::shared_ptr<ExecProcess> keep;
    loop.post([&] {
        ExecSpec spec;
        spec.argv = std::move(argv);
        spec.env = {"PATH=/usr/bin:/bin"};
        spec.input = std::move(input);
        spec.cwd = std::move(cwd);
        ExecCallbacks cb;
        cb.on_stdout = [result](std::string_view d) { result->out.append(d); };
        cb.on_stderr = [result](std::string_view d) { result->err.append(d); };
        cb.on_exit = [result, &done](const ExitInfo& e) {
            result->exit = e;
            done.set_value(*result);
        };
        auto p = ExecProcess::start(loop, std::move(spec), std::move(cb));
        if (!p) {
            result->exit.reason = p.error().message;
            done.set_value(*result);
            return;
        }
        keep = *p;
        if (after_start) after_start(keep);
    });
    auto f = done.get_future();
    EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    Run r = f.get();
    loop.post([&] { keep.reset(); });
    loop.stop();
    return r;
}
}  // namespace

TEST(ExecProcess, MessageOnStdinReplyOnStdout) {
    auto r = run({"tr", "a-z", "A-Z"}, "hello\n");
    EXPECT_TRUE(r.exit.ok) << r.exit.reason;
    EXPECT_EQ(r.out, "HELLO\n");
    EXPECT_EQ(r.err, "");
}

TEST(ExecProcess, LargeInputAndOutputDoNotDeadlock) {
    std::string big(1 << 20, 'x');
    auto r = run({"cat"}, big);
    EXPECT_TRUE(r.exit.ok);
    EXPECT_EQ(r.out.size(), big.size());
}

TEST(ExecProcess, StderrAndExitStatusAreReported) {
    auto r = run({"sh", "-c", "echo out; echo oops >&2; exit 3"});
    EXPECT_FALSE(r.exit.ok);
    EXPECT_EQ(r.exit.reason, "exit status 3");
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "oops\n");
}

TEST(ExecProcess, CrashIsReportedWithTheSignal) {
    auto r = run({"sh", "-c", "kill -SEGV $$"});
    EXPECT_FALSE(r.exit.ok);
    EXPECT_NE(r.exit.reason.find("signal 11"), std::string::npos) << r.exit.reason;
}

TEST(ExecProcess, UnknownCommandFailsToStart) {
    auto r = run({"no-such-command-swarmfs"});
    EXPECT_FALSE(r.exit.ok);
    EXPECT_NE(r.exit.reason.find("command not found"), std::string::npos) << r.exit.reason;
}

TEST(ExecProcess, KillEndsTheWholeProcessGroup) {
    auto start = std::chrono::steady_clock::now();
    auto r = run({"sh", "-c", "sleep 30 & sleep 30; wait"}, "",
                 [](std::shared_ptr<ExecProcess> p) { p->kill(); });
    EXPECT_FALSE(r.exit.ok);
    EXPECT_NE(r.exit.reason.find("signal 9"), std::string::npos) << r.exit.reason;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ExecProcess, EmptyCommandFailsToStart) {
    auto r = run({});
    EXPECT_FALSE(r.exit.ok);
    EXPECT_EQ(r.exit.reason, "empty exec command");
}

TEST(ExecProcess, RunsInTheGivenDirectory) {
    auto r = run({"pwd"}, "", nullptr, "/usr");
    EXPECT_TRUE(r.exit.ok) << r.exit.reason;
    EXPECT_EQ(r.out, "/usr\n");
}

TEST(ExecProcess, AMissingWorkingDirectoryIsNamed) {
    auto r = run({"pwd"}, "", nullptr, "/no/such/dir-swarmfs");
    EXPECT_FALSE(r.exit.ok);
    EXPECT_EQ(r.exit.reason,
              "cannot run pwd: working directory /no/such/dir-swarmfs: No such file or directory");
}

// The server holds descriptors without close-on-exec (FUSE, sockets a
// library opened); none of them may reach an agent's command.
TEST(ExecProcess, NoDescriptorOfTheServerLeaksIntoTheChild) {
    int fd = open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
    ASSERT_GE(fd, 0);
    ASSERT_EQ(dup2(fd, 57), 57);
    close(fd);
    auto r = run({"sh", "-c", "[ -e /proc/self/fd/57 ] && echo leaked || echo clean"});
    close(57);
    EXPECT_TRUE(r.exit.ok) << r.exit.reason;
    EXPECT_EQ(r.out, "clean\n");
}

TEST(ExecProcess, TheChildStartsWithDefaultSignals) {
    // The server ignores SIGPIPE and may block signals in its threads; a
    // command must not inherit either.
    struct sigaction ign {
    }, old{};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    auto r = run({"sh", "-c", "grep -E '^(SigBlk|SigIgn)' /proc/self/status"});
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    sigaction(SIGPIPE, &old, nullptr);
    EXPECT_TRUE(r.exit.ok) << r.exit.reason;
    EXPECT_NE(r.out.find("SigBlk:\t0000000000000000"), std::string::npos) << r.out;
    // SIGPIPE is signal 13: bit 12 of SigIgn.
    size_t ign_at = r.out.find("SigIgn:\t");
    ASSERT_NE(ign_at, std::string::npos) << r.out;
    unsigned long long ignored = std::stoull(r.out.substr(ign_at + 8, 16), nullptr, 16);
    EXPECT_EQ(ignored & (1ull << 12), 0u) << r.out;
}

TEST(ExecProcess, DestroyingARunningOneKillsAndReapsIt) {
    EventLoop loop;
    std::promise<pid_t> started;
    loop.post([&] {
        ExecSpec spec;
        spec.argv = {"sleep", "30"};
        spec.env = {"PATH=/usr/bin:/bin"};
        auto p = ExecProcess::start(loop, std::move(spec), {});
        started.set_value(p ? (*p)->pid() : -1);
        // p, the only reference, goes out of scope here.
    });
    pid_t pid = started.get_future().get();
    ASSERT_GT(pid, 0);
    std::promise<void> flushed;
    loop.post([&] { flushed.set_value(); });
    flushed.get_future().get();
    pid_t got = waitpid(pid, nullptr, WNOHANG);
    int err = errno;
    EXPECT_EQ(got, -1);
    EXPECT_EQ(err, ECHILD);
}
