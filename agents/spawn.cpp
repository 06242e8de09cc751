#include "agents/spawn.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace swarmfs {

std::string resolve_command(const std::string& argv0) {
    if (argv0.find('/') != std::string::npos) return access(argv0.c_str(), X_OK) == 0 ? argv0 : "";
    const char* path = getenv("PATH");
    std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= p.size()) {
        size_t end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        std::string dir = p.substr(start, end - start);
        if (dir.empty()) dir = ".";
        std::string cand = dir + "/" + argv0;
        struct stat st {};
        if (stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(cand.c_str(), X_OK) == 0)
            return cand;
        start = end + 1;
    }
    return "";
}

// ---- ChildProcess ----

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), reaped_(std::exchange(o.reaped_, false)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
    if (this != &o) {
        kill_and_reap();
        pid_ = std::exchange(o.pid_, -1);
        reaped_ = std::exchange(o.reaped_, false);
    }
    return *this;
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

void ChildProcess::kill_group(int sig) const {
    // The child made itself a group leader before exec, so -pid is its group.
    if (running()) ::kill(-pid_, sig);
}

void ChildProcess::kill_and_reap() {
    if (!running()) return;
    ::kill(-pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
}

namespace {
ExitInfo describe(const siginfo_t& info) {
    ExitInfo e;
    if (info.si_code == CLD_EXITED) {
        e.ok = info.si_status == 0;
        e.reason = "exit status " + std::to_string(info.si_status);
    } else {  // CLD_KILLED or CLD_DUMPED: si_status is the signal
        int sig = info.si_status & 0x7f;
        e.reason = "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    }
    return e;
}
}  // namespace

std::optional<ExitInfo> ChildProcess::reap_if_exited(bool kill_group_first) {
    if (!running()) return std::nullopt;
    siginfo_t info{};
    int flags = WEXITED | WNOHANG | (kill_group_first ? WNOWAIT : 0);
    if (waitid(P_PID, pid_, &info, flags) != 0 || info.si_pid == 0) return std::nullopt;
    if (kill_group_first) {
        ::kill(-pid_, SIGKILL);
        info = siginfo_t{};
        if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG) != 0 || info.si_pid == 0)
            return std::nullopt;
    }
    reaped_ = true;
    return describe(info);
}

// ---- spawn ----

namespace {

// Moves fd above 0-2, keeping close-on-exec. A server started with its
// stdio closed gets pipes at 0-2, and the child's dup3 onto 0-2 would
// then overwrite one pipe end with another.
bool above_stdio(UniqueFd& fd) {
    if (fd.get() > 2) return true;
    int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) return false;
    fd.reset(moved);
    return true;
}

bool make_pipe(UniqueFd& r, UniqueFd& w) {
    int fds[2];
    // Close-on-exec: the child gets only the ends dup3'd onto 0-2, and a
    // concurrent spawn on another thread never inherits ours.
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    r.reset(fds[0]);
    w.reset(fds[1]);
    return above_stdio(r) && above_stdio(w);
}

// The child shares our memory (CLONE_VM) while the other threads of the
// server keep running, so it must not run instrumented code: a sanitizer's
// bookkeeping (shadow memory, its signal table, its exit hooks) belongs to
// the parent. Hence raw syscalls only, and none of the sanitizers here.
#define SWARMFS_CHILD_CODE \
    __attribute__((noinline, no_sanitize("address", "thread", "undefined"), no_instrument_function))

#if defined(__SANITIZE_THREAD__)
#define SWARMFS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SWARMFS_TSAN 1
#endif
#endif

// The kernel's struct sigaction, not libc's: libc's sigaction() refuses
// glibc's internal signals and, under TSan, writes the sanitizer's own
// handler table, which the child shares with the parent. Only the handler
// is read; a zeroed rest (no flags, no restorer, empty mask) is what
// SIG_DFL needs. The rest is sized for the largest layout (x86-64, arm64).
#if defined(__mips__)
#error "the kernel's struct sigaction does not start with the handler on MIPS"
#endif
struct KernelSigaction {
    void (*handler)(int);
    unsigned long rest[4];
};
// The kernel's sigset_t (64 signals), as rt_sigprocmask and rt_sigaction
// insist on its exact size.
constexpr unsigned long kKernelSigsetBytes = _NSIG / 8;
static_assert(kKernelSigsetBytes == sizeof(uint64_t));

// What a child that did not reach exec says went wrong.
enum ChildStep : int { kReachedExec = 0, kStdio = 1, kChdir = 2, kExec = 3 };

// Everything the child reads, built before clone, and the record of its
// failure. It lives in spawn()'s frame: the spawning thread is suspended
// (CLONE_VFORK) until the child has exec'd or exited, so the child may read
// it and write the failure without any synchronisation, and the parent
// reads the failure only after clone has returned.
struct ChildArgs {
    const char* path;
    char* const* argv;
    char* const* envp;
    const char* cwd;  // nullptr: stay in ours
    int in, out, err;
    pid_t parent;
    int failed_step = kReachedExec;
    int error = 0;
};

[[noreturn]] SWARMFS_CHILD_CODE void child_exit() {
    syscall(SYS_exit_group, 127);
    __builtin_unreachable();
}

[[noreturn]] SWARMFS_CHILD_CODE void child_fail(ChildArgs* a, ChildStep step) {
    a->error = errno;  // the suspended spawning thread's errno: ours to use
    a->failed_step = step;
    child_exit();
}

// Runs on its own stack in the parent's memory with every signal blocked
// (see spawn()). It must not allocate, take a lock or return.
SWARMFS_CHILD_CODE int child_main(void* arg) {
    auto* a = static_cast<ChildArgs*>(arg);
    // Until exec, a handler of the server's would run on this stack against
    // the server's live heap. Those go before any signal is unblocked; an
    // ignored signal stays ignored across exec as it would after fork,
    // except SIGPIPE, which the server ignores and commands must not.
    for (int sig = 1; sig < _NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        KernelSigaction old{};
        if (syscall(SYS_rt_sigaction, sig, nullptr, &old, kKernelSigsetBytes) != 0) continue;
        if (sig != SIGPIPE && (old.handler == SIG_DFL || old.handler == SIG_IGN)) continue;
        KernelSigaction dfl{};  // handler 0 is SIG_DFL
        syscall(SYS_rt_sigaction, sig, &dfl, nullptr, kKernelSigsetBytes);
    }
    syscall(SYS_setpgid, 0, 0);
    // A child must not outlive a killed server and run a turn twice. The
    // signal comes when the spawning thread ends, hence spawn()'s rule on
    // threads (spawn.h).
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (syscall(SYS_getppid) != a->parent) child_exit();  // it died before prctl
    // The pipe ends are above 2 (above_stdio), so dup3 never sees equal fds.
    if (syscall(SYS_dup3, a->in, 0, 0) < 0 || syscall(SYS_dup3, a->out, 1, 0) < 0 ||
        syscall(SYS_dup3, a->err, 2, 0) < 0)
        child_fail(a, kStdio);
    if (a->cwd && syscall(SYS_chdir, a->cwd) != 0) child_fail(a, kChdir);
    // Descriptors opened without O_CLOEXEC elsewhere in the server (FUSE,
    // sockets) must not leak into agents' commands.
    syscall(SYS_close_range, 3, ~0U, 0);
    uint64_t none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, kKernelSigsetBytes);
    syscall(SYS_execve, a->path, a->argv, a->envp);
    child_fail(a, kExec);
}

