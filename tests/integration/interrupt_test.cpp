// Ctrl-C / signals end a read that waits at the end of a stream (FUSE
// interrupt answered with EINTR).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

class Interrupt : public MountedSwarm {
  protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(MountedSwarm::SetUp());
        if (IsSkipped()) return;
        go_ = dir() + "/GO";
        ASSERT_NO_FATAL_FAILURE(make_agent("busy", R"({"exec": ["sh", "-c", "cat; while [ ! -e )" +
                                                       go_ +
                                                       R"( ]; do sleep 0.05; done; echo done"]})"));
        ASSERT_EQ(send("busy", "x\n"), 0);
    }
    void TearDown() override {
        if (!go_.empty()) write_file(go_, "");
        MountedSwarm::TearDown();
    }
    std::string go_;
};

TEST_F(Interrupt, CatKilledWithSigintEndsPromptly) {
    Proc cat("cat " + shq(p("agents/busy/output")));
    ASSERT_TRUE(cat.wait_for("x\n", 10)) << cat.out();
    sleep_for(0.3);
    ASSERT_FALSE(cat.exited()) << "cat ended while the turn was running: " << cat.out();
    const double t0 = now();
    cat.signal(SIGINT);
    auto st = cat.wait_exit(5);
    const double took = now() - t0;
    ASSERT_TRUE(st) << "cat still blocked 5 s after SIGINT";
    EXPECT_LT(took, 2.0) << "cat took " << took << " s to end after SIGINT";
    EXPECT_EQ(*st, 128 + SIGINT);

    // The server is unharmed: the turn goes on and finishes for a new reader.
    Proc cat2("cat " + shq(p("agents/busy/output")));
    ASSERT_TRUE(cat2.wait_for("x\n", 5)) << cat2.out();
    ASSERT_EQ(write_file(go_, ""), 0);
    auto st2 = cat2.wait_exit(10);
    ASSERT_TRUE(st2) << "second reader did not get EOF: " << cat2.out();
    EXPECT_EQ(*st2, 0);
    EXPECT_EQ(cat2.out(), "x\ndone\n");
}

void on_usr1(int) {}

struct Waiter {
    std::string path;
    std::atomic<bool> parked{false};
    std::atomic<bool> done{false};
    ssize_t result = 0;
    int error = 0;
    std::string got;
};

void* waiter_main(void* arg) {
    auto* w = static_cast<Waiter*>(arg);
    int fd = open(w->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        w->result = -1;
        w->error = errno;
        w->done = true;
        return nullptr;
    }
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof buf);  // "x\n"
    if (r > 0) w->got.assign(buf, static_cast<size_t>(r));
    w->parked = true;
    r = read(fd, buf, sizeof buf);  // waits at the end
    w->result = r;
    w->error = r < 0 ? errno : 0;
    if (r > 0) w->got.append(buf, static_cast<size_t>(r));
    close(fd);
    w->done = true;
    return nullptr;
}

TEST_F(Interrupt, ReadInThreadReturnsEintrOnSignalWithoutRestart) {
    struct sigaction sa {
    }, old{};
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART
    ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);

    Waiter w;
    w.path = p("agents/busy/output");
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, nullptr, waiter_main, &w), 0);
    ASSERT_TRUE(wait_until([&] { return w.parked.load() || w.done.load(); }, 10));
    EXPECT_EQ(w.got, "x\n");
    sleep_for(0.3);
    EXPECT_FALSE(w.done) << "read returned " << w.result << " while the turn was running";

    const double t0 = now();
    // Repeat the signal in case the first one lands before read() blocks.
    bool ended = false;
    while (now() - t0 < 2.0) {
        pthread_kill(t, SIGUSR1);
        if (wait_until([&] { return w.done.load(); }, 0.3)) {
            ended = true;
            break;
        }
    }
    EXPECT_TRUE(ended) << "read() still blocked 2 s after SIGUSR1";
    if (!ended) kill9();  // unblock the thread so it can be joined
    pthread_join(t, nullptr);
    sigaction(SIGUSR1, &old, nullptr);
    if (!ended) return;
    EXPECT_EQ(w.result, -1);
    EXPECT_EQ(w.error, EINTR) << strerror(w.error);
}

}  // namespace
}  // namespace swarmfs::it
