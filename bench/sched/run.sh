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

log() { printf 'sched-bench: %s\n' "$*" >&2; }

# ---- cleanup (set up before anything is started) ----------------------------
work=$(mktemp -d /tmp/swarmfs-sched-bench.XXXXXX)
shm=$(mktemp -d /dev/shm/swarmfs-sched-bench.XXXXXX)
registry=$work/mounts  # "PID MOUNTPOINT" of every swarmfs sched_bench starts
fake_pid='' fake_fd='' child_pid=''

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
cleanup() {
  local rc=$?
  set +e
  if [[ -n $child_pid ]]; then
    kill "$child_pid" 2>/dev/null
    wait "$child_pid" 2>/dev/null
  fi
  if [[ -f $registry ]]; then
    while read -r pid mnt; do
      if is_mounted "$mnt"; then
        fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null ||
          log "could not unmount $mnt"
      fi
      # Unmounting ends it; give it a moment, then ask by signal.
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill "$pid" 2>/dev/null
      for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
    done <"$registry"
  fi
  # Closing its stdin ends fake_openai (--exit-on-stdin-eof); SIGTERM if not.
  [[ -n $fake_fd ]] && exec {fake_fd}>&-
  if [[ -n $fake_pid ]]; then
    for _ in $(seq 20); do kill -0 "$fake_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
  fi
  rm -rf "$shm"
  if grep -qs " $work/" /proc/mounts; then
    log "left $work in place: something is still mounted there"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
# Long steps run in the background and the script waits for them: bash runs
# a trap only between commands, and wait is interrupted by a signal, so
# Ctrl-C ends the run (and unmounts) at once.
trap 'exit 130' INT TERM
run_bg() {
  "$@" &
  child_pid=$!
  local rc=0
  wait "$child_pid" || rc=$?
  child_pid=''
  return "$rc"
}

# ---- build ------------------------------------------------------------------
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  log "building swarmfs, fake_openai and sched_bench in ${builddir#"$root"/}/"
  build() {
    cmake -S . -B "$builddir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
      cmake --build "$builddir" -j"${JOBS:-2}" --target swarmfs fake_openai sched_bench
  }
  run_bg build >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; log "build failed"; exit 1; }
fi
swarmfs=$builddir/swarmfs
fake=$builddir/tests/fake_openai/fake_openai
bench=$builddir/bench/sched_bench
for f in "$swarmfs" "$fake" "$bench"; do [[ -x $f ]] || { log "$f missing"; exit 1; }; done

# ---- fake_openai ------------------------------------------------------------
mkfifo "$work/fake.in"
"$fake" --port 0 --latency-ms "$latency" --exit-on-stdin-eof \
  <"$work/fake.in" >"$work/fake.out" 2>"$work/fake.err" &
fake_pid=$!
exec {fake_fd}>"$work/fake.in"
rm -f "$work/fake.in"
port=''
for _ in $(seq 100); do
  port=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/fake.out")
  [[ -n $port ]] && break
  kill -0 "$fake_pid" 2>/dev/null || break
  sleep 0.05
done
[[ -n $port ]] || { cat "$work/fake.err" >&2; log "fake_openai did not start"; exit 1; }
log "fake_openai (--latency-ms $latency) listening on 127.0.0.1:$port"

# ---- measure ----------------------------------------------------------------
echo "swarmfs scheduler benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r)"
echo "swarmfs $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?') built RelWithDebInfo in ${builddir#"$root"/}/; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo "state (SQLite log, WAL, fsync per commit) under $work ($(df --output=fstype "$work" | tail -n 1 | tr -d ' '))"
echo
# shellcheck disable=SC2086
run_bg timeout 900 "$bench" --swarmfs "$swarmfs" --work "$work" --registry "$registry" \
  --shm "$shm/plain" --model-url "http://127.0.0.1:$port" --latency-ms "$latency" \
  ${SCHED_BENCH_ARGS:-}
echo
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
