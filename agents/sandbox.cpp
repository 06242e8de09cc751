#include "agents/sandbox.h"

#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

namespace swarmfs {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = kKiB * 1024;
constexpr int64_t kTiB = kMiB * 1024 * 1024;

Error bad(const std::string& key, const std::string& why) {
    return make_error(EINVAL, "sandbox." + key + " " + why);
}

// ---- the limits' ranges: one row per key, shared by from_json and sandbox_argv ----

struct Range {
    const char* key;
    double min, max;
    const char* words;  // the range as a user reads it
};
constexpr Range kCpu{"cpu", 0, 604800, "must be more than 0 and at most 604800 seconds"};
constexpr Range kWall{"wall", 0, 604800, "must be more than 0 and at most 604800 seconds"};
constexpr Range kMemory{"memory", 16.0 * kMiB, 128.0 * kTiB, "must be between 16M and 128T bytes"};
constexpr Range kProcesses{"processes", 1, 4194304, "must be between 1 and 4194304"};
constexpr Range kFileSize{"file_size", 0, 1024.0 * kTiB, "must be between 0 and 1024T bytes"};
constexpr Range kOpenFiles{"open_files", 16, 1048576, "must be between 16 and 1048576"};

std::string number_text(double v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

std::optional<Error> check_seconds(const Range& r, double v) {
    if (!(v > r.min && v <= r.max))
        return bad(r.key, std::string(r.words) + ", got " + number_text(v));
    return std::nullopt;
}

std::optional<Error> check_count(const Range& r, int64_t v) {
    if (static_cast<double>(v) < r.min || static_cast<double>(v) > r.max)
        return bad(r.key, std::string(r.words) + ", got " + std::to_string(v));
    return std::nullopt;
}

std::optional<Error> check_limits(const SandboxLimits& l) {
    if (auto e = check_seconds(kCpu, l.cpu_seconds)) return e;
    if (auto e = check_count(kMemory, l.memory_bytes)) return e;
    if (auto e = check_count(kProcesses, l.processes)) return e;
    if (auto e = check_count(kFileSize, l.file_bytes)) return e;
    if (auto e = check_count(kOpenFiles, l.open_files)) return e;
    if (auto e = check_seconds(kWall, l.wall_seconds)) return e;
    return std::nullopt;
}

std::optional<Error> read_seconds(const json& v, const Range& r, double& out) {
    if (!v.is_number()) return bad(r.key, "must be a number of seconds, got " + v.dump());
    double d = v.get<double>();
    if (auto e = check_seconds(r, d)) return e;
    out = d;
    return std::nullopt;
}

// A JSON number that is a whole number (1e9 is one; 1.5 is not).
std::optional<int64_t> whole_number(const json& v) {
    if (v.is_number_unsigned()) {
        auto u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
        return static_cast<int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18)
            return static_cast<int64_t>(d);
    }
    return std::nullopt;
}

std::optional<Error> read_count(const json& v, const Range& r, int64_t& out) {
    auto n = whole_number(v);
    if (!n) return bad(r.key, "must be a whole number, got " + v.dump());
    if (auto e = check_count(r, *n)) return e;
    out = *n;
    return std::nullopt;
}

// "512M", "1G", "64k", "2GiB", "1048576": powers of 1024.
std::optional<int64_t> parse_size(const std::string& s) {
    size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == 0 || i > 18) return std::nullopt;
    int64_t n = std::stoll(s.substr(0, i));
    std::string unit = s.substr(i);
    if (unit.empty()) return n;
    static const std::string kUnits = "KMGT";
    size_t power = kUnits.find(static_cast<char>(toupper(static_cast<unsigned char>(unit[0]))));
    std::string rest = unit.substr(1);
    if (power == std::string::npos || (!rest.empty() && rest != "iB" && rest != "ib"))
        return std::nullopt;
    int64_t mult = kKiB << (10 * power);
    if (n > INT64_MAX / mult) return std::nullopt;
    return n * mult;
}

std::optional<Error> read_size(const json& v, const Range& r, int64_t& out) {
    std::optional<int64_t> n;
    if (v.is_string()) {
        n = parse_size(v.get<std::string>());
        if (!n)
            return bad(r.key, "must be a number of bytes or a size like \"512M\" or \"1G\", got " +
                                  v.dump());
    } else {
        n = whole_number(v);
        if (!n)
            return bad(r.key, "must be a number of bytes or a size like \"512M\", got " + v.dump());
    }
    if (auto e = check_count(r, *n)) return e;
    out = *n;
    return std::nullopt;
}

