// swarmfs-jail: the last step into an agent's sandbox.
//
// bubblewrap builds the sandbox's namespaces and mounts, then execs this
// program inside them. Landlock forbids mount(2) to a sandboxed process, so
// it cannot wrap bwrap itself: what must hold for the command but not for
// bwrap (resource limits, Landlock, the unprivileged uid) is applied here,
// after the mounts exist and before the command runs.
//
//   swarmfs-jail [--cpu SECONDS] [--as BYTES] [--nproc N] [--fsize BYTES]
//                [--nofile N] [--uid UID --gid GID] [--net]
//                [--ro PATH]... [--rw PATH]... [--rwx PATH]... [--list PATH]...
//                -- COMMAND [ARG]...
//
//   --cpu     RLIMIT_CPU: SIGXCPU after SECONDS (rounded up), SIGKILL a
//             second later
//   --as      RLIMIT_AS, --nproc RLIMIT_NPROC, --fsize RLIMIT_FSIZE,
//             --nofile RLIMIT_NOFILE (soft = hard: the command cannot raise
//             them back). A limit is never raised above the hard limit we
//             were started with. RLIMIT_CORE is always 0.
//   --uid/--gid  run as this uid and gid with no supplementary groups and
//             no capabilities left in any set (needs CAP_SETUID, CAP_SETGID;
//             CAP_SETPCAP to empty the bounding set too)
//   Landlock (when the kernel has it; without it these are not enforced):
//   --ro      read, list and execute beneath PATH
//   --rw      read, list, write, create, remove beneath PATH; no execute
//   --rwx     all of --rw plus execute
//   --list    list the directory PATH and what is beneath it, nothing more
//   Everything else is denied, and also, on kernels that know them: TCP
//   bind and connect unless --net (ABI 4), signals to processes outside the
//   sandbox and abstract unix sockets created outside it (ABI 6).
//   A seccomp filter adds what Landlock cannot say: no new user namespace
//   (unshare or clone with CLONE_NEWUSER: EPERM; clone3: ENOSYS, so the C
//   library falls back to clone), and without --net no socket(AF_UNIX)
//   (EACCES; socketpair stays): connecting to a pathname socket needs no
//   right Landlock governs here, so a host socket the sandbox can see (one
//   left in the workdir) would otherwise be a way out. Any system call
//   made through another ABI than the native one (x32, i386) is ENOSYS.
//
// Like env(1), any failure before the command runs prints one line to
// stderr ("swarmfs-jail: landlock: /x: No such file or directory") and
// exits 126; 127 when the command is not found. The environment and the
// descriptors 0-2 pass through; every other descriptor is closed at exec.
//
// Plain C++ and syscalls only: it must start fast and stay small.
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// ---- Landlock, declared here so an older <linux/landlock.h> does not limit us ----

constexpr uint64_t kFsExecute = 1ull << 0;
constexpr uint64_t kFsWriteFile = 1ull << 1;
constexpr uint64_t kFsReadFile = 1ull << 2;
constexpr uint64_t kFsReadDir = 1ull << 3;
constexpr uint64_t kFsRemoveDir = 1ull << 4;
constexpr uint64_t kFsRemoveFile = 1ull << 5;
constexpr uint64_t kFsMakeChar = 1ull << 6;
constexpr uint64_t kFsMakeDir = 1ull << 7;
constexpr uint64_t kFsMakeReg = 1ull << 8;
constexpr uint64_t kFsMakeSock = 1ull << 9;
constexpr uint64_t kFsMakeFifo = 1ull << 10;
constexpr uint64_t kFsMakeBlock = 1ull << 11;
constexpr uint64_t kFsMakeSym = 1ull << 12;
constexpr uint64_t kFsRefer = 1ull << 13;     // ABI 2
constexpr uint64_t kFsTruncate = 1ull << 14;  // ABI 3
constexpr uint64_t kFsIoctlDev = 1ull << 15;  // ABI 5
constexpr uint64_t kNetBindTcp = 1ull << 0;   // ABI 4
constexpr uint64_t kNetConnectTcp = 1ull << 1;
constexpr uint64_t kScopeAbstractUnix = 1ull << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ull << 1;
constexpr uint32_t kCreateRulesetVersion = 1u << 0;
constexpr int kRulePathBeneath = 1;

