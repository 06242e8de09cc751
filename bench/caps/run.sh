#!/usr/bin/env bash
# What capability checks and the sandbox cost, side by side in one run:
#
#   bash bench/caps/run.sh
#
# Builds swarmfs, swarmfs-jail and bench/caps/caps_bench (RelWithDebInfo,
# -j2, into $BENCH_BUILD_DIR or build/), makes a vault of 1000 files of 4 KiB
# and one of 1 MiB in STATE/vault/kb, and mounts two swarms under a
# temporary folder in /tmp, each with a no-op exec tool (`true`) and one
# agent, reader, that unveils /vault/kb read-only and may call the tool: one
# with the defaults (exec tools sandboxed: bubblewrap + swarmfs-jail) and one
# with "sandbox": false in its swarm file. Then, in one table each:
#
#  (1) stat, open+read+close of a small file and of the 1 MiB file, on the
#      disk (STATE/vault/kb), through MNT/vault/kb (no checks), through
#      MNT/views/reader/vault/kb (the agent's unveil map and the vault's
#      owners checked on every request) and through that view from the
#      agent's own uid (identity-checked too); by absolute path (every
#      component looked up again: the mount caches no entries) and relative
#      to an open descriptor of kb/ (one lookup per op).
#  (2) exec tool calls (write {} to tools/noop/call, read the result to EOF)
#      sandboxed and with "sandbox": false, from the owner and through the
#      view (also from the agent's uid), beside starting /bin/true directly
#      with swarmfs::spawn(), under a bare bwrap (one bind of /: its floor)
#      and inside the sandbox the kernel builds for reader (sandbox_argv()),
#      which is what a call costs without the file server and the kernel.
#
# The rows of a table take turns (5 slices each), so load elsewhere on the
# machine spreads over all of them. Needs root (the server gives agents
# their own uids only when it runs as root; without root the uid rows are
# left out). Whatever happens (failure, Ctrl-C) it unmounts both swarms,
# stops the servers and removes its temporary files. About 50 s once built.
#
# Environment: BENCH_BUILD_DIR (build), BENCH_SKIP_BUILD=1, JOBS (2),
# CAPS_BENCH_SECONDS (1: per file cell), CAPS_BENCH_START_SECONDS (2: per
# start cell), CAPS_BENCH_FILES (1000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

