#!/usr/bin/env bash
# The orchestration overhead of swarmfs's model agents, beside the OpenAI
# Agents SDK for JavaScript, against the loopback OpenAI-compatible server
# tests/fake_openai (a deterministic echo model with zero latency, so what is
# measured is everything but the model).
#
#   bash bench/model/run.sh
#
# Builds swarmfs, fake_openai and model_bench (RelWithDebInfo, -j2, in
# $BENCH_BUILD_DIR or build-bench/), installs @openai/agents from the npm
# registry into bench/model/node_modules (versions pinned by package.json and
# package-lock.json), starts fake_openai on a free port and mounts a fresh
# swarmfs whose swarm file has two model agents on it (sales, which may hand
# off to support; support, which may call the exec tool lookup_ticket, the
# script bench/model/lookup_ticket.sh), runs bench/model/model_bench then
# bench/model/sdk_bench.mjs, and prints one table. Whatever happens (failure,
# Ctrl-C) it unmounts, stops what it started and removes its temporary files.
# Takes about a minute once built.
#
# Rows (per turn; the model answers at once, so this is all overhead + HTTP):
#   (a) direct request  one streamed chat completion read to its end, with the
#                       very body swarmfs sends for a plain turn: libcurl on
#                       the swarmfs side (the baseline), node's fetch() on the
#                       SDK side;
#   (b) plain turn      one model call: write conv/N/in (open, write, close),
#                       read conv/N/out to the last byte of the reply;
#                       SDK: run(sales, message, {stream: true});
#   (c) handoff turn    two model calls: sales calls transfer_to_support,
#                       support answers in the same turn;
#   (d) tool turn       two model calls and one exec tool run: support calls
#                       lookup_ticket and answers with its result.
# Columns: p50 and p99 in ms from the start of the write (SDK: the run() call)
# to the reply's last byte (SDK: its last text delta); +p50/+p99 the same
# minus (a)'s on the libcurl side; orch = p50 - calls x p50(a), what the turn
# costs beyond its model requests. Below the table, per kind, the p50 of each
# phase: close(in) returned (the message is durable), first byte, last byte,
# EOF on out (SDK: last text delta, run completed); and, for reference, the
# SDK's tool turn with the tool as an in-process function instead of the
# script (what an SDK user would usually write; swarmfs has no such tool kind).
#
# Fairness: each sample uses a fresh conversation (swarmfs: conv/clone and
# "agent NAME" on its ctl, outside the timing; SDK: a fresh run(), no
# session), so the context never grows; both sides send the same messages to
# the same server, with retries off. Within each side the kinds are
# interleaved sample by sample; the swarmfs side runs first, then the SDK.
# swarmfs's state (SQLite log, fsync per commit) is on the file system of
# /tmp, as in normal use; a turn commits its message (plus the forwarded one
# on a handoff) before it can start.
#
# Environment: BENCH_BUILD_DIR (default build-bench), BENCH_SKIP_BUILD=1,
# MODEL_BENCH_SAMPLES (200), MODEL_BENCH_WARMUP (20), JOBS (2),
# MODEL_BENCH_SKIP_SDK=1, MODEL_BENCH_STATE_DIR (where swarmfs's state folder
# is made, default under /tmp; /dev/shm takes the disk's fsync out of it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

