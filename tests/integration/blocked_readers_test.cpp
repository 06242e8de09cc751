// Many readers parked at the end of a busy stream must not hold server
// threads: the rest of the tree keeps answering, and they all get the data and
// EOF when the turn finishes.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

using BlockedReaders = MountedSwarm;

struct ReaderState {
    std::string path;
    std::atomic<int>* first_data = nullptr;
    std::string got;
    int error = 0;
    bool eof = false;
    std::atomic<bool> done{false};
};

void* reader_main(void* arg) {
    auto* st = static_cast<ReaderState*>(arg);
    int fd = open(st->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st->error = errno;
        st->first_data->fetch_add(1);
        st->done = true;
        return nullptr;
    }
    char buf[4096];
    bool counted = false;
    while (true) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
            st->got.append(buf, static_cast<size_t>(r));
            if (!counted) {
                counted = true;
                st->first_data->fetch_add(1);
            }
            continue;
        }
        if (r == 0) {
            st->eof = true;
        } else {
            st->error = errno;
        }
        break;
    }
    if (!counted) st->first_data->fetch_add(1);
    close(fd);
    st->done = true;
    return nullptr;
}

// Times `cmd` through the mount.
double timed(const std::string& cmd, ShResult* out = nullptr) {
    auto r = sh(cmd, 10);
    if (out) *out = r;
    return r.timed_out ? 1e9 : r.seconds;
}

TEST_F(BlockedReaders, ThousandReadersParkedThenAllGetDataAndEof) {
    constexpr int kReaders = 1000;
    const std::string go = dir() + "/GO";
    ASSERT_NO_FATAL_FAILURE(make_agent("busy", R"({"exec": ["sh", "-c", "cat; while [ ! -e )" + go +
                                                   R"( ]; do sleep 0.05; done; echo done"]})"));
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    ASSERT_EQ(send("busy", "x\n"), 0);
    ASSERT_TRUE(wait_until(
        [&] {
            struct stat sb {};
            return stat(p("agents/busy/output").c_str(), &sb) == 0 && sb.st_size >= 2;
        },
        10))
        << "no output from the busy agent";

    std::atomic<int> first{0};
    std::vector<std::unique_ptr<ReaderState>> states;
    std::vector<pthread_t> threads;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    for (int i = 0; i < kReaders; ++i) {
        auto st = std::make_unique<ReaderState>();
        st->path = p("agents/busy/output");
        st->first_data = &first;
        pthread_t t;
        ASSERT_EQ(pthread_create(&t, &attr, reader_main, st.get()), 0) << "thread " << i;
        threads.push_back(t);
        states.push_back(std::move(st));
    }
    pthread_attr_destroy(&attr);
    const bool all_started = wait_until([&] { return first.load() == kReaders; }, 20);
    EXPECT_TRUE(all_started) << first.load() << " of " << kReaders << " readers got data";
    sleep_for(0.5);  // let them park at the end of the stream

    int finished_early = 0;
    for (auto& s : states) finished_early += s->done ? 1 : 0;
    EXPECT_EQ(finished_early, 0) << "readers must wait while the turn runs";

    // While they wait, the rest of the tree answers promptly.
    ShResult r;
    EXPECT_LT(timed("ls " + shq(p("agents")), &r), 1.5) << "ls agents was slow";
    EXPECT_EQ(r.out, "busy\nupper\n");
    EXPECT_LT(timed("cat " + shq(p("status")), &r), 1.5) << "cat status was slow";
    EXPECT_EQ(kv(r.out, "running"), std::string("1")) << r.out;
    EXPECT_LT(timed("cat " + shq(p("agents/busy/status")), &r), 1.5);
    EXPECT_EQ(kv(r.out, "state"), std::string("running")) << r.out;
    // Another agent still runs a turn.
    ASSERT_EQ(send("upper", "still here\n"), 0);
    EXPECT_EQ(cat_stream("agents/upper/output", 5), "STILL HERE\n");

    // End the turn: everyone gets the rest and EOF.
    ASSERT_EQ(write_file(go, ""), 0);
    const bool all_done = wait_until(
        [&] {
            for (auto& s : states)
                if (!s->done) return false;
            return true;
        },
        20, 0.05);
    EXPECT_TRUE(all_done) << "not every reader got EOF after the turn finished";
    if (!all_done) kill9();  // unblocks the stragglers (ENOTCONN) so we can join
    for (auto t : threads) pthread_join(t, nullptr);
    if (!all_done) return;
    int bad = 0;
    for (auto& s : states) {
        if (s->got != "x\ndone\n" || !s->eof || s->error) {
            if (++bad <= 5)
                ADD_FAILURE() << "reader got \"" << s->got << "\" eof=" << s->eof
                              << " error=" << strerror(s->error);
        }
    }
    EXPECT_EQ(bad, 0);
}

TEST_F(BlockedReaders, KilledReadersAreCleanedUp) {
    constexpr int kReaders = 200;
    ASSERT_NO_FATAL_FAILURE(make_agent("busy", R"({"exec": ["sh", "-c", "cat; sleep 30"]})"));
    ASSERT_EQ(send("busy", "x\n"), 0);
    std::vector<std::unique_ptr<Proc>> cats;
    for (int i = 0; i < kReaders; ++i)
        cats.push_back(std::make_unique<Proc>("cat " + shq(p("agents/busy/output"))));
    for (auto& c : cats) ASSERT_TRUE(c->wait_for("x\n", 10)) << c->out();
    sleep_for(0.3);
    for (auto& c : cats) EXPECT_FALSE(c->exited());

    const double t0 = now();
    for (auto& c : cats) c->signal(SIGKILL);
    int stuck = 0;
    for (auto& c : cats)
        if (!c->wait_exit(std::max(0.1, t0 + 3 - now()))) ++stuck;
    EXPECT_EQ(stuck, 0) << stuck << " killed readers still blocked after 3 s "
                        << "(their FUSE reads were not answered after the interrupt)";

    // The server is fine afterwards.
    ShResult r = sh("cat " + shq(p("agents/busy/status")), 5);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(kv(r.out, "state"), std::string("running")) << r.out;
    ASSERT_EQ(write_file(p("agents/busy/ctl"), "stop\n"), 0);
    // Stopped: output ends (EOF) instead of waiting.
    cat_stream("agents/busy/output", 5);
}

}  // namespace
}  // namespace swarmfs::it