builddir=${BENCH_BUILD_DIR:-build}
[[ $builddir == /* ]] || builddir=$root/$builddir
file_seconds=${CAPS_BENCH_SECONDS:-1}
start_seconds=${CAPS_BENCH_START_SECONDS:-2}
nfiles=${CAPS_BENCH_FILES:-1000}

bench_name=caps-bench
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start
# The agent's uid must reach the mounts below.
chmod 755 "$work"
bench_build swarmfs swarmfs-jail caps_bench
swarmfs=$builddir/swarmfs
bench=$builddir/bench/caps_bench
need_executables "$swarmfs" "$bench" "$builddir/swarmfs-jail"

# ---- the vault and the two swarms ----------------------------------------------
conf=$work/conf
mkdir -p "$conf" "$work/state-box/vault/kb"
kb=$work/state-box/vault/kb
# f0000 .. f0999 of 4 KiB each, and big (1 MiB).
head -c $((nfiles * 4096)) /dev/urandom >"$work/blob"
split -b 4096 -a 4 -d "$work/blob" "$kb/f"
rm -f "$work/blob"
head -c $((1 << 20)) /dev/urandom >"$kb/big"

# noop is the tool measured; where says how a tool runs (inside the
# sandbox the jail is at /.swarmfs-jail) and as which uid.
write_swarm() {
  cat >"$1" <<EOF
{$2
 "tools": {
  "noop": {"exec": ["true"], "description": "does nothing"},
  "where": {"exec": ["sh", "-c", "if test -e /.swarmfs-jail; then s=sandboxed; else s='no sandbox'; fi; echo \"\$s, uid \$(id -u)\""],
            "description": "how tools run"}},
 "agents": {
  "reader": {"exec": ["cat"], "caps": ["tool:noop", "tool:where"], "unveil": {"/vault/kb": "r"}}}}
EOF
}
write_swarm "$conf/box.json" ''
write_swarm "$conf/plain.json" ' "sandbox": false,'

# mount NAME CONFIG: mounts $work/mnt-NAME with state $work/state-NAME.
mount_swarm() { mount_swarmfs "$work/mnt-$1" "$work/state-$1" "$2" "$work/$1.log"; }
mount_swarm box "$conf/box.json" || exit 1
box=$work/mnt-box
plain=''
if mount_swarm plain "$conf/plain.json"; then
  plain=$work/mnt-plain
else
  log "no \"sandbox\": false rows (this swarmfs refuses the key); the spawn rows stand in"
fi

# One call through a query file, its result on one line.
call() {
  local out
  out=$(exec 3<>"$1" && printf '{}' >&3 && cat <&3) || out="(call failed)"
  printf '%s' "${out//$'\n'/ }"
}

uid=$(sed -n 's/^uid //p' "$box/agents/reader/status")
as_uid=()
if [[ -n $uid ]]; then
  as_uid=(--as-uid "$uid")
else
  log "the agent has no uid of its own (not root?): no rows as its uid"
fi

# ---- measure ----------------------------------------------------------------------
bench_header "swarmfs capability-check and sandbox benchmark" "$(bwrap --version 2>/dev/null || echo 'no bwrap')"
echo "vault: $nfiles files of 4 KiB and one of 1 MiB in STATE/vault/kb on $(df --output=fstype "$kb" | tail -n 1 | tr -d ' '); agent reader${uid:+ (uid $uid)} unveils /vault/kb r"
echo "tools run: sandbox default: tools/ $(call "$box/tools/where/call"); views/reader/tools/ $(call "$box/views/reader/tools/where/call")"
if [[ -n $plain ]]; then
  echo "           \"sandbox\": false: tools/ $(call "$plain/tools/where/call"); views/reader/tools/ $(call "$plain/views/reader/tools/where/call")"
fi
echo

views_kb=$box/views/reader/vault/kb
file_rows=(
  "disk (STATE/vault/kb)=$kb"
  "MNT/vault/kb=$box/vault/kb"
  "MNT/views/reader/vault/kb=$views_kb"
)
uid_row=()
[[ -n $uid ]] && uid_row=("${as_uid[@]}" "views/reader/vault/kb as uid $uid=$views_kb")

echo "(1a) by absolute path, ${file_seconds} s per cell; p50/p99 per op in microseconds"
run_bg "$bench" files --seconds "$file_seconds" --files "$nfiles" "${file_rows[@]}" "${uid_row[@]}"
echo
echo "(1b) relative to an open descriptor of kb/ (fstatat, openat), ${file_seconds} s per cell"
run_bg "$bench" files --at --seconds "$file_seconds" --files "$nfiles" "${file_rows[@]}" "${uid_row[@]}"
echo

start_rows=(
  "tools/noop/call, sandbox=$box/tools/noop/call"
  "views/reader/tools/noop/call, sandbox=$box/views/reader/tools/noop/call"
)
[[ -n $uid ]] && start_rows+=("${as_uid[@]}" "  the same as uid $uid=$box/views/reader/tools/noop/call")
if [[ -n $plain ]]; then
  start_rows+=(
    "tools/noop/call, \"sandbox\": false=$plain/tools/noop/call"
    "views/reader/tools/noop/call, \"sandbox\": false=$plain/views/reader/tools/noop/call"
  )
fi
# The sandbox the kernel builds for reader's calls: its uid, its view at
# /swarm, the swarm file's folder as workdir, the state folder hidden.
spawn_args=(--spawn-uid "${uid:-0}" --spawn-view "$box/views/reader"
  --spawn-workdir "$conf" --spawn-hide "$work/state-box")
echo "(2) exec tool starts (write {}, read the result to EOF) and process starts, ${start_seconds} s per cell"
run_bg "$bench" starts --seconds "$start_seconds" "${start_rows[@]}" "${spawn_args[@]}"
echo
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