// The rights a rule on a non-directory may carry; the kernel refuses others.
constexpr uint64_t kFileRights =
    kFsExecute | kFsWriteFile | kFsReadFile | kFsTruncate | kFsIoctlDev;

struct RulesetAttr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;  // ABI 4
    uint64_t scoped;              // ABI 6
};

struct PathBeneathAttr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

// ---- failing like env(1) ----

[[noreturn]] void die(int status, const std::string& what) {
    std::string line = "swarmfs-jail: " + what + "\n";
    // One write: a line, never interleaved with another process's.
    ssize_t ignored = write(2, line.data(), line.size());
    (void)ignored;
    _exit(status);
}

[[noreturn]] void fail(const std::string& what) { die(126, what); }

std::string errno_text(int e) { return strerror(e); }

// ---- the command line ----

enum class Access { kRead, kWrite, kWriteExec, kList };

struct Rule {
    Access access;
    std::string path;
};

struct Options {
    double cpu = -1;  // < 0: unchanged
    int64_t as = -1, nproc = -1, fsize = -1, nofile = -1;
    int64_t uid = -1, gid = -1;
    bool net = false;
    std::vector<Rule> rules;
    char** command = nullptr;
};

int64_t parse_count(const char* opt, const char* text) {
    errno = 0;
    char* end = nullptr;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 0)
        fail(std::string(opt) + ": not a number: '" + text + "'");
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    int i = 1;
    auto value = [&](const char* opt) -> const char* {
        if (i + 1 >= argc) fail(std::string(opt) + ": missing value");
        return argv[++i];
    };
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a == "--cpu") {
            const char* t = value("--cpu");
            char* end = nullptr;
            errno = 0;
            o.cpu = strtod(t, &end);
            if (errno != 0 || end == t || *end != '\0' || !(o.cpu > 0) || o.cpu > 1e9)
                fail(std::string("--cpu: not a positive number of seconds: '") + t + "'");
        } else if (a == "--as") {
            o.as = parse_count("--as", value("--as"));
        } else if (a == "--nproc") {
            o.nproc = parse_count("--nproc", value("--nproc"));
        } else if (a == "--fsize") {
            o.fsize = parse_count("--fsize", value("--fsize"));
        } else if (a == "--nofile") {
            o.nofile = parse_count("--nofile", value("--nofile"));
        } else if (a == "--uid") {
            o.uid = parse_count("--uid", value("--uid"));
        } else if (a == "--gid") {
            o.gid = parse_count("--gid", value("--gid"));
        } else if (a == "--net") {
            o.net = true;
        } else if (a == "--ro") {
            o.rules.push_back({Access::kRead, value("--ro")});
        } else if (a == "--rw") {
            o.rules.push_back({Access::kWrite, value("--rw")});
        } else if (a == "--rwx") {
            o.rules.push_back({Access::kWriteExec, value("--rwx")});
        } else if (a == "--list") {
            o.rules.push_back({Access::kList, value("--list")});
        } else {
            fail("unknown option '" + a + "' (usage: swarmfs-jail [OPTIONS] -- COMMAND [ARG]...)");
        }
    }
    if (i >= argc) fail("no command (usage: swarmfs-jail [OPTIONS] -- COMMAND [ARG]...)");
    if ((o.uid < 0) != (o.gid < 0)) fail("--uid and --gid go together");
    if (o.uid > 0xfffffffe || o.gid > 0xfffffffe) fail("--uid/--gid: out of range");
    o.command = argv + i;
    return o;
}

// ---- step 1: resource limits ----

