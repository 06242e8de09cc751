// The sandbox as a user of an exec agent meets it: real commands run
// through the real bwrap and swarmfs-jail via spawn(), and what they can
// see, write, reach and use. Plus the "sandbox" config key and the argv.
#include "agents/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "agents/spawn.h"
#include "finished_child.h"
#include "test_util.h"

using namespace swarmfs;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using swarmfs::test::contains;
using swarmfs::test::eventually;

namespace {

constexpr uid_t kUid = 900123;
// The process-limit tests' own uids: RLIMIT_NPROC counts per uid, so a
// bomb under kUid could starve a sandbox test running at the same time
// (ctest -j), and the two would miscount each other's processes.
constexpr uid_t kBombUid = 900124;
constexpr uid_t kCountUid = 900125;

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=/tmp"};

// SandboxRootless runs this binary again as an unprivileged user: it
// execs a sandbox that shows the folder named in the variable at /swarm.
// That must happen before gtest's main, in a process of its own.
[[maybe_unused]] const bool kRootlessRole = [] {
    const char* dir = getenv("SWARMFS_SANDBOX_TEST_ROOTLESS");
    if (!dir) return false;
    SandboxSpec spec;
    spec.view = dir;
    spec.workdir = dir;
    auto argv = sandbox_argv(
        spec, {"sh", "-c",
               "id -u; grep CapEff /proc/self/status; echo hi > /swarm/from-inside && echo view-ok;"
               " unshare -U true 2>/dev/null || echo no-userns"});
    if (!argv) {
        dprintf(2, "%s\n", argv.error().message.c_str());
        _exit(3);
    }
    std::vector<char*> args;
    for (auto& a : *argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(4);
}();

using test::Finished;
Finished finish(Spawned& s, std::chrono::milliseconds limit = 20s) {
    return test::finish(s, limit);
}

Finished run(const std::vector<std::string>& argv, std::chrono::milliseconds limit = 20s) {
    ExecSpec e;
    e.argv = argv;
    e.env = kEnv;
    auto s = spawn(e);
    if (!s) {
        Finished f;
        f.err = "spawn: " + s.error().message;
        return f;
    }
    return finish(*s, limit);
}

std::string describe(const Finished& f) {
    return "exit '" + f.exit.reason + "' complete " + std::to_string(f.complete) +
           "\nout: " + f.out + "\nerr: " + f.err;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.push_back(l);
    return out;
}

// A folder the sandbox uid can traverse (mkdtemp makes 0700).
struct Dir : swarmfs::test::TempDir {
    explicit Dir(uid_t owner = 0) {
        chmod(path.c_str(), 0755);
        if (owner != 0 && chown(path.c_str(), owner, owner) != 0) ADD_FAILURE() << "chown";
    }
};

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Processes (not threads) whose real uid is `uid`, on the whole host.
int processes_of(uid_t uid) {
    int n = 0;
    DIR* d = opendir("/proc");
    if (!d) return -1;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        std::ifstream f(std::string("/proc/") + e->d_name + "/status");
        for (std::string l; std::getline(f, l);)
            if (l.rfind("Uid:", 0) == 0) {
                if (std::stoul(l.substr(4)) == uid) ++n;
                break;
            }
    }
    closedir(d);
    return n;
}

// pid -> (ppid, session) of every process on the host.
std::map<pid_t, std::pair<pid_t, pid_t>> process_table() {
    std::map<pid_t, std::pair<pid_t, pid_t>> t;
    DIR* d = opendir("/proc");
    if (!d) return t;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        std::string stat = slurp(std::string("/proc/") + e->d_name + "/stat");
        size_t close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 1));
        char state;
        pid_t ppid, pgrp, session;
        if (rest >> state >> ppid >> pgrp >> session) t[atoi(e->d_name)] = {ppid, session};
    }
    closedir(d);
    return t;
}

// A TCP listener on 127.0.0.1, on a port the kernel picks.
struct Listener {
    UniqueFd fd;
    int port = 0;
    Listener() {
        fd.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            listen(fd.get(), 8) != 0 ||
            getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
            ADD_FAILURE() << "listener: " << strerror(errno);
        port = ntohs(a.sin_port);
    }
    // Whether a connection is waiting (accepts it).
    bool accepted() {
        int c = accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return false;
        close(c);
        return true;
    }
};

std::string connect_script(int port) {
    return "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) + " && echo connected";
}

// ---- the fixture: a view, a workdir with a state folder, the agent's uid ----

class SandboxTest : public ::testing::Test {
  protected:
    void SetUp() override {
        write_file(workdir.file("README"), "the workdir\n");
        fs::create_directory(workdir.path / "state");
        write_file(workdir.file("state/swarm.db"), "SQLite format 3\n");
        write_file(view.file("hello.txt"), "hello from the swarm\n");
        spec.view = view.path.string();
        spec.workdir = workdir.path.string();
        spec.hide = {workdir.file("state")};
        spec.uid = kUid;
        spec.gid = kUid;
    }

    Finished sandboxed(const std::vector<std::string>& argv,
                       std::chrono::milliseconds limit = 20s) {
        auto a = sandbox_argv(spec, argv);
        if (!a) {
            Finished f;
            f.err = "sandbox_argv: " + a.error().message;
            return f;
        }
        return run(*a, limit);
    }
    Finished sh(const std::string& script, std::chrono::milliseconds limit = 20s) {
        return sandboxed({"sh", "-c", script}, limit);
    }

