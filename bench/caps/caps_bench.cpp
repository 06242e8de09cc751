// caps_bench — what capability checks and the sandbox cost: stat and
// open+read+close over the same vault files through different paths (the
// disk, MNT/vault, MNT/views/NAME/vault, and that view from the agent's own
// uid), and the start of an exec tool with and without the sandbox. Not a
// test: it measures and prints a table. bench/caps/run.sh builds it, sets up
// the vault and the mounts and runs it.
//
//   caps_bench files [common] [--files N] [--at] [--as-uid U] LABEL=DIR ...
//       DIR holds f0000 .. f(N-1) (small files, all the same size) and big.
//       Per DIR one row: stat of a small file, open+read+close of a small
//       file and of big, cycling over the files. Paths are absolute
//       (DIR/fNNNN), so every component is looked up again (the mount keeps
//       no entry or attribute cache); with --at they are relative to an open
//       descriptor of DIR (fstatat, openat): one lookup per op.
//   caps_bench starts [common] [--as-uid U] [LABEL=CALLFILE ...]
//                     [--spawn-uid U --spawn-view DIR --spawn-workdir DIR
//                      --spawn-hide PATH]
//       Per query file one row: open(O_RDWR), write "{}", read the result to
//       EOF, close -- one exec tool call, start to result. Then, with
//       --spawn-uid (or --spawn-plain), rows that start /bin/true with
//       swarmfs::spawn() and wait for the exit: plainly, under a bare bwrap
//       (one bind of /, no other namespace: its floor), and inside the
//       sandbox the kernel would build (sandbox_argv(): bwrap + swarmfs-jail
//       as uid U, gid U, the workdir and hidden paths given), without a view
//       and with --spawn-view bound at /swarm.
//
//   common: --seconds S (per cell, default 1) --rounds R (default 5)
//
// --as-uid U applies to the next LABEL=... only: its ops run with the
// effective uid and gid U (seteuid, so the process can switch back; the
// file server sees the fsuid, which follows). Every cell is measured in R
// slices of S/R seconds and the rows take turns slice by slice, so a burst of
// load elsewhere on the machine spreads over all rows instead of landing on
// one. Latencies per op: microseconds for files, milliseconds for starts.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "agents/sandbox.h"
#include "agents/spawn.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
    fprintf(stderr, "caps_bench: %s\n", what.c_str());
    exit(1);
}

[[noreturn]] void usage(const std::string& why) {
    fprintf(
        stderr,
        "caps_bench: %s\n"
        "usage: caps_bench files [--seconds S] [--rounds R] [--files N] [--at]\n"
        "                        [--as-uid U] LABEL=DIR ...\n"
        "       caps_bench starts [--seconds S] [--rounds R] [--as-uid U] [LABEL=CALLFILE ...]\n"
        "                        [--spawn-plain] [--spawn-uid U] [--spawn-view DIR]\n"
        "                        [--spawn-workdir DIR] [--spawn-hide PATH]...\n",
        why.c_str());
    exit(2);
}

struct Target {
    std::string label, path;
    uid_t uid = 0;  // 0: as we are
};

struct Options {
    std::string mode;
    double seconds = 1.0;
    int rounds = 5;
    int files = 1000;
    bool at = false;
    std::vector<Target> targets;
    bool spawn = false;
    uid_t spawn_uid = 0;
    std::string spawn_view, spawn_workdir;
    std::vector<std::string> spawn_hide;
};