void set_limit(int resource, const char* name, rlim_t soft, rlim_t hard) {
    rlimit cur{};
    if (getrlimit(resource, &cur) != 0)
        fail(std::string("rlimit ") + name + ": " + errno_text(errno));
    // Without CAP_SYS_RESOURCE (bwrap dropped it) a hard limit only goes
    // down: a server started under a lower one keeps that one.
    if (cur.rlim_max != RLIM_INFINITY) {
        if (hard > cur.rlim_max) hard = cur.rlim_max;
        if (soft > cur.rlim_max) soft = cur.rlim_max;
    }
    rlimit want{soft, hard};
    if (setrlimit(resource, &want) != 0)
        fail(std::string("rlimit ") + name + " " + std::to_string(soft) + ": " + errno_text(errno));
}

void apply_limits(const Options& o) {
    if (o.cpu > 0) {
        // SIGXCPU (default: terminate) at the soft limit; SIGKILL at the
        // hard one, a second later, for a command that catches SIGXCPU.
        rlim_t s = static_cast<rlim_t>(std::ceil(o.cpu));
        set_limit(RLIMIT_CPU, "cpu", s, s + 1);
    }
    if (o.as >= 0) set_limit(RLIMIT_AS, "as", o.as, o.as);
    if (o.nproc >= 0) set_limit(RLIMIT_NPROC, "nproc", o.nproc, o.nproc);
    if (o.fsize >= 0) set_limit(RLIMIT_FSIZE, "fsize", o.fsize, o.fsize);
    if (o.nofile >= 0) set_limit(RLIMIT_NOFILE, "nofile", o.nofile, o.nofile);
    // No core files: SIGXCPU and SIGXFSZ dump core by default, and the dump
    // would land in the command's cwd or go to the host's core handler.
    set_limit(RLIMIT_CORE, "core", 0, 0);
}

// ---- step 2: Landlock ----

int landlock_abi() {
    long v = syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
    return v < 0 ? 0 : static_cast<int>(v);
}

void apply_landlock(const Options& o) {
    // no_new_privs whether or not there is Landlock: no set-uid binary or
    // file capability raises the command's privileges. restrict_self
    // requires it too (or CAP_SYS_ADMIN, which we do not rely on).
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs: " + errno_text(errno));
    int abi = landlock_abi();
    if (abi == 0) return;  // no Landlock: the namespaces and the uid confine the command

    // Only the rights this ABI knows: a newer right in the handled set
    // makes the kernel refuse the whole ruleset with EINVAL.
    uint64_t fs = kFsExecute | kFsWriteFile | kFsReadFile | kFsReadDir | kFsRemoveDir |
                  kFsRemoveFile | kFsMakeChar | kFsMakeDir | kFsMakeReg | kFsMakeSock |
                  kFsMakeFifo | kFsMakeBlock | kFsMakeSym;
    if (abi >= 2) fs |= kFsRefer;
    if (abi >= 3) fs |= kFsTruncate;
    if (abi >= 5) fs |= kFsIoctlDev;
    RulesetAttr attr{fs, 0, 0};
    size_t attr_size = sizeof attr.handled_access_fs;
    if (abi >= 4) {
        // Handled with no rule: every TCP bind and connect is refused.
        if (!o.net) attr.handled_access_net = kNetBindTcp | kNetConnectTcp;
        attr_size += sizeof attr.handled_access_net;
    }
    if (abi >= 6) {
        attr.scoped = kScopeAbstractUnix | kScopeSignal;
        attr_size += sizeof attr.scoped;
    }
    int ruleset = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0));
    if (ruleset < 0)
        fail("landlock: create ruleset (ABI " + std::to_string(abi) + "): " + errno_text(errno));

    const uint64_t read = kFsReadFile | kFsReadDir;
    const uint64_t write = fs & ~kFsExecute;
    for (const Rule& r : o.rules) {
        uint64_t allowed = 0;
        switch (r.access) {
            case Access::kRead:
                allowed = read | kFsExecute;
                break;
            case Access::kWrite:
                allowed = write;
                break;
            case Access::kWriteExec:
                allowed = fs;
                break;
            case Access::kList:
                allowed = kFsReadDir;
                break;
        }
        int fd = open(r.path.c_str(), O_PATH | O_CLOEXEC);
        if (fd < 0) fail("landlock: " + r.path + ": " + errno_text(errno));
        struct stat st {};
        if (fstat(fd, &st) != 0) fail("landlock: " + r.path + ": " + errno_text(errno));
        if (!S_ISDIR(st.st_mode)) allowed &= kFileRights;
        if (allowed == 0) {  // --list on a file: nothing to allow
            close(fd);
            continue;
        }
        PathBeneathAttr rule{allowed, fd};
        if (syscall(SYS_landlock_add_rule, ruleset, kRulePathBeneath, &rule, 0) != 0)
            fail("landlock: rule for " + r.path + ": " + errno_text(errno));
        close(fd);
    }
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
        fail("landlock: restrict self: " + errno_text(errno));
    close(ruleset);
}

