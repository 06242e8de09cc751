#include "tests/support/mount_fixture.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#ifndef SWARMFS_BIN
#error "SWARMFS_BIN must be defined to the path of the swarmfs executable"
#endif

namespace swarmfs::it {

double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void sleep_for(double seconds) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

bool wait_until(const std::function<bool()>& pred, double timeout, double interval) {
    const double deadline = now() + timeout;
    while (true) {
        if (pred()) return true;
        if (now() >= deadline) return pred();
        sleep_for(interval);
    }
}

namespace {

int decode_status(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

// Waits for `pid` for up to `timeout` seconds; returns the raw status.
std::optional<int> wait_pid(pid_t pid, double timeout) {
    const double deadline = now() + timeout;
    while (true) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        if (r < 0 && errno != EINTR) return std::nullopt;
        if (now() >= deadline) return std::nullopt;
        sleep_for(0.01);
    }
}

void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Raises the fd limit (the blocked-reader test opens ~1000 files) and ignores
// SIGPIPE (a reader on a killed server must not kill the test binary). Once.
void init_process() {
    static bool done = false;
    if (done) return;
    done = true;
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 8192) {
        rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 8192);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
}

}  // namespace

ShResult sh(const std::string& cmd, double timeout) {
    ShResult res;
    const double start = now();
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0) return res;
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(out[0]);
        close(out[1]);
        return res;
    }
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        signal(SIGPIPE, SIG_DFL);
        execv("/bin/sh", const_cast<char* const*>(argv));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        return res;
    }
    setpgid(pid, pid);  // also from the parent, to avoid a race with kill(-pid)
    const double deadline = start + timeout;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    std::optional<int> st;
    char buf[65536];
    while (open_fds > 0) {
        double left = deadline - now();
        if (left <= 0) {
            res.timed_out = true;
            break;
        }
        int n = poll(fds, 2, static_cast<int>(std::min(left, 0.2) * 1000) + 1);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r > 0) {
                (i == 0 ? res.out : res.err).append(buf, static_cast<size_t>(r));
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
        // A background grandchild may keep the pipes open: stop once the shell
        // is gone and nothing more is coming.
        if (!st) {
            int raw = 0;
            if (waitpid(pid, &raw, WNOHANG) == pid) st = raw;
        }
        if (st && n == 0) break;
    }
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    if (!st) {
        if (res.timed_out) kill(-pid, SIGKILL);
        st = wait_pid(pid, res.timed_out ? 5 : std::max(1.0, deadline - now()));
        if (!st && !res.timed_out) {
            res.timed_out = true;
            kill(-pid, SIGKILL);
            st = wait_pid(pid, 5);
        }
    }
    if (st) res.status = decode_status(*st);
    res.seconds = now() - start;
    return res;
}

std::string shq(std::string_view s) {
    std::string r = "'";
    for (char c : s) {
        if (c == '\'')
            r += "'\\''";
        else
            r += c;
    }
    r += "'";
    return r;
}

std::optional<std::string> read_file(const std::string& path, int* err) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err) *err = errno;
        return std::nullopt;
    }
    std::string s;
    char buf[65536];
    while (true) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
            s.append(buf, static_cast<size_t>(r));
            continue;
        }
        if (r == 0) break;
        if (errno == EINTR) continue;
        if (err) *err = errno;
        close(fd);
        return std::nullopt;
    }
    if (close(fd) != 0) {
        if (err) *err = errno;
        return std::nullopt;
    }
    if (err) *err = 0;
    return s;
}

std::string slurp(const std::string& path) { return read_file(path).value_or(""); }

int write_file(const std::string& path, std::string_view data, int flags, const char** stage) {
    const char* dummy;
    if (!stage) stage = &dummy;
    *stage = "open";
    int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    *stage = "write";
    size_t off = 0;
    while (off < data.size()) {
        ssize_t w = write(fd, data.data() + off, data.size() - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return e;
        }
        off += static_cast<size_t>(w);
    }
    *stage = "close";
    if (close(fd) != 0) return errno;
    *stage = "";
    return 0;
}

