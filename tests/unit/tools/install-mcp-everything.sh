#!/bin/sh
# Installs the reference MCP server @modelcontextprotocol/server-everything
# from the npm registry into DIR (once; later runs reuse it) and prints the
# path of its entry point, which `node PATH` runs as a stdio MCP server.
# Exit status 1 with the reason on stderr if node/npm are missing or the
# registry cannot be reached; the tests then skip.
#
#   install-mcp-everything.sh DIR
#   SWARMFS_MCP_EVERYTHING_VERSION=2026.8.31 (default) picks the version.
set -u
dir=${1:?usage: install-mcp-everything.sh DIR}
version=${SWARMFS_MCP_EVERYTHING_VERSION:-2026.8.31}
pkg=@modelcontextprotocol/server-everything
entry=$dir/node_modules/$pkg/dist/index.js

command -v node >/dev/null 2>&1 || { echo "node is not installed" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "npm is not installed" >&2; exit 1; }
mkdir -p "$dir" || exit 1

installed() {
    [ -f "$entry" ] && grep -q "\"version\": *\"$version\"" "$dir/node_modules/$pkg/package.json" 2>/dev/null
}

# Tests run in parallel (ctest -j): one installs, the others wait for it.
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then flock -w 300 9; fi

if ! installed; then
    if ! timeout 240 npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
            "$pkg@$version" >"$dir/install.log" 2>&1 || ! installed; then
        echo "npm install $pkg@$version failed: $(grep -v 'Unknown user config' "$dir/install.log" | tail -n 5)" >&2
        exit 1
    fi
fi
echo "$entry"