Options parse(int argc, char** argv) {
    if (argc < 2) usage("no mode");
    Options o;
    o.mode = argv[1];
    if (o.mode != "files" && o.mode != "starts") usage("unknown mode " + o.mode);
    uid_t next_uid = 0;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage("missing value for " + a);
            return argv[++i];
        };
        if (a == "--seconds")
            o.seconds = atof(value());
        else if (a == "--rounds")
            o.rounds = atoi(value());
        else if (a == "--files")
            o.files = atoi(value());
        else if (a == "--at")
            o.at = true;
        else if (a == "--as-uid")
            next_uid = static_cast<uid_t>(atol(value()));
        else if (a == "--spawn-plain")
            o.spawn = true;
        else if (a == "--spawn-uid")
            o.spawn = true, o.spawn_uid = static_cast<uid_t>(atol(value()));
        else if (a == "--spawn-view")
            o.spawn_view = value();
        else if (a == "--spawn-workdir")
            o.spawn_workdir = value();
        else if (a == "--spawn-hide")
            o.spawn_hide.emplace_back(value());
        else if (a.rfind("--", 0) == 0)
            usage("unknown option " + a);
        else {
            auto eq = a.find('=');
            if (eq == std::string::npos || eq == 0) usage("expected LABEL=PATH, got " + a);
            o.targets.push_back({a.substr(0, eq), a.substr(eq + 1), next_uid});
            next_uid = 0;
        }
    }
    if (o.seconds <= 0 || o.rounds < 1 || o.files < 1)
        usage("--seconds, --rounds and --files must be positive");
    if (o.mode == "files" && o.targets.empty()) usage("files: no LABEL=DIR");
    if (o.mode == "starts" && o.targets.empty() && !o.spawn) usage("starts: nothing to start");
    return o;
}

std::string errno_text(const std::string& what, const std::string& path) {
    return what + " " + path + ": " + strerror(errno);
}

// Ops run as uid (effective uid and gid, no supplementary groups) until
// the guard ends; then back to root. Only root can do this, and only
// single-threaded (glibc broadcasts it to every thread anyway).
class AsUid {
  public:
    explicit AsUid(uid_t uid) : uid_(uid) {
        if (!uid_) return;
        if (setgroups(0, nullptr) != 0 || setegid(uid_) != 0 || seteuid(uid_) != 0)
            die("cannot become uid " + std::to_string(uid_) + ": " + strerror(errno) +
                " (needs root)");
    }
    ~AsUid() {
        if (uid_ && (seteuid(0) != 0 || setegid(0) != 0)) die("cannot become root again");
    }
    AsUid(const AsUid&) = delete;
    AsUid& operator=(const AsUid&) = delete;

  private:
    uid_t uid_;
};

// One row of the table: its ops (columns), measured in slices.
struct Row {
    std::string label;
    uid_t uid = 0;
    std::vector<std::function<void(size_t)>> ops;
    std::function<void()> setup;                 // once, as uid, before the first slice
    std::vector<std::vector<double>> latencies;  // per op, in seconds
    std::vector<double> busy;                    // per op, seconds measured
    std::string skipped;                         // non-empty: not measured, and why
};

// op back to back for `seconds` (at least min_ops times), after one
// unmeasured call that warms it.
void slice(Row& r, size_t op, double seconds, size_t min_ops) {
    auto& fn = r.ops[op];
    auto& lat = r.latencies[op];
    fn(lat.size());  // warm
    auto start = Clock::now();
    auto deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (size_t n = 0;; ++n) {
        auto t0 = Clock::now();
        if (t0 >= deadline && n >= min_ops) break;
        fn(lat.size() + 1);
        lat.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    r.busy[op] += std::chrono::duration<double>(Clock::now() - start).count();
}

void measure(std::vector<Row>& rows, const Options& o, size_t min_ops_per_slice) {
    for (auto& r : rows) {
        r.latencies.assign(r.ops.size(), {});
        r.busy.assign(r.ops.size(), 0);
        if (r.skipped.empty() && r.setup) {
            AsUid as(r.uid);
            r.setup();
        }
    }
    double per_slice = o.seconds / o.rounds;
    for (int round = 0; round < o.rounds; ++round)
        for (auto& r : rows) {
            if (!r.skipped.empty()) continue;
            AsUid as(r.uid);
            for (size_t op = 0; op < r.ops.size(); ++op) slice(r, op, per_slice, min_ops_per_slice);
        }
}

struct Figures {
    double per_second, p50, p99;
    size_t samples;
};

// ops/s, p50 and p99 of one cell; unit scales the latencies (1e6: us, 1e3: ms).
Figures figures(const Row& r, size_t op, double unit) {
    auto lat = r.latencies[op];
    std::sort(lat.begin(), lat.end());
    return {static_cast<double>(lat.size()) / r.busy[op], lat[lat.size() / 2] * unit,
            lat[std::min(lat.size() - 1, lat.size() * 99 / 100)] * unit, lat.size()};
}

// ---- files ----

constexpr size_t kReadBuf = 128 << 10;

// open + read to EOF + close; returns the bytes read.
size_t read_whole(int dirfd, const std::string& path, std::vector<char>& buf) {
    int fd = dirfd >= 0 ? openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC)
                        : open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(errno_text("open", path));
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf.data(), buf.size());
        if (n > 0) {
            total += static_cast<size_t>(n);
            continue;
        }
        if (n == 0) break;
        if (errno == EINTR) continue;
        die(errno_text("read", path));
    }
    if (close(fd) != 0) die(errno_text("close", path));
    return total;
}