    Dir view{kUid};  // the agent's view: it writes there
    Dir workdir;     // root's, read-only to the agent
    SandboxSpec spec;
};

}  // namespace

// ---- what the command sees ----

TEST_F(SandboxTest, TheRootHoldsOnlyTheSystemPathsAndTheSandboxsOwn) {
    Finished f = sh("ls -A /");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    std::set<std::string> want = {".swarmfs-jail", "dev", "etc", "proc", "swarm", "tmp", "usr"};
    for (const char* sys : {"bin", "sbin", "lib", "lib64"}) {
        struct stat st {};
        if (lstat((std::string("/") + sys).c_str(), &st) == 0) want.insert(sys);
    }
    // The workdir's top folder is there to reach it (in a test, /tmp), and
    // a workdir under /tmp is bound at /.swarmfs-workdir.
    want.insert(std::next(fs::path(spec.workdir).begin())->string());
    if (spec.workdir.rfind("/tmp/", 0) == 0) want.insert(".swarmfs-workdir");
    auto got = lines(f.out);
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want) << f.out;
}

TEST_F(SandboxTest, MergedUsrSymlinksStaySymlinks) {
    Finished f =
        sh("for d in /bin /sbin /lib /lib64; do [ -e $d ] && echo $d $(readlink $d); done");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    for (const char* d : {"/bin", "/sbin", "/lib", "/lib64"}) {
        std::error_code ec;
        if (!fs::is_symlink(d, ec)) continue;
        EXPECT_TRUE(contains(f.out, std::string(d) + " " + fs::read_symlink(d).string() + "\n"))
            << d << ": " << f.out;
    }
}

TEST_F(SandboxTest, EtcHoldsOnlyWhatProgramsNeedAndNeverShadow) {
    Finished f = sh("ls -A /etc; cat /etc/shadow");
    EXPECT_FALSE(f.exit.ok) << describe(f);
    EXPECT_TRUE(contains(f.err, "/etc/shadow: No such file or directory")) << f.err;
    std::set<std::string> want;
    for (const char* e : {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group",
                          "nsswitch.conf", "localtime", "alternatives"})
        if (fs::exists(std::string("/etc/") + e)) want.insert(e);
    auto got = lines(f.out);
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want) << f.out;
    // With the network: what name resolution and TLS need, still no shadow.
    spec.net = true;
    Finished net = sh("ls -A /etc; cat /etc/shadow");
    EXPECT_TRUE(contains(net.err, "/etc/shadow: No such file or directory")) << net.err;
    for (const char* e : {"hosts", "resolv.conf", "ssl", "ca-certificates"})
        if (fs::exists(std::string("/etc/") + e)) {
            EXPECT_TRUE(contains(net.out, std::string(e) + "\n")) << e << ": " << net.out;
        }
    EXPECT_FALSE(contains(net.out, "shadow")) << net.out;
}

TEST_F(SandboxTest, TheStateFolderIsHiddenInsideTheWorkdir) {
    Finished f = sh("cat README; ls -A state; cat state/swarm.db");
    EXPECT_FALSE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, "the workdir\n");  // the workdir is there, state/ is empty
    EXPECT_TRUE(contains(f.err, "state/swarm.db: No such file or directory")) << f.err;
    EXPECT_TRUE(fs::exists(workdir.file("state/swarm.db")));  // on the host, untouched
}

TEST_F(SandboxTest, TheWorkdirIsTheCwdAndReadOnly) {
    Finished f = sh("pwd; touch new-file || echo refused; touch state/x || echo refused");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, spec.workdir + "\nrefused\nrefused\n");
    EXPECT_FALSE(fs::exists(workdir.file("new-file")));
    EXPECT_FALSE(fs::exists(workdir.file("state/x")));
}

