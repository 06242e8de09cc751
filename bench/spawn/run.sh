#!/usr/bin/env bash
# What starting a child costs a server with a heap, in one run:
#
#   bash bench/spawn/run.sh
#
# Builds bench/spawn/spawn_bench (RelWithDebInfo, -j2, into $BENCH_BUILD_DIR
# or bench/build-spawn/) and runs it. For swarmfs's spawn(), plain
# fork+execve and posix_spawn it starts /bin/true and waits for it, back to
# back, from 1 thread and from 4 at once, first with the small heap the
# benchmark has and then with ~1 GiB of touched heap (4 KiB pages), and
# prints spawns/s and p50/p99 latency side by side. fork copies the page
# tables of the whole heap; the other two clone vfork-style and should not
# care. About 25 s once built (12 cells of 1.5 s, and touching the heap).
#
# Environment: BENCH_BUILD_DIR (bench/build-spawn), BENCH_SKIP_BUILD=1,
# JOBS (2), SPAWN_BENCH_ARGS (e.g. "--seconds 3 --threads 8 --heap-mib 2048").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

builddir=${BENCH_BUILD_DIR:-bench/build-spawn}
[[ $builddir == /* ]] || builddir=$root/$builddir

log() { printf 'spawn-bench: %s\n' "$*" >&2; }

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  log "building spawn_bench in ${builddir#"$root"/}/"
  buildlog=$(mktemp /tmp/swarmfs-spawn-bench-build.XXXXXX)
  if ! { cmake -S . -B "$builddir" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$builddir" -j"${JOBS:-2}" --target spawn_bench; } >"$buildlog" 2>&1; then
    tail -n 30 "$buildlog" >&2
    log "build failed (log: $buildlog)"
    exit 1
  fi
  rm -f "$buildlog"
fi
bench=$builddir/bench/spawn_bench
[[ -x $bench ]] || { log "$bench missing"; exit 1; }

echo "swarmfs spawn benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), $(ldd --version | head -n 1)"
echo "swarmfs $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?') built RelWithDebInfo in ${builddir#"$root"/}/; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# shellcheck disable=SC2086
"$bench" ${SPAWN_BENCH_ARGS:-}
echo
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