std::vector<std::string> lines(std::string_view s) {
    std::vector<std::string> v;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t nl = s.find('\n', pos);
        if (nl == std::string_view::npos) {
            v.emplace_back(s.substr(pos));
            break;
        }
        v.emplace_back(s.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return v;
}

size_t count(std::string_view hay, std::string_view needle) {
    if (needle.empty()) return 0;
    size_t n = 0;
    for (size_t pos = hay.find(needle); pos != std::string_view::npos;
         pos = hay.find(needle, pos + needle.size()))
        ++n;
    return n;
}

std::optional<std::string> kv(std::string_view s, std::string_view key) {
    for (const auto& line : lines(s)) {
        if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
            line[key.size()] == ' ')
            return line.substr(key.size() + 1);
        if (line == key) return std::string();
    }
    return std::nullopt;
}

std::optional<std::vector<std::string>> list_dir(const std::string& path) {
    DIR* d = opendir(path.c_str());
    if (!d) return std::nullopt;
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

// ---------------------------------------------------------------- Proc

Proc::Proc(const std::string& cmd) {
    init_process();
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    std::string full = "exec " + cmd;
    const char* argv[] = {"/bin/sh", "-c", full.c_str(), nullptr};
    pid_ = fork();
    if (pid_ == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        ::signal(SIGPIPE, SIG_DFL);
        ::signal(SIGINT, SIG_DFL);
        execv("/bin/sh", const_cast<char* const*>(argv));
        _exit(127);
    }
    close(out[1]);
    if (pid_ < 0) {
        close(out[0]);
        return;
    }
    setpgid(pid_, pid_);
    fd_ = out[0];
    set_nonblock(fd_);
}

Proc::~Proc() {
    if (pid_ > 0 && !status_) {
        kill(-pid_, SIGKILL);
        kill(pid_, SIGKILL);
        // A process blocked in a FUSE request that the server never answers
        // stays until the server goes; TearDown reaps it then.
        if (auto st = wait_pid(pid_, 0.5)) status_ = decode_status(*st);
    }
    if (fd_ >= 0) close(fd_);
}

bool Proc::try_reap() {
    if (status_ || pid_ <= 0) return status_.has_value();
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) status_ = decode_status(st);
    return status_.has_value();
}

bool Proc::pump(double timeout) {
    if (fd_ < 0) return false;
    const double deadline = now() + timeout;
    char buf[65536];
    while (true) {
        ssize_t r = read(fd_, buf, sizeof buf);
        if (r > 0) {
            out_.append(buf, static_cast<size_t>(r));
            continue;
        }
        if (r == 0) {
            close(fd_);
            fd_ = -1;
            return false;
        }
        if (errno != EAGAIN && errno != EINTR) return false;
        double left = deadline - now();
        if (left <= 0) return true;
        pollfd pfd{fd_, POLLIN, 0};
        poll(&pfd, 1, static_cast<int>(left * 1000) + 1);
        if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR))) return true;
    }
}

bool Proc::wait_for(std::string_view needle, double timeout) {
    const double deadline = now() + timeout;
    while (out_.find(needle) == std::string::npos) {
        double left = deadline - now();
        if (left <= 0) return false;
        if (!pump(std::min(left, 0.05)) && fd_ < 0) return out_.find(needle) != std::string::npos;
    }
    return true;
}

std::optional<int> Proc::wait_exit(double timeout) {
    const double deadline = now() + timeout;
    while (true) {
        if (fd_ >= 0) pump(std::min(0.05, std::max(0.0, deadline - now())));
        if (try_reap() && fd_ >= 0) pump(0);
        if (status_ && fd_ < 0) return status_;
        if (status_ && now() >= deadline) return status_;
        if (now() >= deadline) return std::nullopt;
        if (fd_ < 0) sleep_for(0.01);
    }
}

void Proc::signal(int sig) {
    if (pid_ > 0 && !status_) kill(pid_, sig);
}

// ---------------------------------------------------------------- MountedSwarm

namespace {

struct MountEntry {
    std::string dev;  // "major:minor"
    std::string fstype;
};

std::optional<MountEntry> find_mount(const std::string& mnt) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    std::optional<MountEntry> found;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string id, parent, dev, root, point;
        ls >> id >> parent >> dev >> root >> point;
        if (point != mnt) continue;
        MountEntry e;
        e.dev = dev;
        auto dash = line.find(" - ");
        if (dash != std::string::npos) {
            std::istringstream rest(line.substr(dash + 3));
            rest >> e.fstype;
        }
        found = e;  // the last one is the one on top
    }
    return found;
}