// ---- step 2b: seccomp, for what Landlock cannot say ----

#if defined(__x86_64__)
constexpr uint32_t kNativeArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kNativeArch = AUDIT_ARCH_AARCH64;
#else
constexpr uint32_t kNativeArch = 0;  // no filter written for this one
#endif

void apply_seccomp(const Options& o) {
    if (kNativeArch == 0) fail("seccomp: no filter written for this architecture");
    // The low 32 bits of the first argument: clone's and unshare's flags,
    // socket's domain.
    constexpr uint32_t kArg0 = offsetof(seccomp_data, args[0])
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
                               + 4
#endif
        ;
    constexpr uint32_t kNewUser = 0x10000000;  // CLONE_NEWUSER
    auto ret = [](uint32_t action) { return sock_filter BPF_STMT(BPF_RET | BPF_K, action); };
    auto refuse = [&ret](int e) { return ret(SECCOMP_RET_ERRNO | (e & SECCOMP_RET_DATA)); };
    auto load = [](uint32_t offset) {
        return sock_filter BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset);
    };
    auto jump = [](uint16_t op, uint32_t k, uint8_t yes, uint8_t no) {
        return sock_filter BPF_JUMP(BPF_JMP | op | BPF_K, k, yes, no);
    };
    std::vector<sock_filter> code = {
        // Another ABI's numbers mean other calls (and i386 reaches socket
        // through socketcall(2), whose arguments a filter cannot read).
        load(offsetof(seccomp_data, arch)),
        jump(BPF_JEQ, kNativeArch, 1, 0),
        refuse(ENOSYS),
        load(offsetof(seccomp_data, nr)),
#if defined(__x86_64__)
        jump(BPF_JGE, 0x40000000u /* __X32_SYSCALL_BIT */, 0, 1),
        refuse(ENOSYS),
#endif
        // clone3's flags are in memory a filter cannot read; ENOSYS makes
        // the C library fall back to clone (as under Docker's profile).
        jump(BPF_JEQ, SYS_clone3, 0, 1),
        refuse(ENOSYS),
        // A new user namespace would make the command root in it, with
        // every capability there: kernel surface no tool needs.
        jump(BPF_JEQ, SYS_unshare, 1, 0),
        jump(BPF_JEQ, SYS_clone, 0, 4),
        load(kArg0),
        jump(BPF_JSET, kNewUser, 0, 1),
        refuse(EPERM),
        ret(SECCOMP_RET_ALLOW),
    };
    if (!o.net) {
        // Connecting to a pathname socket needs no right Landlock (ABI 7)
        // governs: a host's socket the sandbox can see (one left in the
        // workdir) would be a way out. No AF_UNIX socket then; a
        // socketpair needs none of this and stays.
        for (sock_filter f : {jump(BPF_JEQ, SYS_socket, 0, 3), load(kArg0),
                              jump(BPF_JEQ, AF_UNIX, 0, 1), refuse(EACCES)})
            code.push_back(f);
    }
    code.push_back(ret(SECCOMP_RET_ALLOW));
    sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
    // no_new_privs is set already (apply_landlock): an unprivileged filter
    // needs it.
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
        fail("seccomp: " + errno_text(errno));
}

// ---- step 3: the unprivileged uid ----

bool has_effective_cap(int cap) {
    __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &head, data) != 0) return false;
    return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