// Landlock rights add up along a path, so a workdir beneath the private
// /tmp would take /tmp's rwx rule: a host's named pipe there was writable.
TEST_F(SandboxTest, AHostPipeInAWorkdirUnderTmpIsNotWritable) {
    ASSERT_EQ(spec.workdir.rfind("/tmp/", 0), 0u) << "the test needs a workdir under /tmp";
    std::string fifo = workdir.file("host.fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0666), 0) << strerror(errno);
    ASSERT_EQ(chmod(fifo.c_str(), 0666), 0);
    // The host's reader: a writer that gets in does not block.
    UniqueFd reader(open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(reader) << strerror(errno);
    Finished f = sh("cat README; echo escaped > " + fifo + " || echo refused");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, "the workdir\nrefused\n");
    EXPECT_TRUE(contains(f.err, "Permission denied")) << f.err;
    char buf[16];
    EXPECT_LE(read(reader.get(), buf, sizeof buf), 0) << "the host read what the sandbox wrote";
    // Its own path still works, through the symlink, and is still read-only.
    Finished g = sh("cat " + workdir.file("README") + "; readlink " + spec.workdir + "; touch " +
                    workdir.file("new") + " || echo refused");
    EXPECT_EQ(g.out, "the workdir\n/.swarmfs-workdir\nrefused\n") << describe(g);
    EXPECT_FALSE(fs::exists(workdir.file("new")));
}

// Read paths (what an MCP server's program needs, say) are shown like the
// workdir: at their own paths, read-only, and under /tmp not beneath the
// private /tmp's rule.
TEST_F(SandboxTest, ReadPathsAreShownReadOnlyAtTheirOwnPaths) {
    Dir lib;
    write_file(lib.file("module.js"), "the module\n");
    std::string fifo = lib.file("host.fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0666), 0) << strerror(errno);
    ASSERT_EQ(chmod(fifo.c_str(), 0666), 0);
    UniqueFd reader(open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(reader) << strerror(errno);
    spec.read = {lib.path.string(), workdir.file("state")};  // the second: inside the workdir
    Finished f = sh("cat " + lib.file("module.js") + "; touch " + lib.file("new") +
                    " || echo refused; echo x > " + fifo + " || echo refused; ls -A state");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, "the module\nrefused\nrefused\n") << "state/ stays hidden: " << f.out;
    EXPECT_FALSE(fs::exists(lib.file("new")));
    char buf[4];
    EXPECT_LE(read(reader.get(), buf, sizeof buf), 0) << "the host read what the sandbox wrote";

    // One that holds the workdir, one that is not there, one hidden: refused.
    for (auto [bad, code] :
         {std::pair{fs::path(spec.workdir).parent_path().string(), EINVAL},
          std::pair{lib.file("missing"), ENOENT}, std::pair{std::string("relative"), EINVAL}}) {
        spec.read = {bad};
        auto a = sandbox_argv(spec, {"true"});
        ASSERT_FALSE(a.ok()) << bad;
        EXPECT_EQ(a.error().code, code) << bad << ": " << a.error().message;
        EXPECT_TRUE(contains(a.error().message, "read path")) << a.error().message;
    }
    spec.read = {lib.path.string()};
    spec.hide.push_back(lib.path.string());
    auto hidden = sandbox_argv(spec, {"true"});
    ASSERT_FALSE(hidden.ok());
    EXPECT_EQ(hidden.error().code, EINVAL);
}

// The file server's mount inside the workdir (./mnt) is an empty folder in
// the sandbox: the view at /swarm is the only way in. (A plain folder
// stands for the mount here; it is never looked at on the host.)
TEST_F(SandboxTest, TheServersMountIsMaskedWhereTheWorkdirWouldShowIt) {
    fs::create_directory(workdir.path / "mnt");
    write_file(workdir.file("mnt/secret"), "the whole swarm\n");
    spec.mount = workdir.file("mnt");
    Finished f = sh("ls -A mnt; cat mnt/secret; cat /swarm/hello.txt");
    EXPECT_TRUE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, "hello from the swarm\n");
    EXPECT_TRUE(contains(f.err, "mnt/secret: No such file or directory")) << f.err;
    spec.mount = spec.workdir;
    auto a = sandbox_argv(spec, {"true"});
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.error().code, EINVAL);
    EXPECT_TRUE(contains(a.error().message, "is the workdir")) << a.error().message;
    spec.mount = "relative";
    EXPECT_EQ(sandbox_argv(spec, {"true"}).error().code, EINVAL);
}

// Connecting to a pathname socket needs no right Landlock (ABI 7) governs,
// and a host socket can be left in the workdir: without net, no AF_UNIX
// socket can be made at all; a socketpair still can.
TEST_F(SandboxTest, AHostUnixSocketIsOutOfReachWithoutNet) {
    std::string path = workdir.file("host.sock");
    UniqueFd host(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof a.sun_path);
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(bind(host.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
    ASSERT_EQ(listen(host.get(), 4), 0);
    ASSERT_EQ(chmod(path.c_str(), 0666), 0);
    auto accepted = [&] {
        int c = accept4(host.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) close(c);
        return c >= 0;
    };
    const std::string py =
        "import socket, sys\n"
        "a, b = socket.socketpair(); a.send(b'p'); print('pair', b.recv(1).decode())\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('connected')\n";
    Finished off = sandboxed({"python3", "-c", py, path});
    EXPECT_FALSE(off.exit.ok) << describe(off);
    EXPECT_EQ(off.out, "pair p\n");
    EXPECT_TRUE(contains(off.err, "PermissionError")) << off.err;
    EXPECT_FALSE(accepted()) << "a connection from the sandbox reached the host's socket";

    spec.net = true;  // the agent holds net: it may reach the host's sockets
    Finished on = sandboxed({"python3", "-c", py, path});
    EXPECT_TRUE(on.exit.ok) << describe(on);
    EXPECT_EQ(on.out, "pair p\nconnected\n");
    EXPECT_TRUE(eventually(accepted, 5));
}

// As root the server gives no user namespace to bwrap's --disable-userns;
// the jail's filter refuses new ones itself. Threads and processes, which
// glibc starts with clone3 first, still start (clone3 is ENOSYS, glibc
// falls back to clone).
TEST_F(SandboxTest, NoNewUserNamespaceButThreadsAndProcessesStillStart) {
    for (bool net : {false, true}) {
        spec.net = net;
        Finished f = sh(
            "unshare -U true || echo refused; unshare -r id -u || echo refused; "
            "python3 -c 'import threading; t = threading.Thread(target=print, args=(\"thread\",)); "
            "t.start(); t.join()'; (echo subshell); sort --parallel=2 -S 1M /dev/null && echo "
            "sorted");
        ASSERT_TRUE(f.exit.ok) << describe(f);
        EXPECT_EQ(f.out, "refused\nrefused\nthread\nsubshell\nsorted\n") << "net " << net;
        EXPECT_TRUE(contains(f.err, "Operation not permitted")) << f.err;
    }
}

TEST_F(SandboxTest, TmpIsWritableAndPrivate) {
    std::string marker = "/tmp/swarmfs-sandbox-marker-" + std::to_string(getpid());
    Finished f = sh("stat -c %a /tmp; echo private > " + marker + " && cat " + marker);
    ASSERT_TRUE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, "1777\nprivate\n");
    EXPECT_FALSE(fs::exists(marker)) << "the sandbox's /tmp is the host's";
}

TEST_F(SandboxTest, TheViewIsReadableAndWritableAtSwarm) {
    Finished f = sh("cat /swarm/hello.txt; echo from the agent > /swarm/out.txt");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, "hello from the swarm\n");
    EXPECT_EQ(slurp(view.file("out.txt")), "from the agent\n");
    // Data, not programs: what lands in /swarm does not run from there
    // (Landlock); /tmp is a scratch space where it may.
    if (landlock_abi() > 0) {
        f =
            sh("printf '#!/bin/sh\\necho ran\\n' > /tmp/t; chmod +x /tmp/t; /tmp/t;"
               " cp /tmp/t /swarm/t; /swarm/t");
        EXPECT_EQ(f.out, "ran\n") << describe(f);
        EXPECT_TRUE(contains(f.err, "/swarm/t: Permission denied")) << f.err;
    }
}

