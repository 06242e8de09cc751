#include "agents/exec_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <future>
#include <mutex>
#include <type_traits>

#include "test_util.h"

using namespace swarmfs;
using namespace swarmfs::test;

namespace {

// What a child said and how it ended, filled on the loop thread and read
// from the test thread.
struct Seen {
    std::mutex mu;
    std::string out, err;
    std::vector<ExitInfo> exits;
    std::string get_out() {
        std::lock_guard lk(mu);
        return out;
    }
    size_t exit_count() {
        std::lock_guard lk(mu);
        return exits.size();
    }
};

ExecSpec spec_of(std::vector<std::string> argv) {
    ExecSpec s;
    s.argv = std::move(argv);
    s.env = {"PATH=/usr/bin:/bin"};
    return s;
}

// Alive and not a zombie.
bool running(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return false;
    size_t paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

}  // namespace

// A loop, what the child said, and the process under test, which is
// dropped on the loop thread (as its owners do) before the loop stops.
class ExecConversationTest : public ::testing::Test {
  protected:
    // Runs fn on the loop thread and waits for it.
    template <class F>
    auto on_loop(F fn) {
        std::promise<decltype(fn())> done;
        loop.post([&] {
            if constexpr (std::is_void_v<decltype(fn())>) {
                fn();
                done.set_value();
            } else {
                done.set_value(fn());
            }
        });
        return done.get_future().get();
    }

    ~ExecConversationTest() override {
        on_loop([&] { proc.reset(); });
    }

    // Starts spec; on success the process is in proc.
    Result<std::shared_ptr<ExecProcess>> start(ExecSpec spec) {
        auto r = on_loop([&] {
            ExecCallbacks cb;
            cb.on_stdout = [seen = seen](std::string_view d) {
                std::lock_guard lk(seen->mu);
                seen->out.append(d);
            };
            cb.on_stderr = [seen = seen](std::string_view d) {
                std::lock_guard lk(seen->mu);
                seen->err.append(d);
            };
            cb.on_exit = [seen = seen](const ExitInfo& e) {
                std::lock_guard lk(seen->mu);
                seen->exits.push_back(e);
            };
            return ExecProcess::start(loop, std::move(spec), std::move(cb), ExecMode::conversation);
        });
        if (r) proc = *r;
        return r;
    }

    // The one exit reported, once it came.
    ExitInfo wait_exit() {
        EXPECT_TRUE(eventually([&] { return seen->exit_count() == 1; }, 5)) << "no exit reported";
        std::lock_guard lk(seen->mu);
        return seen->exits.empty() ? ExitInfo{} : seen->exits[0];
    }

    EventLoop loop;
    std::shared_ptr<Seen> seen = std::make_shared<Seen>();
    std::shared_ptr<ExecProcess> proc;
};

TEST_F(ExecConversationTest, AConversationOverPipes) {
    ExecSpec spec = spec_of({"cat"});
    spec.input = "first\n";
    auto p = start(std::move(spec));
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_TRUE(eventually([&] { return seen->get_out() == "first\n"; }));
    EXPECT_TRUE(on_loop([&] { return proc->write("second\n"); }));
    ASSERT_TRUE(eventually([&] { return seen->get_out() == "first\nsecond\n"; }));
    EXPECT_EQ(seen->exit_count(), 0u);
    on_loop([&] { proc->close_stdin(); });  // cat's EOF
    ExitInfo e = wait_exit();
    EXPECT_TRUE(e.ok);
    EXPECT_EQ(e.reason, "exit status 0");
    EXPECT_TRUE(on_loop([&] { return proc->exited(); }));
    EXPECT_FALSE(on_loop([&] { return proc->write("late\n"); }));
}

TEST_F(ExecConversationTest, WhenTheLeaderExitsItsGroupGoesToo) {
    // The grandchild keeps stdout open; it must not keep the server half alive.
    auto p = start(spec_of({"sh", "-c", "sleep 30 & echo $!; read x; exit 3"}));
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_TRUE(eventually([&] { return seen->get_out().find('\n') != std::string::npos; }));
    pid_t grandchild = std::stoi(seen->get_out());
    EXPECT_TRUE(running(grandchild));
    on_loop([&] { return proc->write("go\n"); });
    EXPECT_EQ(wait_exit().reason, "exit status 3");
    EXPECT_TRUE(eventually([&] { return !running(grandchild); }));
}

TEST_F(ExecConversationTest, KillIsReportedWithTheSignal) {
    auto p = start(spec_of({"sleep", "30"}));
    ASSERT_TRUE(p) << p.error().message;
    on_loop([&] { proc->kill(); });
    ExitInfo e = wait_exit();
    EXPECT_FALSE(e.ok);
    EXPECT_EQ(e.reason, "killed by signal 9 (Killed)");
    on_loop([&] { proc->kill(); });  // after the reap: a no-op, never a signal to a reused pid
}

TEST_F(ExecConversationTest, DestroyingItKillsAndReapsTheChild) {
    auto p = start(spec_of({"sleep", "30"}));
    ASSERT_TRUE(p) << p.error().message;
    pid_t pid = proc->pid();
    EXPECT_TRUE(running(pid));
    p = make_error(0, "dropped");
    auto t0 = std::chrono::steady_clock::now();
    on_loop([&] { proc.reset(); });  // the last reference
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    // Reaped, not left a zombie: it is no longer our child at all.
    pid_t got = waitpid(pid, nullptr, WNOHANG);
    int err = errno;
    EXPECT_EQ(got, -1);
    EXPECT_EQ(err, ECHILD);
    EXPECT_EQ(seen->exit_count(), 0u);  // no callback from a destroyed object
}

TEST_F(ExecConversationTest, StartFailuresCarryAnErrnoAndSayWhy) {
    auto empty = start(spec_of({}));
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().code, EINVAL);

    auto missing = start(spec_of({"no-such-command-swarmfs"}));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ENOENT);
    EXPECT_EQ(missing.error().message, "command not found: no-such-command-swarmfs");

    ExecSpec in_nowhere = spec_of({"true"});
    in_nowhere.cwd = "/no/such/dir-swarmfs";
    auto nowhere = start(in_nowhere);
    ASSERT_FALSE(nowhere);
    EXPECT_EQ(nowhere.error().code, ENOENT);
    EXPECT_EQ(nowhere.error().message,
              "cannot run true: working directory /no/such/dir-swarmfs: No such file or directory");

    // Executable by its mode, not by its contents: execve itself fails, in
    // the child, and the parent still learns why.
    TempDir dir;
    std::string bogus = dir.file("bogus");
    std::ofstream(bogus) << "\x7f"
                            "ELF not really";
    chmod(bogus.c_str(), 0755);
    auto bad = start(spec_of({bogus}));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, EIO);
    EXPECT_EQ(bad.error().message, "cannot run " + bogus + ": Exec format error");
    EXPECT_EQ(seen->exit_count(), 0u);
}
