#!/usr/bin/env bash
# The scheduler under load: event fan-out, sustained inbox traffic at two pool
# sizes, and a swarm of 10,000 agents -- issue 4's benchmark, in one run.
#
#   bash bench/sched/run.sh
#
# Builds swarmfs, tests/fake_openai and bench/sched/sched_bench
# (RelWithDebInfo, -j2, into $BENCH_BUILD_DIR or build-sched-bench/), starts
# fake_openai on a free loopback port with --latency-ms 200, and runs
# sched_bench, which mounts (swarmfs -f, fresh state each time, under a
# temporary folder in /tmp) and measures, printing every figure with a note:
#
#  (1) fan-out: one write to events/TOPIC with 1, 8 and 64 subscribing model
#      agents whose model call takes 200 ms (fake_openai waits 200 ms before
#      the first byte; a script step per request sends the rest of the stream
#      at once). Publish ack time, and publish -> every subscriber's turn done
#      (EOF on each subscriber's output), beside the sequential sum: N x one
#      turn through the mount (inbox -> EOF on output) measured in the same
#      run, and the model alone (a direct libcurl request).
#  (2) sustained inbox traffic into 100 exec agents (cat) from 8 writer
#      threads for 5 s, at "workers": 2 and at the default (64): acknowledged
#      messages/s, replies/s, ack latency and write-to-first-output latency
#      (start of the inbox write to the read that brings the reply's first
#      byte from that agent's output) p50/p99, backlog and drain time.
#  (3) 10,000 agents declared in the swarm file: time to mount, readdir of
#      agents/ and `ls`/`ls -l` of it beside the same names as folders on
#      tmpfs and on disk, resident memory (VmRSS) and idle CPU (utime+stime
#      over 5 s) and wakeups of the swarmfs process, reads of metrics and
#      ctl, and a message round trip, beside a swarm of one agent.
#
# Whatever happens (failure, Ctrl-C) it unmounts every swarmfs it mounted,
# stops what it started and removes its temporary files. About 1.5-2 minutes
# on a 2-core machine once built (a first build of swarmfs with -j2 takes a few
# more); the longest steps are mounting the 10,000 agents (~25 s) and removing
# the 10,000 baseline folders from the disk.
#
# Environment: BENCH_BUILD_DIR (build-sched-bench), BENCH_SKIP_BUILD=1,
# JOBS (2), SCHED_BENCH_LATENCY_MS (200), SCHED_BENCH_ARGS (more sched_bench
# options, e.g. "--tp-seconds 10 --many 20000 --only fanout,tp").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

builddir=${BENCH_BUILD_DIR:-build-sched-bench}
[[ $builddir == /* ]] || builddir=$root/$builddir
latency=${SCHED_BENCH_LATENCY_MS:-200}

bench_name=sched-bench
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start
shm=$(mktemp -d /dev/shm/swarmfs-sched-bench.XXXXXX)
bench_rm+=("$shm")
bench_registry=$work/mounts  # "PID MOUNTPOINT" of every swarmfs sched_bench starts
bench_build swarmfs fake_openai sched_bench
swarmfs=$builddir/swarmfs
fake=$builddir/tests/fake_openai/fake_openai
bench=$builddir/bench/sched_bench
need_executables "$swarmfs" "$fake" "$bench"

# ---- fake_openai ------------------------------------------------------------
start_fake_openai --latency-ms "$latency"
log "fake_openai (--latency-ms $latency) listening on 127.0.0.1:$port"

# ---- measure ----------------------------------------------------------------
bench_header "swarmfs scheduler benchmark"
echo "state (SQLite log, WAL, fsync per commit) under $work ($(df --output=fstype "$work" | tail -n 1 | tr -d ' '))"
echo
# shellcheck disable=SC2086
run_bg timeout 900 "$bench" --swarmfs "$swarmfs" --work "$work" --registry "$bench_registry" \
  --shm "$shm/plain" --model-url "http://127.0.0.1:$port" --latency-ms "$latency" \
  ${SCHED_BENCH_ARGS:-}
echo
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
