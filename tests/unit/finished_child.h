#pragma once
// A spawned child read to its end, for the tests of spawn() and of the
// sandbox: what it wrote, how it ended, and whether all that came in time.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "agents/spawn.h"

namespace swarmfs::test {

struct Finished {
    std::string out, err;  // the first MiB of each
    ExitInfo exit;
    bool complete = false;  // EOF on both pipes and the exit, in time
    double seconds = 0;
};

// Closes stdin, reads stdout and stderr to EOF and waits for the exit,
// within `limit`; past it the whole group is killed (a sandbox dies with
// its bwrap) and complete stays false. The child is always reaped, so a
// test leaves no stray processes.
inline Finished finish(Spawned& s, std::chrono::milliseconds limit) {
    using namespace std::chrono_literals;
    auto start = std::chrono::steady_clock::now();
    s.in.reset();
    Finished f;
    bool out_open = true, err_open = true, exited = false;
    auto deadline = start + limit;
    auto drain = [](int fd, std::string& into) {
        char buf[4096];
        for (;;) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n > 0) {
                if (into.size() < (1 << 20)) into.append(buf, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            return n == 0;  // EOF; otherwise EAGAIN: still open
        }
    };
    while (out_open || err_open || !exited) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) break;
        pollfd p[3] = {{out_open ? s.out.get() : -1, POLLIN, 0},
                       {err_open ? s.err.get() : -1, POLLIN, 0},
                       {exited ? -1 : s.pidfd.get(), POLLIN, 0}};
        if (poll(p, 3, static_cast<int>(left.count())) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[0].revents && drain(s.out.get(), f.out)) out_open = false;
        if (p[1].revents && drain(s.err.get(), f.err)) err_open = false;
        if (p[2].revents) exited = true;
    }
    f.complete = !out_open && !err_open && exited;
    if (!f.complete) s.child.kill_group(SIGKILL);
    if (auto e = s.child.reap_if_exited(true)) f.exit = *e;
    s.child.kill_and_reap();  // if it has not exited
    f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return f;
}

}  // namespace swarmfs::test
