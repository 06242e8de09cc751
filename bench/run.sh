#!/usr/bin/env bash
# Benchmark swarmfs against libfuse's passthrough_ll example and plain tmpfs.
#
#   bash bench/run.sh
#
# Builds swarmfs and swarmfs_bench (RelWithDebInfo, in $BENCH_BUILD_DIR or
# build/), compiles passthrough_ll from libfuse3-dev's examples, mounts a tmpfs,
# passthrough_ll over it and a fresh swarmfs, runs swarmfs_bench, and always
# unmounts everything and removes its temporary files, even on failure.
# Needs root (or sudo) for the tmpfs mount; otherwise /dev/shm stands in.
# Takes about a minute.
#
# Environment: BENCH_BUILD_DIR, BENCH_SKIP_BUILD=1, BENCH_ARGS (extra
# arguments for swarmfs_bench, e.g. "--samples 500 --inbox-seconds 5"),
# BENCH_PT_CACHE (passthrough_ll cache mode: never (default), auto, always).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

builddir=${BENCH_BUILD_DIR:-build}
[[ $builddir == /* ]] || builddir=$root/$builddir
pt_cache=${BENCH_PT_CACHE:-never}
examples=/usr/share/doc/libfuse3-dev/examples

log() { printf 'bench: %s\n' "$*" >&2; }

SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo -n)

# ---- build -----------------------------------------------------------------
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  log "building swarmfs and swarmfs_bench in ${builddir#"$root"/}/"
  bash mount-scripts/build.sh RelWithDebInfo "$builddir" >/tmp/swarmfs-bench-build.$$.log 2>&1 || {
    tail -n 30 /tmp/swarmfs-bench-build.$$.log >&2
    log "build failed (log: /tmp/swarmfs-bench-build.$$.log)"
    exit 1
  }
  rm -f /tmp/swarmfs-bench-build.$$.log
fi
swarmfs=$builddir/swarmfs
bench=$builddir/bench/swarmfs_bench
[[ -x $swarmfs ]] || { log "$swarmfs missing"; exit 1; }
[[ -x $bench ]] || { log "$bench missing"; exit 1; }

passthrough=$builddir/bench/passthrough_ll
if [[ ! -x $passthrough || $examples/passthrough_ll.c -nt $passthrough ]]; then
  log "compiling libfuse's passthrough_ll example"
  mkdir -p "$(dirname "$passthrough")"
  # shellcheck disable=SC2046
  cc -O2 -Wall -I"$examples" -o "$passthrough" "$examples/passthrough_ll.c" \
    $(pkg-config --cflags --libs fuse3)
fi

# ---- mounts (undone by the trap whatever happens) ---------------------------
work=$(mktemp -d /tmp/swarmfs-bench.XXXXXX)
tmpfs=$work/tmpfs pt=$work/passthrough swarm=$work/swarm state=$work/state
mkdir -p "$tmpfs" "$pt" "$swarm" "$state"
tmpfs_mounted=0
shm_dir=

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
unmount_fuse() {
  is_mounted "$1" || return 0
  fusermount3 -u "$1" 2>/dev/null || fusermount3 -u -z "$1" 2>/dev/null ||
    "${SUDO[@]}" umount -l "$1" 2>/dev/null || log "could not unmount $1"
}
cleanup() {
  local rc=$?
  set +e
  unmount_fuse "$swarm"
  unmount_fuse "$pt"
  if ((tmpfs_mounted)); then
    "${SUDO[@]}" umount "$tmpfs" 2>/dev/null || "${SUDO[@]}" umount -l "$tmpfs"
  fi
  [[ -n $shm_dir ]] && rm -rf "$shm_dir"
  # Remove only when nothing is mounted below $work any more.
  if ! grep -qs " $work/" /proc/mounts; then
    rm -rf "$work"
  else
    log "left $work in place: something is still mounted there"
  fi
  exit $rc
}
bench_pid=
trap cleanup EXIT
# The bench runs in the background and the script waits for it: bash runs a
# trap only between commands, and wait is interrupted by a signal, so Ctrl-C
# or kill ends the run (and unmounts) at once instead of after the bench.
trap '[[ -n $bench_pid ]] && kill "$bench_pid" 2>/dev/null; exit 130' INT TERM

if "${SUDO[@]}" mount -t tmpfs -o size=16m,mode=0755 swarmfs-bench "$tmpfs" 2>/dev/null; then
  tmpfs_mounted=1
  [[ $(id -u) -eq 0 ]] || "${SUDO[@]}" chown "$(id -u):$(id -g)" "$tmpfs"
else
  log "cannot mount a tmpfs (not root?); using a folder under /dev/shm"
  rmdir "$tmpfs"
  shm_dir=$(mktemp -d /dev/shm/swarmfs-bench.XXXXXX)
  tmpfs=$shm_dir
fi

log "mounting passthrough_ll (cache=$pt_cache) over the tmpfs"
"$passthrough" -o "source=$tmpfs,cache=$pt_cache" "$pt"

log "mounting swarmfs (fresh state)"
(cd "$work" && "$swarmfs" "$swarm" --state "$state")
# The agents, made through the file protocol itself: 'cat' answers every
# message with the message; 'sink' is stopped, so its inbox only queues.
mkdir "$swarm/agents/cat" "$swarm/agents/sink"
env printf '{"exec": ["cat"], "instructions": "Echo every message."}\n' >"$swarm/agents/cat/config"
env printf '{"exec": ["cat"], "instructions": "Stopped: messages only queue."}\n' >"$swarm/agents/sink/config"
env printf 'stop\n' >"$swarm/agents/sink/ctl"
# The references: real copies of the swarmfs files, same sizes, same paths.
mkdir -p "$tmpfs/agents/cat"
cp "$swarm/status" "$tmpfs/status"
cp "$swarm/agents/cat/config" "$tmpfs/agents/cat/config"

echo "swarmfs benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), libfuse $(pkg-config --modversion fuse3)"
echo "swarmfs: $swarmfs, state (SQLite log) on $(df --output=fstype "$state" | tail -n 1 | tr -d ' ')"
echo
# shellcheck disable=SC2086
timeout 240 "$bench" --swarm "$swarm" --agent cat --sink sink \
  --passthrough "$pt" --raw "$tmpfs" ${BENCH_ARGS:-} &
bench_pid=$!
wait "$bench_pid"