// ---- paths ----

// The host's system folders, shown read-only in every sandbox.
constexpr const char* kSystemPaths[] = {"/usr", "/bin", "/sbin", "/lib", "/lib64"};

bool is_under(const std::string& path, const std::string& base) {
    if (base == "/") return true;
    return path == base || (path.size() > base.size() && path.compare(0, base.size(), base) == 0 &&
                            path[base.size()] == '/');
}

std::string text_of(int e) { return strerror(e); }

// The canonical path of a directory that must exist.
Result<std::string> existing_dir(const std::string& what, const std::string& path) {
    if (path.empty() || path[0] != '/')
        return make_error(EINVAL,
                          "sandbox: the " + what + " must be an absolute path, got '" + path + "'");
    char real[PATH_MAX];
    if (!realpath(path.c_str(), real)) {
        int e = errno;
        return make_error(e, "sandbox: the " + what + " " + path + ": " + text_of(e));
    }
    struct stat st {};
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return make_error(ENOTDIR, "sandbox: the " + what + " " + path + ": Not a directory");
    return std::string(real);
}

// A mount the sandbox shows: a host path and where it appears.
struct Shown {
    std::string src, dest;
};

// The argv being built, a few words at a time.
struct Words {
    std::vector<std::string> argv;
    void add(std::initializer_list<std::string> words) { argv.insert(argv.end(), words); }
};

}  // namespace

// ---- SandboxPolicy ----

Result<SandboxPolicy> SandboxPolicy::from_json(const nlohmann::json& j) {
    SandboxPolicy p;
    if (j.is_boolean()) {
        p.enabled = j.get<bool>();
        return p;
    }
    if (!j.is_object())
        return make_error(EINVAL,
                          "sandbox must be false, true or an object like {\"cpu\": 60, "
                          "\"memory\": \"512M\"}, got " +
                              j.dump());
    for (const auto& [key, v] : j.items()) {
        std::optional<Error> e;
        SandboxLimits& l = p.limits;
        if (key == "enabled") {
            if (!v.is_boolean())
                e = bad(key, "must be true or false, got " + v.dump());
            else
                p.enabled = v.get<bool>();
        } else if (key == "cpu") {
            e = read_seconds(v, kCpu, l.cpu_seconds);
        } else if (key == "wall") {
            e = read_seconds(v, kWall, l.wall_seconds);
        } else if (key == "memory") {
            e = read_size(v, kMemory, l.memory_bytes);
        } else if (key == "file_size") {
            e = read_size(v, kFileSize, l.file_bytes);
        } else if (key == "processes") {
            e = read_count(v, kProcesses, l.processes);
        } else if (key == "open_files") {
            e = read_count(v, kOpenFiles, l.open_files);
        } else {
            e = make_error(EINVAL, "sandbox: unknown key \"" + key +
                                       "\" (known: enabled, cpu, memory, processes, file_size, "
                                       "open_files, wall)");
        }
        if (e) return *e;
    }
    return p;
}

nlohmann::json SandboxPolicy::to_json() const {
    return json{{"enabled", enabled},
                {"cpu", limits.cpu_seconds},
                {"memory", limits.memory_bytes},
                {"processes", limits.processes},
                {"file_size", limits.file_bytes},
                {"open_files", limits.open_files},
                {"wall", limits.wall_seconds}};
}

// ---- where things are ----

bool sandbox_shows(const SandboxSpec& spec, const std::string& path) {
    // Compared as the sandbox binds them: at their real paths.
    auto real = [](const std::string& p) {
        char buf[PATH_MAX];
        return realpath(p.c_str(), buf) ? std::string(buf) : p;
    };
    std::string target = real(path);
    for (const char* sys : kSystemPaths)
        if (is_under(target, real(sys))) return true;
    if (!spec.workdir.empty() && is_under(target, real(spec.workdir))) return true;
    for (auto& r : spec.read)
        if (is_under(target, real(r))) return true;
    return false;
}

std::string bwrap_path() {
    const char* e = getenv("SWARMFS_BWRAP");
    return e && *e ? e : "/usr/bin/bwrap";
}