TEST_F(SandboxTest, ItRunsAsTheAgentsUidWithNoCapabilitiesOrGroups) {
    // 900123 has no passwd entry: programs still run.
    Finished f = sh("id -u; id -g; id -G; grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    std::string u = std::to_string(kUid) + "\n";
    EXPECT_EQ(f.out.substr(0, 3 * u.size()), u + u + u) << f.out;
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
        EXPECT_TRUE(contains(f.out, std::string(set) + ":\t0000000000000000\n")) << set << f.out;
    EXPECT_TRUE(contains(f.out, "NoNewPrivs:\t1\n")) << f.out;
}

TEST_F(SandboxTest, ExitStatusAndOutputComeThroughAndAMissingCommandIs127) {
    Finished f = sh("echo out; echo err >&2; echo also > /dev/stderr; exit 7");
    EXPECT_EQ(f.exit.reason, "exit status 7") << describe(f);
    EXPECT_EQ(f.out, "out\n");
    EXPECT_EQ(f.err, "err\nalso\n");
    Finished missing = sandboxed({"no-such-command-swarmfs"});
    EXPECT_EQ(missing.exit.reason, "exit status 127") << describe(missing);
    EXPECT_EQ(missing.err,
              "swarmfs-jail: cannot run no-such-command-swarmfs: No such file or directory\n");
}

// ---- namespaces ----

TEST_F(SandboxTest, NoNetworkUnlessNet) {
    Listener listener;
    Finished off = sandboxed({"bash", "-c", connect_script(listener.port)});
    EXPECT_FALSE(off.exit.ok) << describe(off);
    EXPECT_FALSE(contains(off.out, "connected")) << off.out;
    EXPECT_FALSE(listener.accepted()) << "a connection from the sandbox reached the host";

    spec.net = true;
    Finished on = sandboxed({"bash", "-c", connect_script(listener.port)});
    EXPECT_TRUE(on.exit.ok) << describe(on);
    EXPECT_EQ(on.out, "connected\n");
    EXPECT_TRUE(eventually([&] { return listener.accepted(); }, 5));
}

TEST_F(SandboxTest, ItHasItsOwnPidNamespace) {
    std::string host_init = slurp("/proc/1/comm");
    Finished f = sh("cat /proc/1/comm; ls /proc | grep -c '^[0-9]'");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    auto got = lines(f.out);
    ASSERT_EQ(got.size(), 2u) << f.out;
    EXPECT_NE(got[0] + "\n", host_init);
    // bwrap's init, sh, ls, grep.
    EXPECT_LE(std::stoi(got[1]), 5) << f.out;
}

TEST_F(SandboxTest, ItRunsInASessionOfItsOwn) {
    auto argv = sandbox_argv(spec, {"sleep", "30"});
    ASSERT_TRUE(argv) << argv.error().message;
    ExecSpec e;
    e.argv = *argv;
    e.env = kEnv;
    auto s = spawn(e);
    ASSERT_TRUE(s) << s.error().message;
    // Find the sleep among bwrap's descendants once it runs as the agent.
    pid_t bwrap = s->child.pid(), sleeper = 0;
    std::map<pid_t, std::pair<pid_t, pid_t>> table;
    ASSERT_TRUE(eventually([&] {
        table = process_table();
        for (auto& [pid, ps] : table) {
            for (pid_t p = ps.first; p > 1 && table.count(p); p = table[p].first)
                if (p == bwrap && slurp("/proc/" + std::to_string(pid) + "/comm") == "sleep\n")
                    sleeper = pid;
        }
        return sleeper != 0;
    })) << "the command never started";
    pid_t session = table[sleeper].second;
    EXPECT_NE(session, getsid(0));
    EXPECT_NE(session, table[bwrap].second);
    s->child.kill_group(SIGKILL);  // bwrap: the sandbox dies with it
    Finished f = finish(*s, 10s);
    EXPECT_TRUE(f.complete);
    EXPECT_TRUE(eventually([&] { return kill(sleeper, 0) != 0; }, 10))
        << "the command outlived bwrap";
}

// ---- Landlock, shown on the jail alone (outside bwrap, as root) ----

TEST(SandboxLandlock, TheJailRefusesWritesOutsideItsRulesEvenToRoot) {
    if (landlock_abi() == 0) GTEST_SKIP() << "this kernel has no Landlock (landlock_abi() == 0)";
    ASSERT_EQ(geteuid(), 0u) << "this test shows root being refused";
    Dir allowed, other;  // both root's: root may write either without Landlock
    std::string script = "echo a > " + allowed.file("f") + " && echo wrote-allowed; echo b > " +
                         other.file("f") + " && echo wrote-other";
    std::vector<std::string> jail = {jail_path(),          "--ro", "/usr", "--ro", "/etc", "--rw",
                                     allowed.path.string()};
    auto argv = jail;
    argv.insert(argv.end(), {"--", "sh", "-c", script});
    Finished f = run(argv);
    EXPECT_EQ(f.out, "wrote-allowed\n") << describe(f);
    EXPECT_TRUE(contains(f.err, other.file("f") + ": Permission denied")) << f.err;
    EXPECT_FALSE(fs::exists(other.file("f")));
    // The same with a rule for the other folder: it was Landlock.
    argv = jail;
    argv.insert(argv.end(), {"--rw", other.path.string(), "--", "sh", "-c", script});
    f = run(argv);
    EXPECT_EQ(f.out, "wrote-allowed\nwrote-other\n") << describe(f);
    // Execute needs --ro (or --rwx): --rw alone does not run what it wrote.
    write_file(allowed.file("tool"), "#!/bin/sh\necho ran\n");
    chmod(allowed.file("tool").c_str(), 0755);
    argv = jail;
    argv.insert(argv.end(), {"--", allowed.file("tool")});
    f = run(argv);
    EXPECT_EQ(f.exit.reason, "exit status 126") << describe(f);
    EXPECT_TRUE(contains(f.err, "Permission denied")) << f.err;
}

TEST(SandboxLandlock, TcpNeedsNet) {
    if (landlock_abi() < 4)
        GTEST_SKIP() << "Landlock ABI " << landlock_abi() << " has no TCP rules (needs 4)";
    Listener listener;
    std::vector<std::string> argv = {jail_path(), "--ro", "/usr",
                                     "--ro",      "/etc", "--",
                                     "bash",      "-c",   connect_script(listener.port)};
    Finished f = run(argv);
    EXPECT_FALSE(f.exit.ok) << describe(f);
    EXPECT_TRUE(contains(f.err, "Permission denied")) << f.err;
    EXPECT_FALSE(listener.accepted());
    argv.insert(argv.begin() + 1, "--net");
    f = run(argv);
    EXPECT_EQ(f.out, "connected\n") << describe(f);
    EXPECT_TRUE(eventually([&] { return listener.accepted(); }, 5));
}

TEST(SandboxLandlock, SignalsStayInside) {
    if (landlock_abi() < 6)
        GTEST_SKIP() << "Landlock ABI " << landlock_abi() << " has no signal scoping (needs 6)";
    // Root may signal us; under the jail it may only signal its own.
    std::string script =
        "kill -0 $$ && echo own; kill -0 " + std::to_string(getpid()) + " && echo outside";
    Finished f = run({jail_path(), "--ro", "/usr", "--ro", "/etc", "--", "sh", "-c", script});
    EXPECT_EQ(f.out, "own\n") << describe(f);
    EXPECT_TRUE(contains(f.err, "Operation not permitted")) << f.err;
}

TEST(SandboxJail, FailuresSayWhyLikeEnv) {
    Finished f = run({jail_path(), "--", "no-such-command-swarmfs"});
    EXPECT_EQ(f.exit.reason, "exit status 127") << describe(f);
    EXPECT_EQ(f.err,
              "swarmfs-jail: cannot run no-such-command-swarmfs: No such file or directory\n");
    f = run({jail_path(), "--bogus", "--", "true"});
    EXPECT_EQ(f.exit.reason, "exit status 126") << describe(f);
    EXPECT_TRUE(contains(f.err, "swarmfs-jail: unknown option '--bogus'")) << f.err;
    f = run({jail_path(), "--ro", "/no/such/path-swarmfs", "--", "true"});
    if (landlock_abi() > 0) {
        EXPECT_EQ(f.exit.reason, "exit status 126") << describe(f);
        EXPECT_EQ(f.err,
                  "swarmfs-jail: landlock: /no/such/path-swarmfs: No such file or directory\n");
    }
    f = run({jail_path(), "--nproc", "many", "--", "true"});
    EXPECT_EQ(f.exit.reason, "exit status 126") << describe(f);
    EXPECT_EQ(f.err, "swarmfs-jail: --nproc: not a number: 'many'\n");
}

// ---- limits ----

TEST_F(SandboxTest, TheProcessLimitCountsEveryProcessOfTheUid) {
    spec.uid = spec.gid = kCountUid;
    spec.limits.processes = 8;
    // sh and 7 sleeps make 8; the 8th sleep cannot start, and sh gives up.
    Finished f = sh("i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); echo $i; done");
    EXPECT_TRUE(f.complete) << describe(f);
    auto started = lines(f.out);
    ASSERT_FALSE(started.empty()) << describe(f);
    EXPECT_EQ(started.back(), "7") << describe(f);
    EXPECT_TRUE(contains(f.err, "Cannot fork")) << f.err;
    // The sleeps went with the sandbox when sh ended.
    EXPECT_TRUE(eventually([] { return processes_of(kCountUid) == 0; }, 10));
}

TEST_F(SandboxTest, AForkBombStopsAtTheProcessLimit) {
    spec.uid = spec.gid = kBombUid;
    spec.limits.processes = 16;
    ASSERT_TRUE(eventually([] { return processes_of(kBombUid) == 0; }, 10))
        << "uid " << kBombUid << " is in use";
    // The classic bomb, except that each level waits for its children: the
    // whole tree stays alive (and so does the sandbox, which bwrap ends
    // when its command ends).
    auto argv = sandbox_argv(spec, {"bash", "-c", ":(){ :|:& wait; };:"});
    ASSERT_TRUE(argv) << argv.error().message;
    ExecSpec e;
    e.argv = *argv;
    e.env = kEnv;
    auto s = spawn(e);
    ASSERT_TRUE(s) << s.error().message;
    // Until bash says a fork was refused, and a while after: never more
    // processes than the limit.
    int most = 0;
    std::string err;
    auto watch = [&](std::chrono::milliseconds for_how_long, bool until_refused) {
        auto end = std::chrono::steady_clock::now() + for_how_long;
        while (std::chrono::steady_clock::now() < end) {
            most = std::max(most, processes_of(kBombUid));
            pollfd p{s->err.get(), POLLIN, 0};
            if (poll(&p, 1, 20) > 0) {
                char buf[4096];
                ssize_t n;
                while ((n = read(s->err.get(), buf, sizeof buf)) > 0)
                    if (err.size() < 65536) err.append(buf, static_cast<size_t>(n));
            }
            if (until_refused && contains(err, "Resource temporarily unavailable")) return true;
        }
        return false;
    };
    EXPECT_TRUE(watch(10s, true)) << "no fork was refused; stderr: " << err;
    watch(300ms, false);
    EXPECT_EQ(most, 16) << "the bomb's tree waits: it fills the limit, and no more";
    // The test is the wall clock: killing bwrap ends all of it.
    s->child.kill_group(SIGKILL);
    Finished f = finish(*s, 10s);
    EXPECT_TRUE(f.complete);
    EXPECT_TRUE(eventually([] { return processes_of(kBombUid) == 0; }, 10))
        << processes_of(kBombUid) << " processes of the bomb are left";
    // And the host is fine: the same uid can start a sandbox again.
    Finished after = sh("echo alive");
    EXPECT_EQ(after.out, "alive\n") << describe(after);
}

TEST_F(SandboxTest, AMemoryHogFailsUnderTheMemoryLimit) {
    // A string doubled up to 64 MiB: with copies, ~200 MiB of address space.
    std::string hog =
        "awk 'BEGIN { s = \"x\"; for (i = 0; i < 26; i++) s = s s; print length(s) }'";
    spec.limits.memory_bytes = 32 << 20;
    Finished f = sh(hog);
    EXPECT_FALSE(f.exit.ok) << describe(f);
    EXPECT_TRUE(contains(f.err, "out of memory")) << f.err;
    EXPECT_EQ(f.out, "");
    EXPECT_TRUE(f.complete);
    spec.limits.memory_bytes = 1 << 30;  // the default: it fits
    Finished fits = sh(hog);
    EXPECT_EQ(fits.out, "67108864\n") << describe(fits);
}

TEST_F(SandboxTest, ACpuSpinnerDiesAtItsCpuLimit) {
    spec.limits.cpu_seconds = 1;
    Finished f = sh("while :; do :; done", 15s);
    ASSERT_TRUE(f.complete) << "still spinning after 15 s";
    // sh dies of SIGXCPU (SIGKILL a second later if it caught that); bwrap
    // reports it as 128 + the signal.
    EXPECT_TRUE(f.exit.reason == "exit status " + std::to_string(128 + SIGXCPU) ||
                f.exit.reason == "exit status " + std::to_string(128 + SIGKILL))
        << describe(f);
    EXPECT_LT(f.seconds, 8) << "1 s of CPU took " << f.seconds << " s";
}

TEST_F(SandboxTest, AFileCannotGrowPastTheFileSizeLimit) {
    spec.limits.file_bytes = 1 << 20;
    Finished f = sh("head -c 3000000 /dev/zero > /swarm/big; echo status $?");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, "status " + std::to_string(128 + SIGXFSZ) + "\n");  // head got SIGXFSZ
    EXPECT_EQ(fs::file_size(view.file("big")), 1u << 20);
}

