// spawn_bench — what starting a child costs a server with a heap: swarmfs's
// spawn() beside plain fork+execve and posix_spawn, each starting /bin/true
// and waiting for it, from 1 thread and from N at once, with the process
// holding a small heap and then ~1 GiB of touched heap. Not a test: it
// measures and prints. bench/spawn/run.sh builds and runs it.
//
//   spawn_bench [--seconds 1.5] [--threads 4] [--heap-mib 1024]
//
// fork copies the parent's page tables, so its cost grows with the heap;
// spawn() and posix_spawn clone vfork-style and should not care. spawn()
// also does what the baselines do not: three pipes, a pidfd, its own
// process group, the death signal, the signal reset and close_range.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "agents/spawn.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kProgram = "/bin/true";
char* const kArgv[] = {const_cast<char*>(kProgram), nullptr};
char* const kEnvp[] = {const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};

struct Options {
    double seconds = 1.5;  // per cell
    int threads = 4;
    size_t heap_mib = 1024;
};

[[noreturn]] void usage(const char* why) {
    fprintf(stderr,
            "spawn_bench: %s\nusage: spawn_bench [--seconds S] [--threads N] [--heap-mib M]\n",
            why);
    exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(("missing value for " + a).c_str());
        const char* v = argv[++i];
        if (a == "--seconds")
            o.seconds = atof(v);
        else if (a == "--threads")
            o.threads = atoi(v);
        else if (a == "--heap-mib")
            o.heap_mib = static_cast<size_t>(atol(v));
        else
            usage(("unknown option " + a).c_str());
    }
    if (o.seconds <= 0 || o.threads < 1) usage("--seconds and --threads must be positive");
    return o;
}

[[noreturn]] void die(const std::string& what) {
    fprintf(stderr, "spawn_bench: %s\n", what.c_str());
    exit(1);
}

void wait_for(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die(std::string("waitpid: ") + strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("/bin/true did not exit 0");
}

// One start of /bin/true and the wait for its exit, per method.
void run_swarmfs() {
    swarmfs::ExecSpec spec;
    spec.argv = {kProgram};
    spec.env = {kEnvp[0]};
    auto s = swarmfs::spawn(spec);
    if (!s) die("spawn: " + s.error().message);
    // As its owners do: the pidfd says it exited, then the reap.
    pollfd p{s->pidfd.get(), POLLIN, 0};
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR) die(std::string("poll: ") + strerror(errno));
    auto e = s->child.reap_if_exited(false);
    if (!e || !e->ok) die("/bin/true did not exit 0");
}

void run_fork() {
    pid_t pid = fork();
    if (pid < 0) die(std::string("fork: ") + strerror(errno));
    if (pid == 0) {
        execve(kProgram, kArgv, kEnvp);
        _exit(127);
    }
    wait_for(pid);
}

void run_posix_spawn() {
    pid_t pid;
    int rc = posix_spawn(&pid, kProgram, nullptr, nullptr, kArgv, kEnvp);
    if (rc != 0) die(std::string("posix_spawn: ") + strerror(rc));
    wait_for(pid);
}

struct Method {
    const char* name;
    void (*run)();
};
const Method kMethods[] = {
    {"swarmfs spawn()", run_swarmfs},
    {"fork+execve", run_fork},
    {"posix_spawn", run_posix_spawn},
};

struct Cell {
    double per_second = 0;
    double p50_us = 0, p99_us = 0;
    size_t samples = 0;
};

// threads threads start and wait, back to back, for `seconds`.
Cell measure(const Method& m, int threads, double seconds) {
    m.run();  // warm: page in the code and the program
    std::vector<std::vector<double>> lat(static_cast<size_t>(threads));
    std::atomic<bool> go{false};
    auto start = Clock::now();
    auto deadline = start;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            while (!go.load()) std::this_thread::yield();
            auto& mine = lat[static_cast<size_t>(t)];
            for (;;) {
                auto t0 = Clock::now();
                if (t0 >= deadline) break;
                m.run();
                mine.push_back(
                    std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
            }
        });
    start = Clock::now();
    deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    go = true;
    for (auto& t : pool) t.join();
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    Cell c;
    c.samples = all.size();
    if (all.empty()) return c;
    c.per_second = static_cast<double>(all.size()) / elapsed;
    c.p50_us = all[all.size() / 2];
    c.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
    return c;
}

long rss_mib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return atol(line.c_str() + 6) / 1024;
    return -1;
}

// Touched, and in 4 KiB pages: a server's heap of many small objects is
// rarely backed by huge pages, and with them fork would copy 512 times fewer
// page-table entries.
void* touch_heap(size_t mib) {
    size_t len = mib << 20;
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die(std::string("mmap of the heap: ") + strerror(errno));
    madvise(p, len, MADV_NOHUGEPAGE);
    auto* bytes = static_cast<volatile char*>(p);
    for (size_t i = 0; i < len; i += 4096) bytes[i] = 1;
    return p;
}

void print_row(const char* heap, const char* method, const std::vector<Cell>& cells) {
    printf("%-20s %-17s", heap, method);
    for (const Cell& c : cells) printf(" | %9.0f %8.0f %8.0f", c.per_second, c.p50_us, c.p99_us);
    printf("\n");
    fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    if (access(kProgram, X_OK) != 0) die(std::string(kProgram) + " is not executable");

    printf("Start %s and wait for it, back to back, %.1f s per cell; %u CPUs.\n", kProgram,
           o.seconds, std::thread::hardware_concurrency());
    printf("spawns/s: all threads together; p50/p99: one start-and-wait, in microseconds.\n\n");
    std::string threads_col = std::to_string(o.threads) + " threads";
    printf("%-20s %-17s | %-26s | %-26s\n", "heap (VmRSS)", "method", "1 thread",
           threads_col.c_str());
    printf("%-20s %-17s | %9s %8s %8s | %9s %8s %8s\n", "", "", "spawns/s", "p50 us", "p99 us",
           "spawns/s", "p50 us", "p99 us");
    printf("%s\n", std::string(20 + 1 + 17 + 2 * 29, '-').c_str());

    auto run_all = [&](const std::string& heap) {
        for (const Method& m : kMethods) {
            std::vector<Cell> cells{measure(m, 1, o.seconds), measure(m, o.threads, o.seconds)};
            print_row(heap.c_str(), m.name, cells);
        }
    };
    run_all("small (" + std::to_string(rss_mib()) + " MiB)");
    void* heap = touch_heap(o.heap_mib);
    run_all(std::to_string(o.heap_mib) + " MiB (" + std::to_string(rss_mib()) + " MiB)");
    munmap(heap, o.heap_mib << 20);
    return 0;
}