// The child's stack, with a guard page below it so an overflow faults
// instead of writing into whatever the kernel mapped next to it. The child
// needs little: a few frames and the syscall wrapper.
class ChildStack {
  public:
    static constexpr size_t kSize = 64 * 1024;
    ChildStack() {
        size_t page = static_cast<size_t>(getpagesize());
        void* p = mmap(nullptr, kSize + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (p == MAP_FAILED) return;
        base_ = p;
        len_ = kSize + page;
        if (mprotect(p, page, PROT_NONE) != 0) {
            munmap(base_, len_);
            base_ = nullptr;
        }
    }
    ~ChildStack() {
        if (base_) munmap(base_, len_);
    }
    ChildStack(const ChildStack&) = delete;
    ChildStack& operator=(const ChildStack&) = delete;
    explicit operator bool() const { return base_ != nullptr; }
    void* top() const { return static_cast<char*>(base_) + len_; }

  private:
    void* base_ = nullptr;
    size_t len_ = 0;
};

using CloneFn = int (*)(int (*)(void*), void*, int, void*, ...);

// TSan's clone interceptor treats every clone as a fork and resets its own
// state in the child, which a CLONE_VM child shares with the parent; so
// under TSan we call libc's clone, as TSan itself does.
CloneFn libc_clone() {
#ifdef SWARMFS_TSAN
    static const CloneFn fn = [] {
        void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        void* sym = libc ? dlsym(libc, "clone") : nullptr;
        return sym ? reinterpret_cast<CloneFn>(sym) : &::clone;
    }();
    return fn;
#else
    return &::clone;
#endif
}

}  // namespace

