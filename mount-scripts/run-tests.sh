#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. install missing Debian packages,
#   2. build RelWithDebInfo into build/ and run ctest,
#   3. build the Asan type (AddressSanitizer + UndefinedBehaviorSanitizer)
#      into build-asan/ and run ctest again.
# Exits non-zero if any build or test fails; the last line is a summary.
#
# Environment: CTEST_JOBS (default 1: the integration tests mount FUSE file
# systems and time things), SWARMFS_BUILD_DIR, SWARMFS_ASAN_BUILD_DIR,
# SWARMFS_SKIP_ASAN=1 to run only the first pass.
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=${CTEST_JOBS:-1}
build_dir=${SWARMFS_BUILD_DIR:-build}
asan_dir=${SWARMFS_ASAN_BUILD_DIR:-build-asan}
start=$SECONDS
declare -a summary=()
failed=0
total_passed=0
total_failed=0

section() { printf '\n===== %s =====\n' "$*"; }

# pass NAME TYPE DIR [env...]: build and test one configuration.
pass() {
  local name=$1 type=$2 dir=$3; shift 3
  local t0=$SECONDS
  section "$name: build ($type, $dir/)"
  if ! bash mount-scripts/build.sh "$type" "$dir"; then
    summary+=("$name: BUILD FAILED")
    failed=1
    return
  fi
  section "$name: ctest"
  local log
  log=$(mktemp)
  env "$@" ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 300 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  # ctest's own verdict line, e.g. "100% tests passed, 0 tests failed out of 42"
  local verdict
  verdict=$(grep -E 'tests passed|No tests were found' "$log" | tail -n 1)
  rm -f "$log"
  # Totals for the plain closing line.
  if [[ $verdict =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
    total_failed=$((total_failed + BASH_REMATCH[1]))
    total_passed=$((total_passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  fi
  if ((rc == 0)); then
    summary+=("$name: PASS (${verdict:-ok}, $((SECONDS - t0)) s)")
  else
    summary+=("$name: FAIL (${verdict:-ctest exit status $rc}, $((SECONDS - t0)) s)")
    failed=1
  fi
}

section "dependencies"
if ! bash mount-scripts/install-deps.sh; then
  echo "run-tests: installing dependencies failed" >&2
  exit 1
fi
echo "dependencies ok"

pass RelWithDebInfo RelWithDebInfo "$build_dir"

if [[ ${SWARMFS_SKIP_ASAN:-0} != 1 ]]; then
  pass Asan Asan "$asan_dir" \
    ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
fi

section "summary"
joined=$(printf '%s; ' "${summary[@]}")
joined=${joined%; }
if ((failed)); then
  echo "run-tests: FAILED -- $joined -- $((SECONDS - start)) s"
  echo "$total_passed passed, $total_failed failed"
  exit 1
fi
echo "run-tests: all passed -- $joined -- $((SECONDS - start)) s"
echo "$total_passed passed, $total_failed failed"