void drop_uid(const Options& o) {
    uid_t uid = static_cast<uid_t>(o.uid);
    gid_t gid = static_cast<gid_t>(o.gid);
    // Empty the bounding set while CAP_SETPCAP is still effective: after
    // the uid change no capability can come back through an exec (and
    // no_new_privs already forbids that; this is the second lock).
    if (has_effective_cap(CAP_SETPCAP)) {
        for (int cap = 0; cap <= 63; ++cap)
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
                fail("drop capability " + std::to_string(cap) + ": " + errno_text(errno));
    }
    // The command's stdio are usually pipes its starter made: root's, mode
    // 0600. Scripts reopen them by path (echo >/dev/stderr, which is
    // /proc/self/fd/2), and the new uid would be refused. An anonymous pipe
    // can be reached only through the fd table of a process that holds it,
    // so opening its mode up gives nothing else away.
    for (int fd = 0; fd <= 2; ++fd) {
        struct stat st {};
        struct statfs sfs {};
        if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_uid == geteuid() &&
            fstatfs(fd, &sfs) == 0 && sfs.f_type == PIPEFS_MAGIC)
            fchmod(fd, 0666);
    }
    // Groups, then gid, then uid: each step needs a capability the uid
    // change takes away.
    if (setgroups(0, nullptr) != 0) fail("setgroups: " + errno_text(errno));
    if (setresgid(gid, gid, gid) != 0)
        fail("setresgid " + std::to_string(gid) + ": " + errno_text(errno));
    if (setresuid(uid, uid, uid) != 0)
        fail("setresuid " + std::to_string(uid) + ": " + errno_text(errno));
    // Leaving uid 0 clears the permitted, effective and ambient sets; the
    // inheritable one stays, so clear that too, and check.
    __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none[2]{};
    if (uid != 0 && syscall(SYS_capset, &head, none) != 0) fail("capset: " + errno_text(errno));
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != uid || eu != uid ||
        su != uid || rg != gid || eg != gid || sg != gid)
        fail("the uid change did not take");
    if (uid != 0 && setresuid(0, 0, 0) == 0) fail("could set the uid back to 0 after dropping it");
}

}  // namespace

// The order, and why:
//  1. rlimits first, so that everything after runs under them: the
//     RLIMIT_NPROC check that setresuid() and execve() make for the new
//     uid (a uid already at its limit cannot start the command: execve
//     fails with EAGAIN), and the command. Lowering a limit needs no
//     privilege, so nothing later depends on having kept one.
//  2. no_new_privs and Landlock next, under the credentials bwrap gave
//     us: every rule's path is opened here, before the uid change could
//     make one unreachable to us (a rule the new uid cannot use is
//     harmless). Neither restricts the set*id and capability calls that
//     follow, and a failure to confine shows before the uid changes. The
//     seccomp filter (which needs no_new_privs) refuses only socket(), so
//     it can go here too.
//  3. The uid drop (setgroups, setresgid, setresuid) last before exec:
//     it takes the capabilities the earlier steps and the drop itself
//     need (CAP_SETPCAP, CAP_SETGID, CAP_SETUID), and RLIMIT_NPROC is
//     enforced only for a non-root uid, so it must happen before the
//     command runs. The credential change clears the parent-death signal,
//     so it is set again afterwards.
//  4. execvp: the command, found on the sandbox's PATH.
int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    pid_t parent = getppid();

    apply_limits(o);
    apply_landlock(o);
    apply_seccomp(o);
    if (o.uid >= 0) drop_uid(o);

    // The command dies with whoever started us (bwrap's init inside the
    // sandbox) even after the credential change reset PR_SET_PDEATHSIG.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail("pdeathsig: " + errno_text(errno));
    if (getppid() != parent) _exit(126);  // the parent died before we asked

    // Only 0-2 reach the command, whatever the caller leaked to us.
    if (syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) != 0)
        for (int fd = 3; fd < 1024; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);

    execvp(o.command[0], o.command);
    int e = errno;
    die(e == ENOENT ? 127 : 126, std::string("cannot run ") + o.command[0] + ": " + errno_text(e));
}