TEST_F(SandboxTest, OpenFilesAreLimited) {
    spec.limits.open_files = 32;
    Finished f = sh("ulimit -n; ulimit -Hn");
    ASSERT_TRUE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, "32\n32\n");
}

// ---- a non-root server ----

TEST(SandboxRootless, ANonRootServerRunsItAsItselfInAUserNamespace) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to become another user for the test";
    if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv";
    Dir view(65534);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ASSERT_GT(n, 0);
    self[n] = '\0';
    ExecSpec e;
    e.argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", self};
    e.env = kEnv;
    e.env.push_back("SWARMFS_SANDBOX_TEST_ROOTLESS=" + view.path.string());
    auto s = spawn(e);
    ASSERT_TRUE(s) << s.error().message;
    Finished f = finish(*s);
    ASSERT_TRUE(f.exit.ok) << describe(f);
    EXPECT_EQ(f.out, "65534\nCapEff:\t0000000000000000\nview-ok\nno-userns\n");
    EXPECT_EQ(slurp(view.file("from-inside")), "hi\n");
}

// ---- the argv and the errors ----

namespace {
// Sets an environment variable for one scope.
struct ScopedEnv {
    std::string name;
    std::optional<std::string> old;
    ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) {
        if (const char* v = getenv(name.c_str())) old = v;
        setenv(name.c_str(), value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (old)
            setenv(name.c_str(), old->c_str(), 1);
        else
            unsetenv(name.c_str());
    }
};
}  // namespace