// What a row over one folder needs; lives as long as the rows.
struct FolderState {
    std::string dir;
    int dirfd = -1;
    std::vector<std::string> names;  // as passed to the calls
    std::string big;
    size_t small_size = 0, big_size = 0;
    std::vector<char> buf = std::vector<char>(kReadBuf);

    int stat_at(const std::string& p, struct stat& st) const {
        return dirfd >= 0 ? fstatat(dirfd, p.c_str(), &st, 0) : stat(p.c_str(), &st);
    }
};

void files(const Options& o) {
    std::vector<FolderState> folders(o.targets.size());
    std::vector<Row> rows;
    for (size_t t = 0; t < o.targets.size(); ++t) {
        const Target& tg = o.targets[t];
        FolderState& f = folders[t];
        f.dir = tg.path;
        Row r;
        r.label = tg.label;
        r.uid = tg.uid;
        r.setup = [&f, at = o.at, n = o.files] {
            std::string prefix = f.dir + "/";
            if (at) {
                f.dirfd = open(f.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (f.dirfd < 0) die(errno_text("open", f.dir));
                prefix.clear();
            }
            for (int i = 0; i < n; ++i) {
                char name[16];
                snprintf(name, sizeof name, "f%04d", i);
                f.names.push_back(prefix + name);
            }
            f.big = prefix + "big";
            // What the files hold, from a first stat: a refused or short
            // read is a failure, not a fast row.
            struct stat st {};
            if (f.stat_at(f.names[0], st) != 0) die(errno_text("stat", f.dir + "/f0000"));
            f.small_size = static_cast<size_t>(st.st_size);
            if (f.stat_at(f.big, st) != 0) die(errno_text("stat", f.dir + "/big"));
            f.big_size = static_cast<size_t>(st.st_size);
        };
        r.ops.push_back([&f](size_t i) {
            struct stat st;
            const std::string& p = f.names[i % f.names.size()];
            if (f.stat_at(p, st) != 0) die(errno_text("stat", p));
        });
        r.ops.push_back([&f](size_t i) {
            const std::string& p = f.names[i % f.names.size()];
            if (read_whole(f.dirfd, p, f.buf) != f.small_size) die("short read of " + p);
        });
        r.ops.push_back([&f](size_t) {
            if (read_whole(f.dirfd, f.big, f.buf) != f.big_size) die("short read of " + f.big);
        });
        rows.push_back(std::move(r));
    }
    measure(rows, o, 1);

    printf("%-36s | %-26s | %-26s | %-26s\n", "", "stat", "open+read+close small",
           "open+read+close big");
    printf("%-36s | %8s %8s %8s | %8s %8s %8s | %8s %8s %8s\n", "", "ops/s", "p50 us", "p99 us",
           "ops/s", "p50 us", "p99 us", "ops/s", "p50 us", "p99 us");
    printf("%s\n", std::string(36 + 3 * 29, '-').c_str());
    for (auto& r : rows) {
        printf("%-36s", r.label.c_str());
        for (size_t op = 0; op < r.ops.size(); ++op) {
            Figures f = figures(r, op, 1e6);
            printf(" | %8.0f %8.1f %8.1f", f.per_second, f.p50, f.p99);
        }
        printf("\n");
    }
    for (auto& f : folders)
        if (f.dirfd >= 0) close(f.dirfd);
}

// ---- starts ----

// One tool call through a query file: the result comes back on the same
// open file, and a read at its end returns EOF.
std::string call_tool(const std::string& path) {
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) die(errno_text("open", path));
    static const char kArgs[] = "{}";
    if (write(fd, kArgs, sizeof kArgs - 1) != static_cast<ssize_t>(sizeof kArgs - 1))
        die(errno_text("write", path));
    std::string result;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            result.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n == 0) break;
        if (errno == EINTR) continue;
        die(errno_text("read", path));
    }
    if (close(fd) != 0) die(errno_text("close", path));
    // A failed call answers "error: <reason>", not an errno: report it
    // rather than time it.
    if (result.rfind("error:", 0) == 0) die(path + " answered: " + result);
    return result;
}

