#!/usr/bin/env bash
# swarmfs demo: install dependencies, build, mount the example swarm and show
# a short session with nothing but the shell's own tools.
#
#   mount-scripts/demo.sh [MNT]
#
# MNT (default ./mnt, or $SWARMFS_MNT) is where the swarm appears; its state
# (the SQLite log) lives in ./state (or $SWARMFS_STATE). The demo starts from
# a fresh state each run (set SWARMFS_KEEP_STATE=1 to keep the old one).
# The swarm stays mounted afterwards; mount-scripts/umount.sh MNT removes it.
set -euo pipefail

caller=$PWD
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

# Paths given by the user are relative to where they ran the demo.
abspath() { case $1 in /*) echo "$1" ;; *) echo "$caller/$1" ;; esac; }
mnt=${1:-${SWARMFS_MNT:-}}
state=${SWARMFS_STATE:-}
if [[ -n $mnt ]]; then mnt=$(abspath "$mnt"); else mnt=mnt; fi
if [[ -n $state ]]; then state=$(abspath "$state"); else state=state; fi
# Show paths under the repository relative to it: "mnt/agents/..." reads better.
mnt=${mnt#"$root"/}
state=${state#"$root"/}
builddir=${SWARMFS_BUILD_DIR:-build}
config=mount-scripts/example-swarm.json

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[[ -t 1 ]] || bold='' dim='' off=''
say() { printf '\n%s# %s%s\n' "$dim" "$*" "$off"; }
# show CMD [AS]: print CMD as typed at a prompt, then run it (or AS, the same
# with cosmetic changes), for 30 s ($limit) at most: a misbehaving stream can
# never hang the demo.
show() {
  printf '%s$ %s%s\n' "$bold" "$1" "$off"
  if ! timeout "${limit:-30}" bash -c "${2:-$1}"; then
    echo "demo: command failed: $1" >&2
    echo "demo: the swarm is still mounted at $mnt; mount-scripts/umount.sh $mnt removes it" >&2
    exit 1
  fi
}

echo "== installing dependencies (only the missing ones)"
bash mount-scripts/install-deps.sh
echo "== building ($builddir/)"
bash mount-scripts/build.sh RelWithDebInfo "$builddir" >"${TMPDIR:-/tmp}/swarmfs-demo-build.log" 2>&1 || {
  tail -n 40 "${TMPDIR:-/tmp}/swarmfs-demo-build.log" >&2
  echo "demo: build failed (full log: ${TMPDIR:-/tmp}/swarmfs-demo-build.log)" >&2
  exit 1
}
echo "   built $builddir/swarmfs"

echo "== mounting the example swarm at $mnt (state in $state)"
bash mount-scripts/umount.sh -q "$mnt"
if [[ ${SWARMFS_KEEP_STATE:-0} != 1 ]]; then
  rm -f "$state"/swarm.db "$state"/swarm.db-wal "$state"/swarm.db-shm
fi
mkdir -p "$mnt" "$state"
printf '%s$ %s%s\n' "$bold" "$builddir/swarmfs $mnt --state $state --config $config" "$off"
"$builddir/swarmfs" "$mnt" --state "$state" --config "$config"

export mnt
say "The swarm is a file tree."
show "ls $mnt $mnt/agents"

say "An agent takes one message per open..close of its inbox; close returns once it is on disk."
show "echo hello > $mnt/agents/upper/inbox"
say "Its output is a stream: cat waits while the agent works and ends when it is idle."
show "cat $mnt/agents/upper/output"
show "echo 'files are the interface to the swarm' > $mnt/agents/wc/inbox"
show "cat $mnt/agents/wc/output"
show "cat $mnt/agents/upper/status"

say "Whole-swarm views: one line per agent, and a summary."
show "cat $mnt/ctl"
show "cat $mnt/status"

say "A conversation: open conv/clone to get a number N, route conv/N to an agent, talk through in and out."
printf '%s$ %s%s\n' "$bold" "n=\$(cat $mnt/conv/clone); echo \$n" "$off"
n=$(timeout 10 cat "$mnt/conv/clone")
echo "$n"
export n
show "echo 'agent greeter' > $mnt/conv/\$n/ctl"
show "echo World > $mnt/conv/\$n/in"
show "cat $mnt/conv/\$n/out"
show "cat $mnt/conv/\$n/ctl"
show "cat $mnt/conv/\$n/context"

say "Tools are files too: a spec, and a query file (write the arguments, read the result on the same open file)."
show "ls $mnt/tools"
show "cat $mnt/tools/lookup_ticket/spec"
show "exec 3<>$mnt/tools/lookup_ticket/call; echo '{\"id\": 42}' >&3; cat <&3"

if [[ -n ${OPENAI_API_KEY:-} || -n ${OPENAI_BASE_URL:-} ]]; then
  say "Model agents, at ${OPENAI_BASE_URL:-https://api.openai.com/v1} (model ${OPENAI_MODEL:-gpt-4o-mini}):"
  say "sales answers about prices and hands technical problems to support, who knows the conversation and uses lookup_ticket."
  printf '%s$ %s%s\n' "$bold" "m=\$(cat $mnt/conv/clone); echo 'agent sales' > $mnt/conv/\$m/ctl" "$off"
  m=$(timeout 10 cat "$mnt/conv/clone")
  echo "agent sales" >"$mnt/conv/$m/ctl"
  export m
  limit=180
  show "echo 'What does the Pro plan cost?' > $mnt/conv/\$m/in; cat $mnt/conv/\$m/out"
  show "echo 'My API integration returns 401 since yesterday. My ticket is 42.' > $mnt/conv/\$m/in; cat $mnt/conv/\$m/out"
  limit=30
  show "cat $mnt/conv/\$m/agent"
  show "cat $mnt/conv/\$m/ctl"
  say "The whole transcript, one JSON object per line: both agents, the handoff, the tool call."
  show "cat $mnt/conv/\$m/context"
  show "tail -n 3 $mnt/agents/sales/err $mnt/agents/support/err"
else
  say "No model is configured, so the model agents (sales, support) are idle. To talk to one, set"
  say "  OPENAI_API_KEY (OpenAI), or OPENAI_BASE_URL=http://127.0.0.1:11434/v1 OPENAI_MODEL=llama3.1 (Ollama;"
  say "  any OpenAI-compatible server: vLLM, llama.cpp, LM Studio), and run the demo again."
  say "Model agents and providers are declared in $config (see docs/config.md)."
fi

say "A new agent: mkdir, then write its config (validated when the file is closed)."
show "mkdir $mnt/agents/shout"
show "echo '{\"exec\": [\"sed\", \"s/\$/!!!/\"], \"instructions\": \"Add emphasis.\"}' > $mnt/agents/shout/config"
show "echo 'plan 9 was right' | tr a-z A-Z > $mnt/agents/shout/inbox"
show "cat $mnt/agents/shout/output"

say "A bad config is refused with EINVAL (echo reports it), a line in err, and the old config stays."
show "echo '{\"exec\": 42}' > $mnt/agents/shout/config || echo \"refused (exit status \$?)\""
show "tail -n 1 $mnt/agents/shout/err"
show "cat $mnt/agents/shout/config"

say "Everything above is in the event log (one JSON object per line; log never ends, so head -n)."
# (head tries to seek back over what it read past line 5; log is a stream and
# cannot seek, which head reports on stderr. Harmless: filtered out here.)
show "head -n 5 $mnt/log" "set -o pipefail; { head -n 5 $mnt/log 2>&1 1>&3 | { grep -v 'cannot seek' >&2 || true; }; } 3>&1"

# The way out: commands to try, each under a comment.
hints=(
  "the agents" "ls $mnt/agents"
  "an agent's definition" "cat $mnt/agents/rev/config"
  "a message and its reply" "echo stressed > $mnt/agents/rev/inbox; cat $mnt/agents/rev/output"
  "a tiny client over the same files" "SWARMFS_MNT=$mnt mount-scripts/swarm ask greeter Ada"
  "a conversation with a model agent (needs OPENAI_API_KEY or OPENAI_BASE_URL set before mounting)" "n=\$(cat $mnt/conv/clone); echo 'agent sales' > $mnt/conv/\$n/ctl; echo 'Hi, what plans do you have?' > $mnt/conv/\$n/in; cat $mnt/conv/\$n/out"
  "follow events as they happen (Ctrl-C ends it)" "tail -f $mnt/log"
)
printf '\n%sThe swarm is still mounted at %s.%s Explore it:\n' "$bold" "$mnt" "$off"
for ((i = 0; i < ${#hints[@]}; i += 2)); do
  printf '  %s# %s%s\n  %s\n' "$dim" "${hints[i]}" "$off" "${hints[i + 1]}"
done
printf 'Unmount it with:\n  mount-scripts/umount.sh %s    %s# or: fusermount3 -u %s%s\n' "$mnt" "$dim" "$mnt" "$off"