TEST_F(SandboxTest, TheArgvIsBwrapThenTheJailThenTheCommand) {
    auto a = sandbox_argv(spec, {"cat", "--", "x"});
    ASSERT_TRUE(a) << a.error().message;
    const auto& v = *a;
    EXPECT_EQ(v.front(), bwrap_path());
    // bwrap's options end at the first "--"; the jail follows it.
    auto jail = std::find(v.begin(), v.end(), std::string("--"));
    ASSERT_NE(jail, v.end());
    ++jail;
    ASSERT_NE(jail, v.end());
    EXPECT_EQ(*jail, kJailInSandbox);
    std::vector<std::string> tail(v.end() - 4, v.end());
    EXPECT_EQ(tail, (std::vector<std::string>{"--", "cat", "--", "x"}));
    for (const char* opt : {"--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
                            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"})
        EXPECT_NE(std::find(v.begin(), jail, std::string(opt)), jail) << opt;
    spec.net = true;
    auto net = sandbox_argv(spec, {"true"});
    ASSERT_TRUE(net);
    EXPECT_EQ(std::find(net->begin(), net->end(), "--unshare-net"), net->end());
}

TEST_F(SandboxTest, AMissingBwrapOrJailIsENOENTAndSaysWhich) {
    {
        ScopedEnv env("SWARMFS_BWRAP", "/no/such/bwrap-swarmfs");
        auto a = sandbox_argv(spec, {"true"});
        ASSERT_FALSE(a);
        EXPECT_EQ(a.error().code, ENOENT);
        EXPECT_TRUE(contains(a.error().message, "bubblewrap: /no/such/bwrap-swarmfs: No such file"))
            << a.error().message;
    }
    {
        ScopedEnv env("SWARMFS_JAIL", "/no/such/jail-swarmfs");
        EXPECT_EQ(jail_path(), "/no/such/jail-swarmfs");
        auto a = sandbox_argv(spec, {"true"});
        ASSERT_FALSE(a);
        EXPECT_EQ(a.error().code, ENOENT);
        EXPECT_TRUE(contains(a.error().message, "/no/such/jail-swarmfs: No such file"))
            << a.error().message;
    }
    EXPECT_TRUE(sandbox_argv(spec, {"true"}));
}

TEST_F(SandboxTest, BadSpecsAreRefusedWithWords) {
    auto code = [&](SandboxSpec s, std::vector<std::string> argv = {"true"}) {
        auto a = sandbox_argv(s, argv);
        return a ? 0 : a.error().code;
    };
    EXPECT_EQ(code(spec, {}), EINVAL);
    SandboxSpec s = spec;
    s.workdir = "relative/dir";
    EXPECT_EQ(code(s), EINVAL);
    s = spec;
    s.workdir = "/";
    EXPECT_EQ(code(s), EINVAL);
    s = spec;
    s.workdir = "/no/such/dir-swarmfs";
    EXPECT_EQ(code(s), ENOENT);
    s = spec;
    s.view = workdir.file("README");
    EXPECT_EQ(code(s), ENOTDIR);
    s = spec;
    s.hide = {workdir.path.parent_path().string()};  // would hide the workdir itself
    EXPECT_EQ(code(s), EINVAL);
    s = spec;
    s.gid = 0;
    EXPECT_EQ(code(s), EINVAL);
    s = spec;
    s.limits.processes = 0;
    auto a = sandbox_argv(s, {"true"});
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, EINVAL);
    EXPECT_TRUE(contains(a.error().message, "sandbox.processes")) << a.error().message;
}

// ---- the "sandbox" config key ----

TEST(SandboxPolicy, TrueFalseAndEmptyObject) {
    auto t = SandboxPolicy::from_json(true);
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, SandboxPolicy{});
    auto e = SandboxPolicy::from_json(nlohmann::json::object());
    ASSERT_TRUE(e);
    EXPECT_EQ(*e, SandboxPolicy{});
    auto f = SandboxPolicy::from_json(false);
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->enabled);
    auto off = SandboxPolicy::from_json({{"enabled", false}});
    ASSERT_TRUE(off);
    EXPECT_FALSE(off->enabled);
}

