// swarmfs MNT --state DIR [--config swarm.json] [-f] [-d] [-o opt,...]
// swarmfs replay --state DIR [filters]
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agents/swarm.h"
#include "fs/fuse_adapter.h"
#include "fs/replay_command.h"
#include "fs/swarm_tree.h"

namespace {

struct Options {
    std::string mountpoint, state, config;
    bool foreground = false, debug = false;
    std::vector<std::string> fuse_opts;
};

void usage(FILE* out) {
    fprintf(out,
            "usage: swarmfs MNT --state DIR [--config swarm.json] [-f] [-d] [-o opt,...]\n"
            "       swarmfs replay --state DIR [--agent NAME] [--turn N] ... (--help)\n"
            "  --state DIR    where the event log (swarm.db) lives; created if missing\n"
            "  --config FILE  swarm file applied at start (docs/config.md)\n"
            "  -f             stay in the foreground (Ctrl-C or SIGTERM unmounts)\n"
            "  -d             foreground with FUSE debugging\n"
            "  -o opt,...     extra FUSE mount options (e.g. allow_other)\n");
}

bool parse(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        if (a == "--state") {
            if (!value(o.state)) return false;
        } else if (a == "--config") {
            if (!value(o.config)) return false;
        } else if (a == "-f") {
            o.foreground = true;
        } else if (a == "-d") {
            o.foreground = o.debug = true;
        } else if (a == "-o") {
            std::string v;
            if (!value(v)) return false;
            o.fuse_opts.push_back(v);
        } else if (a == "-h" || a == "--help") {
            usage(stdout);
            exit(0);
        } else if (!a.empty() && a[0] != '-' && o.mountpoint.empty()) {
            o.mountpoint = a;
        } else {
            fprintf(stderr, "swarmfs: unknown argument %s\n", a.c_str());
            return false;
        }
    }
    return !o.mountpoint.empty() && !o.state.empty();
}

// Daemon mode: the parent waits until the child has mounted (or failed), so
// `swarmfs MNT ...; ls MNT` works and the exit status means something.
int ready_fd = -1;

void report_ready(char status) {
    if (ready_fd < 0) return;
    ssize_t n = write(ready_fd, &status, 1);
    (void)n;
    close(ready_fd);
    ready_fd = -1;
}

int daemonize() {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid > 0) {
        close(fds[1]);
        char status = 1;
        ssize_t n = read(fds[0], &status, 1);
        _exit(n == 1 ? status : 1);
    }
    close(fds[0]);
    ready_fd = fds[1];
    setsid();
    return 0;
}

int fail(const std::string& msg) {
    fprintf(stderr, "swarmfs: %s\n", msg.c_str());
    report_ready(1);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "replay") return swarmfs::replay_command(argc, argv);
    Options o;
    if (!parse(argc, argv, o)) {
        usage(stderr);
        return 2;
    }
    std::error_code ec;
    std::filesystem::create_directories(o.state, ec);
    if (ec) return fail("cannot create state folder " + o.state + ": " + ec.message());
    std::string state = std::filesystem::absolute(o.state).string();
    // The log and the vault are the server's to serve: nobody else reads
    // them behind its back (agents' processes run as other uids).
    chmod(state.c_str(), 0700);

    swarmfs::SwarmOptions sopts;
    sopts.db_path = state + "/swarm.db";
    sopts.state_dir = state;
    sopts.vault_dir = state + "/vault";
    sopts.workdir = std::filesystem::current_path().string();
    if (!o.config.empty()) {
        if (auto s = swarmfs::load_swarm_file(o.config, sopts); !s) return fail(s.error().message);
        sopts.workdir = std::filesystem::absolute(o.config).parent_path().string();
        sopts.swarm_file = std::filesystem::absolute(o.config).string();
    }
    std::string mnt = std::filesystem::absolute(o.mountpoint).string();
    // Exec agents reach the swarm through the mount (e.g. to hand off).
    sopts.exec_env["SWARMFS_MNT"] = mnt;
    sopts.views_dir = mnt + "/views";
    {
        // Canonical, as the sandbox sees the workdir: it hides the mount
        // where the workdir would show it. Taken before the mount exists.
        std::error_code ec;
        auto real = std::filesystem::weakly_canonical(mnt, ec);
        sopts.mountpoint = ec ? mnt : real.string();
    }

    // Fork before any thread exists: the kernel's writer and loop threads
    // start when the swarm opens.
    if (!o.foreground && daemonize() != 0) return fail("cannot fork");
    if (!o.foreground) {
        auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(state + "/swarmfs.log");
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("swarmfs", sink));
        spdlog::flush_every(std::chrono::seconds(1));
    }
    signal(SIGPIPE, SIG_IGN);

    auto swarm = swarmfs::Swarm::open(sopts);
    if (!swarm) return fail(swarm.error().message);

    swarmfs::fs::SwarmTree tree(**swarm);
    // Requests from an agent's processes (they run as its own uid) are
    // confined to views/NAME, whatever path they use.
    swarmfs::fs::FuseAdapter adapter(tree.root(),
                                     [&s = **swarm](uid_t uid) { return s.agent_for_uid(uid); });
    adapter.set_statfs_path(state);
    adapter.set_refused([&s = **swarm](const std::string& agent, const std::string& what) {
        s.refuse(agent, "view", swarmfs::make_error(EACCES, "refused " + what));
    });

    std::vector<std::string> args = {"swarmfs", "-o", "fsname=swarmfs,subtype=swarmfs"};
    // Agents' uids must reach the mount at all; the adapter then refuses
    // every uid that is neither the owner's nor an agent's.
    if (geteuid() == 0) {
        args.push_back("-o");
        args.push_back("allow_other");
    }
    for (auto& opt : o.fuse_opts) {
        args.push_back("-o");
        args.push_back(opt);
    }
    if (o.debug) args.push_back("-d");
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(cargs.size()), cargs.data());

    fuse_session* se = fuse_session_new(&fargs, &swarmfs::fs::FuseAdapter::ops(),
                                        sizeof(fuse_lowlevel_ops), &adapter);
    fuse_opt_free_args(&fargs);  // libfuse may have copied them
    if (!se) return fail("cannot create the FUSE session");
    if (fuse_set_signal_handlers(se) != 0) {
        fuse_session_destroy(se);
        return fail("cannot set signal handlers");
    }
    if (fuse_session_mount(se, mnt.c_str()) != 0) {
        fuse_remove_signal_handlers(se);
        fuse_session_destroy(se);
        return fail("cannot mount on " + mnt + " (does it exist? is /dev/fuse available?)");
    }
    spdlog::info("swarmfs mounted on {} with state {}", mnt, state);
    if (!o.foreground) {
        int null = open("/dev/null", O_RDWR);
        report_ready(0);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            close(null);
        }
    }

    fuse_loop_config cfg{};
    cfg.clone_fd = 0;
    cfg.max_idle_threads = 16;
    int rc = fuse_session_loop_mt(se, &cfg);

    spdlog::info("swarmfs unmounting {}", mnt);
    fuse_remove_signal_handlers(se);
    // A second Ctrl-C or SIGTERM during the (bounded) shutdown must not cut
    // it short.
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    adapter.abort_parked();
    (*swarm)->shutdown();
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    // libfuse reports a loop ended by SIGTERM/SIGINT/SIGHUP as that signal's
    // number: for us that is the ordinary, clean way to stop.
    bool clean = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP;
    if (!clean) spdlog::error("FUSE session ended with error {}", rc);
    return clean ? 0 : 1;
}
