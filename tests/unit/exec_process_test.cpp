#include "agents/exec_process.h"

#include <gtest/gtest.h>

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
        std::function<void(std::shared_ptr<ExecProcess>)> after_start = nullptr) {
    EventLoop loop;
    std::promise<Run> done;
    auto result = std::make_shared<Run>();
    std::shared_ptr<ExecProcess> keep;
    loop.post([&] {
        ExecSpec spec;
        spec.argv = std::move(argv);
        spec.env = {"PATH=/usr/bin:/bin"};
        spec.input = std::move(input);
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