TEST(SandboxPolicy, EveryKeyAndTheSizeSuffixes) {
    auto p = SandboxPolicy::from_json({{"cpu", 2.5},
                                       {"memory", "512M"},
                                       {"processes", 64},
                                       {"file_size", "64M"},
                                       {"open_files", 100},
                                       {"wall", 30}});
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_TRUE(p->enabled);
    EXPECT_EQ(p->limits.cpu_seconds, 2.5);
    EXPECT_EQ(p->limits.memory_bytes, 512ll << 20);
    EXPECT_EQ(p->limits.processes, 64);
    EXPECT_EQ(p->limits.file_bytes, 64ll << 20);
    EXPECT_EQ(p->limits.open_files, 100);
    EXPECT_EQ(p->limits.wall_seconds, 30);
    auto bytes = [](const nlohmann::json& v) {
        auto r = SandboxPolicy::from_json({{"memory", v}});
        return r ? r->limits.memory_bytes : -1;
    };
    EXPECT_EQ(bytes("1G"), 1ll << 30);
    EXPECT_EQ(bytes("2GiB"), 2ll << 30);
    EXPECT_EQ(bytes("65536k"), 64ll << 20);
    EXPECT_EQ(bytes("1t"), 1ll << 40);
    EXPECT_EQ(bytes(1e9), 1000000000);
    EXPECT_EQ(bytes(33554432), 32ll << 20);
    EXPECT_EQ(bytes("12X"), -1);
    EXPECT_EQ(bytes("-5M"), -1);
    EXPECT_EQ(bytes("M"), -1);
    EXPECT_EQ(bytes(" 5M"), -1);
    EXPECT_EQ(bytes("99999999999999999999"), -1);
}

