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

bench_name=spawn-bench
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start
bench_build spawn_bench
bench=$builddir/bench/spawn_bench
need_executables "$bench"

bench_header "swarmfs spawn benchmark" "$(ldd --version | head -n 1)"
echo
# shellcheck disable=SC2086
run_bg "$bench" ${SPAWN_BENCH_ARGS:-}
echo
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