// Starts argv, waits for its exit as the kernel's owners do (the pidfd, then
// the reap, its group killed) and fails unless it exited 0.
void run_child(const std::vector<std::string>& argv) {
    swarmfs::ExecSpec spec;
    spec.argv = argv;
    spec.env = {"PATH=/usr/bin:/bin"};
    spec.cwd = "/";
    auto s = swarmfs::spawn(spec);
    if (!s) die("spawn: " + s.error().message);
    s->in.reset();
    pollfd p{s->pidfd.get(), POLLIN, 0};
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR) die(std::string("poll: ") + strerror(errno));
    auto e = s->child.reap_if_exited(true);
    if (!e || !e->ok) {
        std::string err;
        char buf[4096];
        ssize_t n;
        while ((n = read(s->err.get(), buf, sizeof buf)) > 0)
            err.append(buf, static_cast<size_t>(n));
        die(argv[0] + " did not exit 0 (" + (e ? e->reason : "?") + "): " + err);
    }
}

void starts(const Options& o) {
    std::vector<Row> rows;
    for (const Target& t : o.targets) {
        Row r;
        r.label = t.label;
        r.uid = t.uid;
        r.ops.push_back([path = t.path](size_t) { call_tool(path); });
        rows.push_back(std::move(r));
    }
    if (o.spawn) {
        const std::vector<std::string> kTrue = {"/bin/true"};
        Row plain;
        plain.label = "spawn() /bin/true";
        plain.ops.push_back([kTrue](size_t) { run_child(kTrue); });
        rows.push_back(std::move(plain));
        auto sandboxed = [&](const std::string& label, const std::string& view) {
            swarmfs::SandboxSpec spec;
            spec.view = view;
            spec.workdir = o.spawn_workdir;
            spec.hide = o.spawn_hide;
            spec.uid = o.spawn_uid;
            spec.gid = o.spawn_uid;
            Row r;
            r.label = label;
            auto argv = swarmfs::sandbox_argv(spec, kTrue);
            if (argv)
                r.ops.push_back([argv = *argv](size_t) { run_child(argv); });
            else
                r.skipped = argv.error().message;
            rows.push_back(std::move(r));
        };
        // bwrap's floor: a mount namespace and one bind, nothing else.
        Row floor;
        floor.label = "spawn() bwrap --ro-bind / / /bin/true";
        floor.ops.push_back(
            [argv = std::vector<std::string>{swarmfs::bwrap_path(), "--ro-bind", "/", "/",
                                             "/bin/true"}](size_t) { run_child(argv); });
        rows.push_back(std::move(floor));
        sandboxed("spawn() bwrap+jail /bin/true", "");
        if (!o.spawn_view.empty()) sandboxed("spawn() bwrap+jail /bin/true, view", o.spawn_view);
    }
    measure(rows, o, 4);

    printf("%-48s | %8s %8s %8s %7s\n", "", "starts/s", "p50 ms", "p99 ms", "samples");
    printf("%s\n", std::string(48 + 37, '-').c_str());
    for (auto& r : rows) {
        printf("%-48s", r.label.c_str());
        if (!r.skipped.empty())
            printf(" | n/a: %s", r.skipped.c_str());
        else {
            Figures f = figures(r, 0, 1e3);
            printf(" | %8.1f %8.2f %8.2f %7zu", f.per_second, f.p50, f.p99, f.samples);
        }
        printf("\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    if (o.mode == "files")
        files(o);
    else
        starts(o);
    return 0;
}