Result<Spawned> spawn(const ExecSpec& spec) {
    if (spec.argv.empty()) return make_error(EINVAL, "empty command");
    const std::string& name = spec.argv[0];
    std::string path = resolve_command(name);
    if (path.empty()) return make_error(ENOENT, "command not found: " + name);

    // Everything the child needs is built before clone. execve takes char*
    // for historical reasons but never writes through it.
    std::vector<char*> argv, envp;
    argv.reserve(spec.argv.size() + 1);
    envp.reserve(spec.env.size() + 1);
    for (auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
    if (!make_pipe(in_r, in_w) || !make_pipe(out_r, out_w) || !make_pipe(err_r, err_w))
        return make_error(EMFILE, std::string("pipe: ") + strerror(errno));

    ChildStack stack;
    if (!stack) return make_error(EAGAIN, std::string("child stack: ") + strerror(errno));
    ChildArgs args{};
    args.path = path.c_str();
    args.argv = argv.data();
    args.envp = envp.data();
    args.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
    args.in = in_r.get();
    args.out = out_w.get();
    args.err = err_w.get();
    args.parent = getpid();

    // The child starts with our mask, so blocking everything here means no
    // signal reaches it before it has reset the handlers. All 64, glibc's
    // internal ones too, which pthread_sigmask would leave open.
    uint64_t all = ~uint64_t{0}, old = 0;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, &old, kKernelSigsetBytes);
    // CLONE_VFORK: returns once the child has exec'd or exited, so neither
    // its stack nor args is in use any more.
    pid_t pid = libc_clone()(child_main, stack.top(), CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
    int clone_errno = errno;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, kKernelSigsetBytes);
    if (pid < 0) return make_error(EAGAIN, std::string("clone: ") + strerror(clone_errno));

    Spawned s;
    s.child = ChildProcess(pid);  // from here on, any return kills and reaps it
    in_r.reset();
    out_w.reset();
    err_w.reset();

    if (args.failed_step != kReachedExec) {
        s.child.kill_and_reap();  // it is exiting already; nothing else is in its group
        int e = args.error;
        int code = e == ENOENT ? ENOENT : EIO;
        if (args.failed_step == kChdir)
            return make_error(code, "cannot run " + name + ": working directory " + spec.cwd +
                                        ": " + strerror(e));
        if (args.failed_step == kStdio)
            return make_error(EIO, "cannot run " + name + ": redirecting stdio: " + strerror(e));
        return make_error(code, "cannot run " + name + ": " + strerror(e));
    }

    // The owners learn of the exit through the pidfd; without one they
    // would wait forever, so no pidfd is a failure to start.
    s.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!s.pidfd) {
        int e = errno;
        return make_error(e == ENOSYS ? ENOSYS : EIO, std::string("pidfd_open: ") + strerror(e));
    }
    // Non-blocking only now, and only our ends: the child's must stay
    // blocking (most programs do not expect EAGAIN on stdio).
    for (int fd : {in_w.get(), out_r.get(), err_r.get()})
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    s.in = std::move(in_w);
    s.out = std::move(out_r);
    s.err = std::move(err_r);
    return s;
}

}  // namespace swarmfs
