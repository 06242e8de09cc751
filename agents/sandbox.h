#pragma once
// The sandbox exec agents and exec tools run in.
//
// bubblewrap builds it: a private mount namespace whose only window on the
// swarm is the agent's view, bound read-write at /swarm; the host's system
// paths (/usr, /bin, /sbin, /lib, /lib64) read-only, and from /etc only what
// programs need to start (never shadow); the workdir (and any read paths)
// read-only at its own path and the cwd, with the state folder masked; a private /tmp; new /proc
// and minimal /dev; new pid, ipc, uts, cgroup and (unless net) network
// namespaces; a new session; dies with its parent.
//
// bwrap then execs swarmfs-jail (agents/jail/) inside, which applies what
// must bind the command but not bwrap: resource limits, Landlock (Landlock
// forbids mount(2), so it cannot wrap bwrap) and the drop to the agent's
// unprivileged uid, and then execs the command. See swarmfs_jail.cpp for
// its command line and its order of operations.
//
// Nothing here starts a process: sandbox_argv() returns the argv, and the
// caller hands it to spawn() with the environment it wants.
#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vault/result.h"

namespace swarmfs {

struct SandboxLimits {
    double cpu_seconds = 60;         // RLIMIT_CPU (SIGXCPU, SIGKILL a second later)
    int64_t memory_bytes = 1 << 30;  // RLIMIT_AS; also the size of the sandbox's /tmp
    int64_t processes = 128;         // RLIMIT_NPROC (per uid)
    int64_t file_bytes = 256 << 20;  // RLIMIT_FSIZE
    int64_t open_files = 256;        // RLIMIT_NOFILE
    double wall_seconds = 300;       // the kernel kills the process after this (carried only)
    bool operator==(const SandboxLimits&) const = default;
};

// An agent's "sandbox" config key: false, or {"enabled": bool, "cpu": s,
// "memory": bytes or "512M"/"1G", "processes": n, "file_size": bytes or
// "64M", "open_files": n, "wall": s}; true == {} == the defaults.
// Sizes: a whole number of bytes, or one with a K, M, G or T suffix
// (powers of 1024, "iB" may follow: "512MiB"). Ranges:
//   cpu, wall      0 < s <= 604800 (a week)
//   memory         16 MiB .. 128 TiB
//   processes      1 .. 4194304
//   file_size      0 .. 1 PiB
//   open_files     16 .. 1048576
// Unknown keys, wrong types and out-of-range values -> EINVAL with a message
// naming the key ("sandbox.memory: ...").
struct SandboxPolicy {
    bool enabled = true;
    SandboxLimits limits;

    static Result<SandboxPolicy> from_json(const nlohmann::json& j);
    // Every key, sizes in bytes; round-trips through from_json.
    nlohmann::json to_json() const;
    bool operator==(const SandboxPolicy&) const = default;
};

struct SandboxSpec {
    std::string view;               // host dir bound read-write at /swarm; empty: no /swarm
    std::string workdir;            // bound read-only at the same path and the cwd; empty: cwd /
    std::vector<std::string> read;  // more host folders shown read-only at their own paths
    std::vector<std::string> hide;  // host paths masked (an empty read-only tmpfs, or
                                    // /dev/null for a file) wherever the sandbox shows them
    std::string mount;              // the file server's mountpoint, canonical: masked like
                                    // a hidden folder but never looked at on the host (that
                                    // would be a request to the server making the sandbox)
    bool net = false;               // share the host's network (else a new, empty one)
    uid_t uid = 0;                  // run as this uid/gid; 0: keep (a non-root server: then
    gid_t gid = 0;                  // bwrap runs in a new user namespace, as that user)
    SandboxLimits limits;
};

// The argv that runs `argv` inside the sandbox:
//   {BWRAP, <namespaces>, <mounts>, "--chdir", WORKDIR, "--", "/.swarmfs-jail",
//    <limits>, [--uid U --gid G], <landlock rules>, [--net], "--", argv...}
// The paths are made canonical first (the workdir is seen at its real path).
// Errors: EINVAL (empty argv; a relative path; workdir "/"; uid without gid;
// a hidden path that contains the workdir or the view; limits out of range),
// ENOENT (bwrap or the jail binary missing, or the view or workdir),
// ENOTDIR, EPERM (a uid other than our own when the server is not root).
Result<std::vector<std::string>> sandbox_argv(const SandboxSpec& spec,
                                              const std::vector<std::string>& argv);

// Whether a host path is in a sandbox built from spec, read-only: under a
// system folder, the workdir or a read path.
bool sandbox_shows(const SandboxSpec& spec, const std::string& path);

// bubblewrap: $SWARMFS_BWRAP if set, else /usr/bin/bwrap.
std::string bwrap_path();
// The swarmfs-jail binary: $SWARMFS_JAIL if set, else next to
// /proc/self/exe, else the build tree's (baked in at compile time).
std::string jail_path();
// Where the jail appears inside the sandbox.
inline constexpr const char* kJailInSandbox = "/.swarmfs-jail";
// Where a workdir under the host's /tmp is bound; its own path inside the
// sandbox is a symlink to this. A read path under /tmp: kReadInSandbox-N,
// N its index in SandboxSpec::read.
inline constexpr const char* kWorkdirInSandbox = "/.swarmfs-workdir";
inline constexpr const char* kReadInSandbox = "/.swarmfs-read";
// The running kernel's Landlock ABI version; 0 when it has none.
int landlock_abi();

// bubblewrap exits with 128+N when the command was killed by signal N:
// "exit status 137" becomes "killed by signal 9 (Killed)", as for a command
// run directly. Other reasons are returned as they are.
std::string sandboxed_exit_reason(const std::string& reason);

}  // namespace swarmfs