std::string jail_path() {
    if (const char* e = getenv("SWARMFS_JAIL"); e && *e) return e;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        std::string next_to = fs::path(self).parent_path() / "swarmfs-jail";
        if (access(next_to.c_str(), X_OK) == 0) return next_to;
    }
#ifdef SWARMFS_JAIL_BUILD_PATH
    return SWARMFS_JAIL_BUILD_PATH;
#else
    return "/usr/libexec/swarmfs/swarmfs-jail";
#endif
}

int landlock_abi() {
    // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    long v = syscall(444, nullptr, 0, 1u);
    return v < 0 ? 0 : static_cast<int>(v);
}

// ---- the argv ----

Result<std::vector<std::string>> sandbox_argv(const SandboxSpec& spec,
                                              const std::vector<std::string>& argv) {
    if (argv.empty() || argv[0].empty()) return make_error(EINVAL, "sandbox: no command to run");
    if (auto e = check_limits(spec.limits)) return *e;

    std::string bwrap = bwrap_path();
    if (access(bwrap.c_str(), X_OK) != 0)
        return make_error(ENOENT, "sandbox: cannot run bubblewrap: " + bwrap + ": " +
                                      text_of(errno) +
                                      " (install the bubblewrap package, or set SWARMFS_BWRAP)");
    std::string jail = jail_path();
    if (access(jail.c_str(), X_OK) != 0)
        return make_error(ENOENT, "sandbox: cannot run the jail helper: " + jail + ": " +
                                      text_of(errno) +
                                      " (build swarmfs-jail, or set SWARMFS_JAIL)");
    char jail_real[PATH_MAX];
    if (!realpath(jail.c_str(), jail_real))
        return make_error(ENOENT, "sandbox: the jail helper " + jail + ": " + text_of(errno));

    // Who the command runs as. A root server drops it to spec.uid inside
    // the sandbox (the jail does it; bwrap keeps it the three capabilities
    // that needs, and the jail gives them up). A non-root server cannot
    // become another uid: bwrap makes a user namespace and the command runs
    // as the server's own user.
    const bool root = geteuid() == 0;
    if (spec.uid == 0 && spec.gid != 0)
        return make_error(EINVAL, "sandbox: gid " + std::to_string(spec.gid) + " without a uid");
    if (spec.uid != 0 && spec.gid == 0)
        return make_error(EINVAL,
                          "sandbox: uid " + std::to_string(spec.uid) + " needs a gid other than 0");
    bool drop = spec.uid != 0;
    if (!root && drop) {
        if (spec.uid != geteuid() || spec.gid != getegid())
            return make_error(EPERM, "sandbox: cannot run as uid " + std::to_string(spec.uid) +
                                         ": the server is not root");
        drop = false;  // it is us already
    }

    std::string view, workdir;
    if (!spec.view.empty()) {
        auto v = existing_dir("view", spec.view);
        if (!v) return v.error();
        view = *v;
        if (view == "/") return make_error(EINVAL, "sandbox: the view cannot be /");
    }
    // The trees shown read-only at their own paths: the workdir, then the
    // extra ones. Under the host's /tmp a tree would sit beneath the private
    // /tmp, and Landlock rights add up along a path: the /tmp rule (rwx)
    // would cover it too, and a named pipe a host process left there would
    // be writable. So such a tree is bound outside /tmp and its own path is
    // a symlink to it: Landlock judges the path a name resolves to.
    struct Tree {
        std::string host, inside;
    };
    std::vector<Tree> trees;
    auto add_tree = [&](const std::string& what, const std::string& path,
                        const std::string& if_under_tmp) -> Status {
        auto w = existing_dir(what, path);
        if (!w) return w.error();
        // Bound at its own path, it must not take the place of the
        // sandbox's own mounts (/proc, /dev, /tmp, /swarm) or of the root.
        for (const char* own : {"/proc", "/dev"})
            if (is_under(*w, own))
                return make_error(EINVAL,
                                  "sandbox: the " + what + " cannot be under " + own + ": " + *w);
        for (const char* own : {"/", "/tmp", "/swarm", kJailInSandbox})
            if (*w == own) return make_error(EINVAL, "sandbox: the " + what + " cannot be " + *w);
        for (const auto& t : trees) {
            if (is_under(*w, t.host)) return {};  // shown already
            if (is_under(t.host, *w))
                return make_error(EINVAL, "sandbox: the " + what + " " + *w + " holds " + t.host +
                                              ", shown already");
        }
        trees.push_back({*w, is_under(*w, "/tmp") ? if_under_tmp : *w});
        return {};
    };
    if (!spec.workdir.empty()) {
        if (auto st = add_tree("workdir", spec.workdir, kWorkdirInSandbox); !st) return st.error();
        workdir = trees.front().host;
    }
    for (size_t i = 0; i < spec.read.size(); ++i)
        if (auto st = add_tree("read path", spec.read[i],
                               std::string(kReadInSandbox) + "-" + std::to_string(i));
            !st)
            return st.error();

    Words b;
    // bwrap makes missing parents of a mount point 0700, which the agent's
    // uid could not cross: make them first, 0755. (An existing one is left
    // as it is.)
    auto parents = [&b](const std::string& dest) {
        for (size_t at = dest.find('/', 1); at != std::string::npos; at = dest.find('/', at + 1))
            b.add({"--perms", "0755", "--dir", dest.substr(0, at)});
    };
    b.add({bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc",
           "--unshare-uts", "--unshare-cgroup-try"});
    if (!spec.net) b.add({"--unshare-net"});
    if (!root) b.add({"--unshare-user", "--disable-userns"});
    b.add({"--cap-drop", "ALL"});
    if (drop)
        b.add({"--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"});

    std::vector<Shown> shown;  // host trees the sandbox shows, for `hide`
    std::vector<std::string> ro_rules;

    // The system paths: read-only; a symlink into /usr (merged /usr:
    // /bin -> usr/bin) is made again as the same symlink.
    auto usr_link = [](const std::string& path, std::string& target) {
        struct stat st {};
        if (lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return false;
        char raw[PATH_MAX];
        ssize_t n = readlink(path.c_str(), raw, sizeof raw - 1);
        char real[PATH_MAX];
        if (n <= 0 || !realpath(path.c_str(), real) || !is_under(real, "/usr")) return false;
        target.assign(raw, static_cast<size_t>(n));
        return true;
    };
    for (const char* sys : kSystemPaths) {
        std::string target;
        struct stat st {};
        if (std::string(sys) != "/usr" && usr_link(sys, target)) {
            b.add({"--symlink", target, sys});
        } else if (stat(sys, &st) == 0 && S_ISDIR(st.st_mode)) {
            b.add({"--ro-bind", sys, sys});
            char real[PATH_MAX];
            shown.push_back({realpath(sys, real) ? real : sys, sys});
            ro_rules.push_back(sys);
        }
    }

    // From /etc only what programs need to start and to name users; the
    // network's files only with the network. Never shadow or gshadow.
    std::vector<std::string> etc = {"ld.so.cache", "ld.so.conf",    "ld.so.conf.d", "passwd",
                                    "group",       "nsswitch.conf", "localtime",    "alternatives"};
    if (spec.net) {
        for (const char* f :
             {"hosts", "resolv.conf", "host.conf", "gai.conf", "services", "protocols", "ssl"})
            etc.push_back(f);
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator("/etc", ec)) {
            std::string name = entry.path().filename().string();
            if (name.rfind("ca-certificates", 0) == 0) etc.push_back(name);
        }
    }
    b.add({"--perms", "0755", "--dir", "/etc"});
    for (const auto& name : etc) {
        std::string path = "/etc/" + name;
        std::string target;
        struct stat st {};
        if (usr_link(path, target)) {
            b.add({"--symlink", target, path});
        } else if (stat(path.c_str(), &st) == 0) {  // a symlink elsewhere: its target
            b.add({"--ro-bind-try", path, path});
            char real[PATH_MAX];
            if (realpath(path.c_str(), real)) shown.push_back({real, path});
        }
    }
    ro_rules.push_back("/etc");

    // The sandbox's own: /proc, /dev (with a /dev/shm the uid can use), a
    // private /tmp. Both tmpfs live in memory, so their size is bounded by
    // the memory limit.
    int64_t shm = std::max<int64_t>(spec.limits.memory_bytes / 4, kMiB);
    b.add({"--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", std::to_string(shm),
           "--tmpfs", "/dev/shm", "--perms", "1777", "--size",
           std::to_string(spec.limits.memory_bytes), "--tmpfs", "/tmp"});
    ro_rules.push_back("/proc");
    b.add({"--ro-bind", jail_real, kJailInSandbox});

    // The view and the workdir come after /tmp: either may be under the
    // host's /tmp, and the tmpfs must not cover them.
    if (!view.empty()) {
        b.add({"--bind", view, "/swarm"});
        shown.push_back({view, "/swarm"});
    }
    for (const auto& t : trees) {
        if (t.inside != t.host) b.add({"--ro-bind", t.host, t.inside});
        parents(t.host);
        if (t.inside != t.host)
            b.add({"--symlink", t.inside, t.host});
        else
            b.add({"--ro-bind", t.host, t.host});
        shown.push_back({t.host, t.inside});
        ro_rules.push_back(t.inside);
    }

    // The hidden paths, after the binds that would show them: an empty
    // read-only tmpfs over a folder, /dev/null over a file, wherever the
    // sandbox shows the path. One it does not show is hidden already.
    for (const auto& h : spec.hide) {
        if (h.empty() || h[0] != '/')
            return make_error(EINVAL, "sandbox: a hidden path must be absolute, got '" + h + "'");
        char real[PATH_MAX];
        if (!realpath(h.c_str(), real)) continue;  // nothing there to hide
        std::string hidden = real;
        if (!view.empty() && is_under(view, hidden))
            return make_error(EINVAL, "sandbox: hiding " + h + " would hide the view " + view);
        for (const auto& t : trees)
            if (is_under(t.host, hidden))
                return make_error(EINVAL, "sandbox: hiding " + h + " would hide " +
                                              (t.host == workdir ? "the workdir " : "") + t.host);
        struct stat st {};
        if (stat(real, &st) != 0) continue;
        for (const auto& s : shown) {
            if (!is_under(hidden, s.src)) continue;
            std::string dest = s.dest + hidden.substr(s.src.size());
            if (S_ISDIR(st.st_mode))
                b.add({"--size", "4096", "--tmpfs", dest, "--remount-ro", dest});
            else
                b.add({"--ro-bind", "/dev/null", dest});
        }
    }

    // The swarm's mount, where a tree shows it (./mnt in the workdir, say):
    // the agent's one window on the swarm is its view at /swarm. A server
    // that is not root cannot tell its agents' processes from its owner by
    // uid, so through the mount itself they would have the owner's rights.
    if (!spec.mount.empty()) {
        if (spec.mount[0] != '/')
            return make_error(
                EINVAL, "sandbox: the mount must be an absolute path, got '" + spec.mount + "'");
        for (const auto& s : shown) {
            if (s.dest == "/swarm" || !is_under(spec.mount, s.src)) continue;
            if (spec.mount == s.src)
                return make_error(EINVAL, "sandbox: the mount " + spec.mount + " is the " +
                                              (s.src == workdir ? "workdir" : "folder " + s.src));
            std::string dest = s.dest + spec.mount.substr(s.src.size());
            b.add({"--size", "4096", "--tmpfs", dest, "--remount-ro", dest});
        }
    }

    // The root bwrap made (where /etc's files and the mount points live)
    // read-only too; then the cwd.
    b.add({"--remount-ro", "/", "--chdir", workdir.empty() ? "/" : workdir});

    // The jail: limits, uid, Landlock rules, then the command.
    const SandboxLimits& l = spec.limits;
    b.add({"--", kJailInSandbox, "--cpu", number_text(l.cpu_seconds), "--as",
           std::to_string(l.memory_bytes), "--nproc", std::to_string(l.processes), "--fsize",
           std::to_string(l.file_bytes), "--nofile", std::to_string(l.open_files)});
    if (drop) b.add({"--uid", std::to_string(spec.uid), "--gid", std::to_string(spec.gid)});
    b.add({"--list", "/"});
    for (const auto& r : ro_rules) b.add({"--ro", r});
    b.add({"--rwx", "/tmp", "--rw", "/dev"});
    if (!view.empty()) b.add({"--rw", "/swarm"});
    if (spec.net) b.add({"--net"});
    b.add({"--"});
    for (const auto& a : argv) b.argv.push_back(a);
    return std::move(b.argv);
}

std::string sandboxed_exit_reason(const std::string& reason) {
    const std::string prefix = "exit status ";
    if (reason.rfind(prefix, 0) != 0) return reason;
    int code = atoi(reason.c_str() + prefix.size());
    if (code <= 128 || code >= 128 + 65) return reason;
    int sig = code - 128;
    return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
}

}  // namespace swarmfs
