#!/usr/bin/env bash
# Mount a swarm.
#   mount-scripts/mount.sh MNT STATE [CONFIG]
# Creates MNT and STATE if needed, unmounts a stale mount at MNT, then starts
# build/swarmfs (or $SWARMFS_BIN), which detaches once the mount is ready.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

if (($# < 2 || $# > 3)); then
  echo "usage: $0 MNT STATE [CONFIG]" >&2
  exit 2
fi
mnt=$1 state=$2 config=${3:-}
bin=${SWARMFS_BIN:-$root/build/swarmfs}

if [[ ! -x $bin ]]; then
  echo "mount.sh: $bin not found; run mount-scripts/build.sh first" >&2
  exit 1
fi

# Something already mounted there (a previous swarm, or a stale mount whose
# server died and which now answers ENOTCONN): unmount it first.
"$here/umount.sh" -q "$mnt"
mkdir -p "$mnt" "$state"

# Absolute paths: the server detaches and need not stay in this directory.
mnt=$(cd "$mnt" && pwd -P)
state=$(cd "$state" && pwd -P)
args=("$mnt" --state "$state")
if [[ -n $config ]]; then
  config=$(cd "$(dirname "$config")" && pwd -P)/$(basename "$config")
  args+=(--config "$config")
fi
"$bin" "${args[@]}"