const char kGuardianScript[] =
    "P=; C=\n"
    "while read k v; do case \"$k\" in pid) P=$v;; conn) C=$v;; done) exit 0;; esac; done\n"
    "[ -n \"$P\" ] && kill -9 \"$P\" 2>/dev/null\n"
    "for d in /proc/[0-9]*; do case $(readlink $d/cwd 2>/dev/null) in \"$2\"|\"$2\"/*) "
    "kill -9 ${d#/proc/} 2>/dev/null;; esac; done\n"
    "[ -n \"$C\" ] && [ -e /sys/fs/fuse/connections/$C/abort ] && "
    "echo 1 > /sys/fs/fuse/connections/$C/abort\n"
    "sleep 0.2\n"
    "fusermount3 -u -z \"$1\" 2>/dev/null || umount -l \"$1\" 2>/dev/null\n"
    "grep -q \" $1 \" /proc/mounts || rm -rf --one-file-system \"$2\"\n";

}  // namespace

std::string MountedSwarm::p(std::string_view rel) const { return mnt_ + "/" + std::string(rel); }

void MountedSwarm::SetUp() {
    init_process();
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        skipped_ = true;
        GTEST_SKIP() << "no /dev/fuse: mount tests skipped (" << strerror(errno) << ")";
    }
    close(fd);

    char tmpl[] = "/tmp/swarmfs-it.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << strerror(errno);
    dir_ = tmpl;
    // The swarm file's folder is the exec agents' working folder, and their
    // sandboxed processes run as the agent's own uid: it must be able to
    // enter it, as it can a user's project folder (the state folder inside
    // stays the server's: the server makes it 0700).
    ASSERT_EQ(chmod(dir_.c_str(), 0755), 0) << strerror(errno);
    mnt_ = dir_ + "/mnt";
    state_ = dir_ + "/state";
    log_ = dir_ + "/server.log";
    ASSERT_EQ(mkdir(mnt_.c_str(), 0755), 0) << strerror(errno);
    ASSERT_EQ(mkdir(state_.c_str(), 0755), 0) << strerror(errno);
    std::string cfg = swarm_config();
    if (!swarm_config_file().empty()) {
        config_path_ = swarm_config_file();
    } else if (!cfg.empty()) {
        config_path_ = dir_ + "/swarm.json";
        ASSERT_EQ(write_file(config_path_, cfg), 0);
    }

    // The guardian cleans up if this process dies without TearDown.
    int gp[2];
    ASSERT_EQ(pipe2(gp, O_CLOEXEC), 0);
    // Double fork: the guardian must not be a descendant of this process, or
    // whoever kills this process tree (ctest on a timeout) kills it too.
    pid_t mid = fork();
    if (mid == 0) {
        setsid();
        if (fork() != 0) _exit(0);
        dup2(gp[0], 0);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl("/bin/sh", "sh", "-c", kGuardianScript, "guardian", mnt_.c_str(), dir_.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
    }
    ASSERT_GT(mid, 0) << strerror(errno);
    wait_pid(mid, 5);
    close(gp[0]);
    guardian_fd_ = gp[1];

    ASSERT_NO_FATAL_FAILURE(start());
}

void MountedSwarm::guardian_say(const std::string& line) {
    if (guardian_fd_ < 0) return;
    std::string l = line + "\n";
    if (write(guardian_fd_, l.data(), l.size()) < 0) {
    }
}