TEST(SandboxPolicy, RefusalsNameTheKey) {
    auto message = [](const nlohmann::json& j) -> std::string {
        auto r = SandboxPolicy::from_json(j);
        if (r) return "accepted";
        EXPECT_EQ(r.error().code, EINVAL);
        return r.error().message;
    };
    EXPECT_TRUE(contains(message({{"cpus", 1}}), "unknown key \"cpus\"")) << message({{"cpus", 1}});
    EXPECT_TRUE(contains(message({{"cpu", 0}}), "sandbox.cpu"));
    EXPECT_TRUE(contains(message({{"cpu", -1}}), "sandbox.cpu"));
    EXPECT_TRUE(contains(message({{"cpu", "60"}}), "sandbox.cpu"));
    EXPECT_TRUE(contains(message({{"wall", 1e9}}), "sandbox.wall"));
    EXPECT_TRUE(contains(message({{"memory", "1M"}}), "sandbox.memory"));  // below 16M
    EXPECT_TRUE(contains(message({{"memory", true}}), "sandbox.memory"));
    EXPECT_TRUE(contains(message({{"memory", "lots"}}), "sandbox.memory"));
    EXPECT_TRUE(contains(message({{"processes", 0}}), "sandbox.processes"));
    EXPECT_TRUE(contains(message({{"processes", 1.5}}), "sandbox.processes"));
    EXPECT_TRUE(contains(message({{"processes", "8"}}), "sandbox.processes"));
    EXPECT_TRUE(contains(message({{"file_size", -1}}), "sandbox.file_size"));
    EXPECT_TRUE(contains(message({{"open_files", 3}}), "sandbox.open_files"));
    EXPECT_TRUE(contains(message({{"open_files", 1 << 21}}), "sandbox.open_files"));
    EXPECT_TRUE(contains(message({{"enabled", "yes"}}), "sandbox.enabled"));
    EXPECT_TRUE(contains(message(3), "sandbox must be false, true or an object"));
    EXPECT_TRUE(contains(message(nullptr), "sandbox must be false, true or an object"));
    EXPECT_EQ(message({{"file_size", 0}}), "accepted");  // no writes at all is a choice
}

TEST(SandboxPolicy, ToJsonRoundTrips) {
    SandboxPolicy p;
    p.enabled = false;
    p.limits = {1.5, 64ll << 20, 7, 0, 16, 12.25};
    auto back = SandboxPolicy::from_json(p.to_json());
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, p);
    auto defaults = SandboxPolicy::from_json(SandboxPolicy{}.to_json());
    ASSERT_TRUE(defaults);
    EXPECT_EQ(*defaults, SandboxPolicy{});
}

// ---- what it costs ----

// Not asserted (it depends on the machine), only shown: the start of
// /bin/true sandboxed and direct, for the benchmark to come.
TEST_F(SandboxTest, StartTimeOfTrueSandboxedAndDirect) {
    constexpr int kRuns = 100;
    auto argv = sandbox_argv(spec, {"/bin/true"});
    ASSERT_TRUE(argv);
    auto time = [&](const std::vector<std::string>& a) {
        auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < kRuns; ++i) {
            Finished f = run(a);
            if (!f.exit.ok) {
                ADD_FAILURE() << describe(f);
                break;
            }
        }
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                   .count() /
               kRuns;
    };
    double direct = time({"/bin/true"});
    double sandboxed = time(*argv);
    std::cout << "[          ] /bin/true: direct " << direct << " ms, sandboxed " << sandboxed
              << " ms per run (" << kRuns << " runs each)\n";
}

// What a sandbox shows, as swarmfs asks at load about an exec tool's
// program: the system folders, the workdir and the read paths (at their real
// paths), nothing else.
TEST(SandboxShows, SystemFoldersTheWorkdirAndReadPathsOnly) {
    Dir work, tools, elsewhere;
    SandboxSpec spec;
    spec.workdir = work.path.string();
    spec.read = {tools.path.string()};
    EXPECT_TRUE(sandbox_shows(spec, "/usr/bin/env"));
    EXPECT_TRUE(sandbox_shows(spec, "/bin/sh"));
    EXPECT_TRUE(sandbox_shows(spec, work.file("bin/tool")));
    EXPECT_TRUE(sandbox_shows(spec, tools.file("lookup.sh")));
    EXPECT_FALSE(sandbox_shows(spec, elsewhere.file("lookup.sh")));
    EXPECT_FALSE(sandbox_shows(spec, "/etc/shadow"));
    // A symlink is judged by where it leads.
    std::filesystem::create_symlink(elsewhere.file("lookup.sh"), work.file("link"));
    write_file(elsewhere.file("lookup.sh"), "#!/bin/sh\n");
    EXPECT_FALSE(sandbox_shows(spec, work.file("link")));
    spec.read.clear();
    EXPECT_FALSE(sandbox_shows(spec, tools.file("lookup.sh")));
}
