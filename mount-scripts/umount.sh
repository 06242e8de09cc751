#!/usr/bin/env bash
# Unmount a swarm: mount-scripts/umount.sh [-q] MNT
# Tries a clean unmount, then a lazy one (-z) if the mount is busy or stale.
# Does nothing (successfully) when nothing is mounted at MNT; -q: say nothing then.
set -uo pipefail
quiet=0
[[ ${1:-} == -q ]] && { quiet=1; shift; }
if (($# != 1)); then
  echo "usage: $0 [-q] MNT" >&2
  exit 2
fi
mnt=$1
# Absolute path without stat()ing MNT itself: a dead FUSE mount fails stat.
parent=$(cd "$(dirname "$mnt")" 2>/dev/null && pwd -P) || {
  ((quiet)) || echo "umount.sh: $mnt is not mounted"
  exit 0
}
abs=$parent/$(basename "$mnt")
abs=${abs//\/\//\/}
# /proc/mounts escapes spaces in paths as \040.
if ! awk -v m="${abs// /\\040}" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; then
  ((quiet)) || echo "umount.sh: $mnt is not mounted"
  exit 0
fi
fusermount3 -u "$abs" 2>/dev/null && exit 0
((quiet)) || echo "umount.sh: $mnt busy or stale; unmounting lazily" >&2
fusermount3 -u -z "$abs" 2>/dev/null && exit 0
# Last resort as root (for example a mount left by another user).
if [[ $(id -u) -eq 0 ]]; then
  umount -l "$abs" && exit 0
fi
echo "umount.sh: could not unmount $mnt" >&2
exit 1
