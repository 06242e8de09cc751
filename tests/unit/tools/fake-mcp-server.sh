#!/bin/sh
# A small MCP server (stdio, newline-delimited JSON-RPC) that misbehaves on
# request, for the client's edge cases. It understands only what swarmfs
# sends: nlohmann::json dumps objects with sorted keys and no spaces, so
#   {"id":3,"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{...},"name":"echo"}}
# is parsed with sed. POSIX sh and sed only.
#
# FAKE_MCP_MODE  normal | silent (never answers initialize) | die-at-start |
#                junk (a non-JSON line before every answer) | paged (tools/list
#                in two pages, with odd tool names and a $ref schema)
# FAKE_MCP_LOG   file: "start PID" per start, then every line received
#
# Tools: echo {message}; slow {message, delay} (answers after delay seconds,
# so answers come out of order); fail (isError); rpcerror (a JSON-RPC error);
# image (text plus an image item); die (exits 3 mid-call); hang (never
# answers); pingme (sends the client a ping request, then answers).
mode=${FAKE_MCP_MODE:-normal}
log=${FAKE_MCP_LOG:-/dev/null}
echo "start $$" >> "$log"
echo "fake mcp server $$ starting in mode $mode" >&2
if [ "$mode" = die-at-start ]; then
    echo "fake: cannot start: no config" >&2
    exit 1
fi

reply() { printf '{"jsonrpc":"2.0","id":%s,"result":%s}\n' "$1" "$2"; }
text() { reply "$1" "{\"content\":[{\"type\":\"text\",\"text\":\"$2\"}]}"; }

obj='"type":"object"'
msg_schema="{$obj,\"properties\":{\"message\":{\"type\":\"string\"}},\"required\":[\"message\"]}"
slow_schema="{$obj,\"properties\":{\"message\":{\"type\":\"string\"},\"delay\":{\"type\":\"number\",\"minimum\":0}},\"required\":[\"message\",\"delay\"]}"
none="{$obj,\"properties\":{}}"
tools="{\"name\":\"echo\",\"description\":\"Echo a message\",\"inputSchema\":$msg_schema},\
{\"name\":\"slow\",\"description\":\"Echo after a delay\",\"inputSchema\":$slow_schema},\
{\"name\":\"fail\",\"inputSchema\":$none},{\"name\":\"rpcerror\",\"inputSchema\":$none},\
{\"name\":\"image\",\"inputSchema\":$none},{\"name\":\"die\",\"inputSchema\":$none},\
{\"name\":\"hang\",\"inputSchema\":$none},{\"name\":\"pingme\",\"inputSchema\":$none}"
page2="{\"name\":\"my.dotted/tool\",\"description\":\"odd name\",\"inputSchema\":$none},\
{\"name\":\"refd\",\"inputSchema\":{$obj,\"properties\":{\"x\":{\"\$ref\":\"#/\$defs/X\"}},\"\$defs\":{\"X\":{\"type\":\"string\"}}}}"

while IFS= read -r line; do
    printf '%s\n' "$line" >> "$log"
    id=$(printf '%s\n' "$line" | sed -n 's/^{"id":\([0-9][0-9]*\),"jsonrpc":"2.0","method".*/\1/p')
    [ -n "$id" ] || continue  # notifications, and answers to our own requests
    method=$(printf '%s\n' "$line" | sed -n 's/^{"id":[0-9]*,"jsonrpc":"2.0","method":"\([^"]*\)".*/\1/p')
    [ "$mode" = junk ] && echo "this line is not JSON"
    case $method in
    initialize)
        [ "$mode" = silent ] && continue
        reply "$id" '{"protocolVersion":"2024-11-05","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"1.0"}}'
        ;;
    tools/list)
        if [ "$mode" != paged ]; then
            reply "$id" "{\"tools\":[$tools]}"
        elif printf '%s\n' "$line" | grep -q '"cursor":"page2"'; then
            reply "$id" "{\"tools\":[$page2]}"
        else
            reply "$id" "{\"tools\":[$tools],\"nextCursor\":\"page2\"}"
        fi
        ;;
    tools/call)
        name=$(printf '%s\n' "$line" | sed -n 's/.*,"name":"\([^"]*\)"}}$/\1/p')
        msg=$(printf '%s\n' "$line" | sed -n 's/.*"arguments":{[^}]*"message":"\([^"]*\)".*/\1/p')
        delay=$(printf '%s\n' "$line" | sed -n 's/.*"arguments":{[^}]*"delay":\([0-9.]*\).*/\1/p')
        case $name in
        echo) text "$id" "echo: $msg" ;;
        slow) (sleep "${delay:-0}"; text "$id" "slow: $msg") & ;;
        fail) reply "$id" '{"content":[{"type":"text","text":"it failed on purpose"}],"isError":true}' ;;
        rpcerror) printf '{"jsonrpc":"2.0","id":%s,"error":{"code":-32602,"message":"Unknown tool: rpcerror"}}\n' "$id" ;;
        image) reply "$id" '{"content":[{"type":"text","text":"here it is"},{"type":"image","data":"iVBORw0KGgo=","mimeType":"image/png"}]}' ;;
        die)
            echo "fake: dying mid-call" >&2
            exit 3
            ;;
        hang) ;;
        pingme)
            printf '{"jsonrpc":"2.0","id":"srv-1","method":"ping"}\n'
            text "$id" "pinged"
            ;;
        *) printf '{"jsonrpc":"2.0","id":%s,"error":{"code":-32602,"message":"Unknown tool: %s"}}\n' "$id" "$name" ;;
        esac
        ;;
    *) printf '{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"Method not found"}}\n' "$id" ;;
    esac
done
