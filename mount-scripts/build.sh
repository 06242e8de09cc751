#!/usr/bin/env bash
# Configure and build swarmfs.
#   mount-scripts/build.sh [BUILD_TYPE] [BUILD_DIR]
# BUILD_TYPE: RelWithDebInfo (default), Debug, Release, Asan, Tsan.
# BUILD_DIR:  build/ (default), relative to the repository root or absolute.
# Extra cmake configure arguments can be passed in $CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."

type=${1:-RelWithDebInfo}
dir=${2:-build}
jobs=${JOBS:-$(nproc)}

# shellcheck disable=SC2086  # CMAKE_ARGS is deliberately word-split
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$dir" -j"$jobs"