void MountedSwarm::spawn_server() {
    std::vector<std::string> args = {SWARMFS_BIN, mnt_, "--state", state_};
    if (!config_path_.empty()) {
        args.push_back("--config");
        args.push_back(config_path_);
    }
    args.push_back("-f");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int logfd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    {
        std::string banner = "=== start:";
        for (auto& a : args) banner += " " + a;
        banner += "\n";
        if (write(logfd, banner.data(), banner.size()) < 0) {
        }
    }
    pid_ = fork();
    if (pid_ == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        if (chdir(dir_.c_str()) != 0) _exit(126);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(logfd);
    if (pid_ > 0) {
        setpgid(pid_, pid_);
        guardian_say("pid " + std::to_string(pid_));
    }
}

void MountedSwarm::start() {
    ASSERT_FALSE(mounted()) << mnt_ << " is already mounted";
    spawn_server();
    ASSERT_GT(pid_, 0) << "fork: " << strerror(errno);
    const double deadline = now() + 10;
    std::string why;
    while (true) {
        int st = 0;
        if (waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            FAIL() << "swarmfs exited before the mount was ready (status " << decode_status(st)
                   << ")\n--- server log ---\n"
                   << server_log();
        }
        if (auto m = find_mount(mnt_)) {
            struct stat sb {};
            if (stat(p("ctl").c_str(), &sb) == 0) {
                auto colon = m->dev.find(':');
                if (colon != std::string::npos && m->dev.substr(0, colon) == "0") {
                    conn_ = m->dev.substr(colon + 1);
                    guardian_say("conn " + conn_);
                }
                return;
            }
            why = std::string("mounted but stat(ctl) fails: ") + strerror(errno);
        } else {
            why = "not in /proc/self/mountinfo";
        }
        if (now() > deadline) {
            FAIL() << "swarmfs did not mount " << mnt_ << " within 10 s (" << why
                   << ")\n--- server log ---\n"
                   << server_log();
        }
        sleep_for(0.02);
    }
}

int MountedSwarm::stop(double timeout) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    auto st = wait_pid(pid_, timeout);
    if (!st) {
        ADD_FAILURE() << "swarmfs did not exit within " << timeout << " s of SIGTERM";
        kill(pid_, SIGKILL);
        st = wait_pid(pid_, 5);
    }
    pid_ = -1;
    // A clean server unmounts itself; if it did not, the caller can see it in
    // mounted() and TearDown unmounts it.
    if (!mounted()) conn_.clear();
    return st ? *st : -1;
}

void MountedSwarm::abort_connection() {
    if (conn_.empty()) return;
    std::string path = "/sys/fs/fuse/connections/" + conn_ + "/abort";
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "1", 1) < 0) {
        }
        close(fd);
    }
}

void MountedSwarm::unmount_lazy() {
    if (!mounted()) {
        conn_.clear();
        return;
    }
    sh("fusermount3 -u -z " + shq(mnt_) + " 2>/dev/null || umount -l " + shq(mnt_), 10);
    wait_until([&] { return !mounted(); }, 5);
    conn_.clear();
}

void MountedSwarm::kill9() {
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        auto st = wait_pid(pid_, 10);
        if (!st) ADD_FAILURE() << "swarmfs did not die of SIGKILL within 10 s";
        pid_ = -1;
    }
    abort_connection();
    unmount_lazy();
}

void MountedSwarm::restart() {
    if (pid_ > 0) stop();
    unmount_lazy();
    ASSERT_NO_FATAL_FAILURE(start());
}

bool MountedSwarm::mounted() const { return !mnt_.empty() && find_mount(mnt_).has_value(); }

std::string MountedSwarm::server_log() const {
    std::string s = read_file(log_).value_or("(no log)");
    if (s.size() > 30000) s = "...\n" + s.substr(s.size() - 30000);
    return s;
}

void MountedSwarm::reap_children(double timeout) {
    const double deadline = now() + timeout;
    const pid_t self = getpid();
    while (true) {
        // Kill our remaining children (readers) and every process working in
        // the temp dir (the server and its agents, even orphaned ones).
        bool any = false;
        if (DIR* d = opendir("/proc")) {
            while (dirent* e = readdir(d)) {
                char* end = nullptr;
                long pid = strtol(e->d_name, &end, 10);
                if (!end || *end || pid <= 0 || pid == self) continue;
                const std::string base = std::string("/proc/") + e->d_name;
                std::ifstream stat_file(base + "/stat");
                std::string content;
                std::getline(stat_file, content);
                auto rp = content.rfind(')');
                if (rp == std::string::npos) continue;
                std::istringstream rest(content.substr(rp + 2));
                char state = 0;
                long ppid = 0;
                rest >> state >> ppid;
                if (state == 'Z') {
                    any = any || ppid == self;
                    continue;
                }
                char cwd[4096];
                ssize_t n = readlink((base + "/cwd").c_str(), cwd, sizeof cwd - 1);
                std::string c = n > 0 ? std::string(cwd, static_cast<size_t>(n)) : "";
                const bool in_dir = c == dir_ || c.rfind(dir_ + "/", 0) == 0;
                if (ppid != self && !in_dir) continue;
                any = true;
                kill(static_cast<pid_t>(pid), SIGKILL);
            }
            closedir(d);
        }
        int st;
        while (waitpid(-1, &st, WNOHANG) > 0) {
        }
        if (!any || now() > deadline) return;
        sleep_for(0.02);
    }
}

