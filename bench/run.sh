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

bench_name=bench
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
[[ $(id -u) -eq 0 ]] || bench_sudo=(sudo -n)
bench_start
bench_build swarmfs swarmfs_bench
swarmfs=$builddir/swarmfs
bench=$builddir/bench/swarmfs_bench
need_executables "$swarmfs" "$bench"

passthrough=$builddir/bench/passthrough_ll
if [[ ! -x $passthrough || $examples/passthrough_ll.c -nt $passthrough ]]; then
  log "compiling libfuse's passthrough_ll example"
  mkdir -p "$(dirname "$passthrough")"
  # shellcheck disable=SC2046
  cc -O2 -Wall -I"$examples" -o "$passthrough" "$examples/passthrough_ll.c" \
    $(pkg-config --cflags --libs fuse3)
fi

# ---- mounts (undone at exit whatever happens) --------------------------------
tmpfs=$work/tmpfs pt=$work/passthrough swarm=$work/swarm state=$work/state
mkdir -p "$tmpfs" "$pt" "$swarm" "$state"

if "${bench_sudo[@]}" mount -t tmpfs -o size=16m,mode=0755 swarmfs-bench "$tmpfs" 2>/dev/null; then
  bench_mounts+=("$tmpfs")
  [[ $(id -u) -eq 0 ]] || "${bench_sudo[@]}" chown "$(id -u):$(id -g)" "$tmpfs"
else
  log "cannot mount a tmpfs (not root?); using a folder under /dev/shm"
  rmdir "$tmpfs"
  tmpfs=$(mktemp -d /dev/shm/swarmfs-bench.XXXXXX)
  bench_rm+=("$tmpfs")
fi

log "mounting passthrough_ll (cache=$pt_cache) over the tmpfs"
bench_mounts+=("$pt")
"$passthrough" -o "source=$tmpfs,cache=$pt_cache" "$pt"

log "mounting swarmfs (fresh state)"
bench_mounts+=("$swarm")
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
run_bg timeout 240 "$bench" --swarm "$swarm" --agent cat --sink sink \
  --passthrough "$pt" --raw "$tmpfs" ${BENCH_ARGS:-}
