// Waiting reads with O_NONBLOCK (EAGAIN) and poll() readiness on streams.
#include <poll.h>
#include <unistd.h>

#include "tests/support/mount_fixture.h"

namespace swarmfs::it {
namespace {

class Streams : public MountedSwarm {
  protected:
    void TearDown() override {
        if (!go_.empty()) write_file(go_, "");
        MountedSwarm::TearDown();
    }
    // An agent that echoes its message, then waits for the file GO.
    void make_gated(const std::string& name) {
        go_ = dir() + "/GO";
        ASSERT_NO_FATAL_FAILURE(make_agent(name, R"({"exec": ["sh", "-c", "cat; while [ ! -e )" +
                                                     go_ +
                                                     R"( ]; do sleep 0.05; done; echo done"]})"));
    }
    std::string go_;
};

TEST_F(Streams, NonblockingReadAtEndOfBusyOutputGivesEagain) {
    ASSERT_NO_FATAL_FAILURE(make_gated("busy"));
    ASSERT_EQ(send("busy", "x\n"), 0);
    int fd = open(p("agents/busy/output").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(fd, 0) << strerror(errno);
    std::string got;
    char buf[256];
    // Collect the data that is there (it may take a moment to arrive).
    ASSERT_TRUE(wait_until(
        [&] {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0) got.append(buf, static_cast<size_t>(r));
            return got == "x\n";
        },
        10, 0.05))
        << "got: " << got;
    const double t0 = now();
    errno = 0;
    ssize_t r = read(fd, buf, sizeof buf);
    const int e = errno;
    const double took = now() - t0;
    EXPECT_EQ(r, -1);
    EXPECT_EQ(e, EAGAIN) << strerror(e);
    EXPECT_LT(took, 0.5) << "a O_NONBLOCK read waited " << took << " s";

    // After the turn: the rest, then EOF (0), not EAGAIN.
    ASSERT_EQ(write_file(go_, ""), 0);
    got.clear();
    ssize_t last = -1;
    ASSERT_TRUE(wait_until(
        [&] {
            last = read(fd, buf, sizeof buf);
            if (last > 0) got.append(buf, static_cast<size_t>(last));
            return last == 0;
        },
        10, 0.05))
        << "got: " << got << " last read " << last << " errno " << strerror(errno);
    EXPECT_EQ(got, "done\n");
    close(fd);
}

TEST_F(Streams, NonblockingReadOfIdleOutputIsEof) {
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    ASSERT_EQ(send("upper", "abc\n"), 0);
    EXPECT_EQ(cat_stream("agents/upper/output"), "ABC\n");
    ASSERT_TRUE(wait_idle("upper"));
    int fd = open(p("agents/upper/output").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    char buf[64];
    EXPECT_EQ(read(fd, buf, sizeof buf), 4);
    EXPECT_EQ(read(fd, buf, sizeof buf), 0) << strerror(errno);
    close(fd);
}

TEST_F(Streams, PollBecomesReadableWhenTheTurnWrites) {
    ASSERT_NO_FATAL_FAILURE(make_agent("slow", R"({"exec": ["sh", "-c", "sleep 1; cat"]})"));
    ASSERT_EQ(send("slow", "late\n"), 0);
    const double t0 = now();
    int fd = open(p("agents/slow/output").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << strerror(errno);
    pollfd pfd{fd, POLLIN, 0};
    int n = poll(&pfd, 1, 0);
    ASSERT_LT(now() - t0, 0.9) << "setup too slow for the 1 s window";
    EXPECT_EQ(n, 0) << "output polled readable before the turn wrote anything (revents "
                    << pfd.revents << ")";

    pfd.revents = 0;
    n = poll(&pfd, 1, 5000);
    const double at = now() - t0;
    ASSERT_EQ(n, 1) << "no POLLIN within 5 s";
    EXPECT_TRUE(pfd.revents & POLLIN);
    EXPECT_GT(at, 0.5) << "readable too early";
    char buf[64];
    ssize_t r = read(fd, buf, sizeof buf);
    ASSERT_GT(r, 0);
    EXPECT_EQ(std::string(buf, static_cast<size_t>(r)), "late\n");

    // Then EOF once idle: poll reports readable and read returns 0.
    pfd.revents = 0;
    n = poll(&pfd, 1, 5000);
    EXPECT_EQ(n, 1);
    EXPECT_TRUE(pfd.revents & (POLLIN | POLLHUP));
    EXPECT_EQ(read(fd, buf, sizeof buf), 0);
    close(fd);
}

TEST_F(Streams, PollOnLogWakesOnNewEvent) {
    ASSERT_NO_FATAL_FAILURE(make_agent("upper", R"({"exec": ["tr", "a-z", "A-Z"]})"));
    int fd = open(p("log").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(fd, 0) << strerror(errno);
    char buf[65536];
    // Drain what is there.
    ASSERT_TRUE(wait_until(
        [&] {
            ssize_t r = read(fd, buf, sizeof buf);
            return r < 0 && errno == EAGAIN;
        },
        5))
        << "log with O_NONBLOCK never said EAGAIN at its end";
    pollfd pfd{fd, POLLIN, 0};
    EXPECT_EQ(poll(&pfd, 1, 200), 0) << "log polled readable at its end";
    ASSERT_EQ(send("upper", "x\n"), 0);
    pfd.revents = 0;
    EXPECT_EQ(poll(&pfd, 1, 3000), 1) << "log not readable after a new event";
    ssize_t r = read(fd, buf, sizeof buf);
    ASSERT_GT(r, 0);
    EXPECT_NE(std::string(buf, static_cast<size_t>(r)).find("\"kind\""), std::string::npos);
    close(fd);
}

}  // namespace
}  // namespace swarmfs::it