void MountedSwarm::TearDown() {
    if (skipped_ || dir_.empty()) return;
    const bool failed = HasFailure();
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        wait_pid(pid_, 10);
        pid_ = -1;
    }
    abort_connection();
    unmount_lazy();
    reap_children(5);
    if (failed) {
        std::cerr << "--- swarmfs server log (" << log_ << ") ---\n"
                  << server_log() << "--- end of server log ---\n";
    }
    if (mounted()) {
        ADD_FAILURE() << "could not unmount " << mnt_ << "; leaving " << dir_;
    } else {
        sh("rm -rf --one-file-system " + shq(dir_), 20);
    }
    guardian_say("done");
    if (guardian_fd_ >= 0) close(guardian_fd_);
    guardian_fd_ = -1;
}

// ---------------------------------------------------------------- helpers

void MountedSwarm::make_agent(const std::string& name, const std::string& config_json) {
    ASSERT_EQ(mkdir(p("agents/" + name).c_str(), 0755), 0)
        << "mkdir agents/" << name << ": " << strerror(errno);
    const char* stage = "";
    int e = write_file(p("agents/" + name + "/config"), config_json, O_WRONLY | O_TRUNC, &stage);
    ASSERT_EQ(e, 0) << "writing agents/" << name << "/config failed at " << stage << ": "
                    << strerror(e) << "\nconfig: " << config_json
                    << "\nerr: " << slurp(p("agents/" + name + "/err"));
}

int MountedSwarm::send(const std::string& agent, std::string_view msg) {
    return write_file(p("agents/" + agent + "/inbox"), msg);
}

std::string MountedSwarm::cat_stream(const std::string& rel, double timeout) {
    auto r = sh("cat " + shq(p(rel)), timeout);
    if (r.timed_out) {
        ADD_FAILURE() << "cat " << rel << " did not end within " << timeout
                      << " s; got so far: " << r.out;
    } else if (r.status != 0) {
        ADD_FAILURE() << "cat " << rel << " exited " << r.status << ": " << r.err;
    }
    return r.out;
}

bool MountedSwarm::wait_idle(const std::string& agent, double timeout) {
    return wait_until(
        [&] {
            auto s = read_file(p("agents/" + agent + "/status"));
            return s && kv(*s, "state") == std::string("idle");
        },
        timeout, 0.05);
}

std::string MountedSwarm::status(const std::string& agent) {
    return slurp(p("agents/" + agent + "/status"));
}

std::string MountedSwarm::field(const std::string& agent, const std::string& key) {
    return kv(status(agent), key).value_or("(none)");
}

bool MountedSwarm::wait_field(const std::string& agent, const std::string& key,
                              const std::string& value, double timeout) {
    return wait_until([&] { return field(agent, key) == value; }, timeout, 0.02);
}

int MountedSwarm::ctl(const std::string& agent, const std::string& cmd) {
    return write_file(p("agents/" + agent + "/ctl"), cmd + "\n");
}

std::string MountedSwarm::err(const std::string& agent) {
    return slurp(p("agents/" + agent + "/err"));
}

}  // namespace swarmfs::it

namespace swarmfs::it {

void FakeOpenAI::start(const std::string& args) {
    proc_ = std::make_unique<Proc>(std::string(FAKE_OPENAI_BIN) + " --port 0 " + args);
    ASSERT_TRUE(proc_->wait_for("\n", 10)) << "fake_openai did not start: " << proc_->out();
    auto pos = proc_->out().find(':');
    ASSERT_NE(pos, std::string::npos) << proc_->out();
    port_ = std::stoi(proc_->out().substr(pos + 1));
}

void FakeOpenAI::script(const std::string& steps) const {
    auto r = sh("curl -sf -X POST --data-binary " + shq(steps) +
                " http://127.0.0.1:" + std::to_string(port_) + "/_script");
    ASSERT_EQ(r.status, 0) << r.err;
}

std::string FakeOpenAI::requests() const {
    return sh("curl -sf http://127.0.0.1:" + std::to_string(port_) + "/_requests").out;
}

}  // namespace swarmfs::it