builddir=${BENCH_BUILD_DIR:-build-bench}
[[ $builddir == /* ]] || builddir=$root/$builddir
samples=${MODEL_BENCH_SAMPLES:-200}
warmup=${MODEL_BENCH_WARMUP:-20}

bench_name=model-bench
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_start
mnt=$work/mnt
state=''
# A state folder outside $work (MODEL_BENCH_STATE_DIR) goes too.
bench_before_cleanup() { [[ -n $state ]] && bench_rm+=("$state"); }
bench_build swarmfs fake_openai model_bench
swarmfs=$builddir/swarmfs
fake=$builddir/tests/fake_openai/fake_openai
bench=$builddir/bench/model_bench
need_executables "$swarmfs" "$fake" "$bench"

# ---- the Agents SDK from npm (its column is skipped if this fails) -----------
sdk_skip=''
if [[ ${MODEL_BENCH_SKIP_SDK:-0} == 1 ]]; then
  sdk_skip='MODEL_BENCH_SKIP_SDK=1'
elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sdk_skip='node or npm is not installed'
else
  log "installing @openai/agents (npm, pinned) into bench/model/node_modules"
  if ! run_bg timeout 180 npm install --prefix "$here" --no-audit --no-fund --loglevel=error --omit-lockfile-registry-resolved \
        --fetch-retries=1 --fetch-timeout=30000 >"$work/npm.log" 2>&1; then
    sdk_skip="npm install failed (registry unreachable?): $(grep -m1 -E 'npm (error|ERR!) (code|network|[a-z])' "$work/npm.log" | cut -c1-120)"
  fi
fi
[[ -z $sdk_skip ]] || log "Agents SDK column skipped: $sdk_skip"

# ---- fake_openai --------------------------------------------------------------
start_fake_openai
url=http://127.0.0.1:$port/v1
log "fake_openai listening on 127.0.0.1:$port"

# ---- swarmfs --------------------------------------------------------------------
state=$(mktemp -d "${MODEL_BENCH_STATE_DIR:-$work}/swarmfs-model-bench-state.XXXXXX")
cat >"$work/swarm.json" <<EOF
{
  "providers": {
    "fake": {"base_url": "$url", "api_key_env": "SWARMFS_MODEL_BENCH_KEY", "max_retries": 0}
  },
  "tools": {
    "lookup_ticket": {
      "exec": ["$here/lookup_ticket.sh"], "read": ["$here"],
      "description": "Look up a support ticket by its id.",
      "parameters": {"type": "object", "properties": {"id": {"type": "integer"}},
                     "required": ["id"], "additionalProperties": false},
      "timeout": 30
    }
  },
  "agents": {
    "support": {"provider": "fake", "model": "fake-model", "tools": ["lookup_ticket"],
                "instructions": "You are support. Answer briefly; look tickets up with lookup_ticket."},
    "sales": {"provider": "fake", "model": "fake-model", "handoffs": ["support"],
              "instructions": "You are sales. Hand support questions to support."}
  }
}
EOF
log "mounting swarmfs on $mnt"
swarmfs_env=(SWARMFS_MODEL_BENCH_KEY=sk-swarmfs-bench)
mount_swarmfs "$mnt" "$state" "$work/swarm.json" "$work/swarmfs.log" || exit 1

# ---- measure --------------------------------------------------------------------
log "swarmfs side: $samples samples (+$warmup warm-up) of a, b, c, d"
run_bg timeout 600 "$bench" run --url "$url" --mnt "$mnt" --out "$work/ours.json" \
  --body-out "$work/body.json" --samples "$samples" --warmup "$warmup"

sdk_note=''
if [[ -z $sdk_skip ]]; then
  log "Agents SDK side: $samples samples (+$warmup warm-up) of a, b, c, d"
  if ! run_bg timeout 600 node "$here/sdk_bench.mjs" --url "$url" --out "$work/sdk.json" \
        --body "$work/body.json" --samples "$samples" --warmup "$warmup"; then
    # The fake refuses what the real API would refuse; if the SDK's requests
    # were refused, run it again on a --lenient server and say so.
    if grep -q '"skipped":"the SDK run failed: 400' "$work/sdk.json" 2>/dev/null; then
      sdk_note=$(sed -n 's/.*"skipped":"\([^"]*\)".*/\1/p' "$work/sdk.json")
      log "the SDK's requests failed fake_openai's strict checks; again with --lenient"
      stop_fake_openai
      start_fake_openai --lenient
      url=http://127.0.0.1:$port/v1
      run_bg timeout 600 node "$here/sdk_bench.mjs" --url "$url" --out "$work/sdk.json" \
        --body "$work/body.json" --samples "$samples" --warmup "$warmup" || true
    fi
  fi
else
  printf '{"skipped": "%s"}\n' "${sdk_skip//\"/\'}" >"$work/sdk.json"
fi

# ---- report ---------------------------------------------------------------------
echo
bench_header "swarmfs model-agent overhead"
echo "state (SQLite log, fsync per commit) on $(df --output=fstype "$state" | tail -n 1 | tr -d ' '); fake_openai echo model, no latency"
echo
"$bench" report --ours "$work/ours.json" --sdk "$work/sdk.json"
if [[ -n $sdk_note ]]; then
  echo "note: the SDK column ran against fake_openai --lenient; with the strict checks: $sdk_note"
fi
if grep -q '"client":"openai-agents-js"' "$work/sdk.json" 2>/dev/null; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  ((node_major >= 22)) ||
    echo "note: the openai package (a dependency of @openai/agents) declares node >= 22; this ran on node $(node -v)"
  echo "note: the SDK's tool runs the same lookup_ticket.sh through child_process.spawn, as swarmfs's exec tool does"
fi
