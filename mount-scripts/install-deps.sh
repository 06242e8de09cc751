#!/usr/bin/env bash
# Install the Debian packages swarmfs needs to build, test and run.
# Idempotent: installs only what is missing, and is silent when nothing is.
# Works without a terminal (CI): DEBIAN_FRONTEND=noninteractive, no prompts.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libfuse3-dev fuse3
  libsqlite3-dev sqlite3
  nlohmann-json3-dev libspdlog-dev libcurl4-openssl-dev
  libgtest-dev googletest
  bubblewrap
  vim-tiny      # the editor tests drive vim
  procps psmisc
)

missing=()
for p in "${PACKAGES[@]}"; do
  # "install ok installed" only; a removed-but-configured package is missing.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)   # -n: never prompt; fail instead (no stdin in CI)
  else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: not root and no sudo; install them and rerun" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@" </dev/null >>"$log" 2>&1 || {
    cat "$log" >&2
    echo "install-deps: apt-get $1 failed" >&2
    exit 1
  }
}
apt update -q
apt install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
echo "install-deps: done"
