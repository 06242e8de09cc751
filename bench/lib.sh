# shellcheck shell=bash
# shellcheck disable=SC2154  # bench_name, builddir and root are the script's
# Shared by the bench/*/run.sh scripts (sourced, not run): logging, the
# build step, starting fake_openai and swarmfs, and one cleanup that undoes
# whatever a script started, whatever happens (failure, Ctrl-C).
#
# A script sets bench_name (the log prefix and the temporary folder's name)
# and builddir, sources this file, then calls bench_start before it starts
# anything. What it starts it registers: bench_mounts (mountpoints), bench_pids
# (processes to stop once unmounted), bench_registry (a file of "PID
# MOUNTPOINT" lines written by a benchmark program that mounts by itself),
# bench_rm (more folders to remove); mounts are undone last one first. bench_before_cleanup, if the script
# defines it, runs first.

log() { printf '%s: %s\n' "$bench_name" "$*" >&2; }
is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

bench_mounts=() bench_pids=() bench_rm=() bench_registry='' bench_sudo=()
child_pid='' fake_pid='' fake_fd='' port=''

# stop_pid PID: a swarmfs ends by itself once unmounted; give it a moment,
# then ask by signal, then insist.
stop_pid() {
  local pid=$1
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill "$pid" 2>/dev/null
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# unmount MNT: FUSE mounts as their owner may; others (a tmpfs) by umount,
# through bench_sudo=(sudo -n) where the script is not root.
unmount() {
  is_mounted "$1" || return 0
  fusermount3 -u "$1" 2>/dev/null || fusermount3 -u -z "$1" 2>/dev/null ||
    "${bench_sudo[@]}" umount "$1" 2>/dev/null || "${bench_sudo[@]}" umount -l "$1" 2>/dev/null ||
    log "could not unmount $1"
}

bench_cleanup() {
  local rc=$? pid mnt
  set +e
  if [[ -n $child_pid ]]; then
    kill "$child_pid" 2>/dev/null
    wait "$child_pid" 2>/dev/null
  fi
  declare -F bench_before_cleanup >/dev/null && bench_before_cleanup
  # Last mounted, first unmounted: a mount may stand on another.
  local i
  for ((i = ${#bench_mounts[@]} - 1; i >= 0; i--)); do unmount "${bench_mounts[i]}"; done
  if [[ -n $bench_registry && -f $bench_registry ]]; then
    while read -r pid mnt; do
      unmount "$mnt"
      stop_pid "$pid"
    done <"$bench_registry"
  fi
  for pid in "${bench_pids[@]}"; do stop_pid "$pid"; done
  stop_fake_openai
  for d in "${bench_rm[@]}"; do rm -rf "$d"; done
  if grep -qs " $work/" /proc/mounts; then
    log "left $work in place: something is still mounted there"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}

# bench_start: makes $work (in /tmp) and sets the traps.
bench_start() {
  work=$(mktemp -d "/tmp/swarmfs-$bench_name.XXXXXX")
  trap bench_cleanup EXIT
  # Long steps run in the background and the script waits for them: bash
  # runs a trap only between commands, and wait is interrupted by a
  # signal, so Ctrl-C ends the run (and unmounts) at once.
  trap 'exit 130' INT TERM
}

run_bg() {
  "$@" &
  child_pid=$!
  local rc=0
  wait "$child_pid" || rc=$?
  child_pid=''
  return "$rc"
}

# bench_build TARGET...: a RelWithDebInfo build of the targets into
# $builddir, unless BENCH_SKIP_BUILD=1.
bench_build() {
  [[ ${BENCH_SKIP_BUILD:-0} == 1 ]] && return 0
  log "building $* in ${builddir#"$root"/}/"
  run_bg cmake_build "$@" >"$work/build.log" 2>&1 || {
    tail -n 30 "$work/build.log" >&2
    log "build failed"
    exit 1
  }
}

cmake_build() {
  cmake -S "$root" -B "$builddir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
    cmake --build "$builddir" -j"${JOBS:-2}" --target "$@"
}

need_executables() {
  local f
  for f in "$@"; do [[ -x $f ]] || { log "$f missing"; exit 1; }; done
}

# bench_header TITLE [MORE]: what ran, where and when, first in every report.
bench_header() {
  echo "$1 — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r)${2:+, $2}"
  echo "swarmfs $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?') built RelWithDebInfo in ${builddir#"$root"/}/; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
}

# start_fake_openai [OPTION...]: tests/fake_openai on a free loopback port;
# sets fake_pid, fake_fd and port. Closing its stdin ends it
# (--exit-on-stdin-eof), so it cannot outlive the script.
start_fake_openai() {
  mkfifo "$work/fake.in"
  "$builddir/tests/fake_openai/fake_openai" --port 0 --exit-on-stdin-eof "$@" \
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
}

stop_fake_openai() {
  if [[ -n $fake_fd ]]; then
    exec {fake_fd}>&-
    fake_fd=''
  fi
  if [[ -n $fake_pid ]]; then
    for _ in $(seq 20); do kill -0 "$fake_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$fake_pid" 2>/dev/null
    wait "$fake_pid" 2>/dev/null
    fake_pid=''
  fi
  return 0
}

# mount_swarmfs MNT STATE CONFIG LOG: swarmfs in the foreground (-f), in the
# background of this script, registered for cleanup; waits for the mount.
# Environment assignments for swarmfs go in swarmfs_env=(NAME=VALUE ...).
mount_swarmfs() {
  local mnt=$1 pid
  mkdir -p "$mnt"
  bench_mounts+=("$mnt")
  env "${swarmfs_env[@]}" "$builddir/swarmfs" "$mnt" --state "$2" --config "$3" -f >"$4" 2>&1 &
  pid=$!
  bench_pids+=("$pid")
  for _ in $(seq 100); do
    is_mounted "$mnt" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$4" >&2
  log "swarmfs did not mount on $mnt"
  return 1
}
swarmfs_env=()
