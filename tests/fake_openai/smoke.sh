#!/usr/bin/env bash
# Smoke test of fake_openai with curl. Usage: smoke.sh [path/to/fake_openai]
# Exits non-zero on the first mismatch.
set -u

BIN=${1:-$(dirname "$0")/../../build/tests/fake_openai/fake_openai}
[ -x "$BIN" ] || { echo "FAIL: no fake_openai binary at $BIN" >&2; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl not installed" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
pass() { echo "ok   $*"; }

# start NAME ARGS...: starts a server, sets PORT_NAME and PID_NAME.
start() {
    local name=$1
    shift
    "$BIN" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        grep -q '^listening ' "$TMP/$name.out" 2>/dev/null && break
        sleep 0.05
    done
    local line
    line=$(cat "$TMP/$name.out")
    [[ $line =~ ^listening\ 127\.0\.0\.1:([0-9]+)$ ]] || fail "$name: no listening line: '$line'"
    printf -v "PORT_$name" '%s' "${BASH_REMATCH[1]}"
    printf -v "PID_$name" '%s' "$pid"
}

# has TEXT FIXED-STRING WHAT
has() { grep -qF -- "$2" <<<"$1" || fail "$3: expected '$2' in: $1"; }
hasnt() { ! grep -qF -- "$2" <<<"$1" || fail "$3: did not expect '$2' in: $1"; }
eq() { [ "$1" == "$2" ] || fail "$3: expected '$2', got '$1'"; }

start main --log "$TMP/requests.log"
U="http://127.0.0.1:$PORT_main"
CHAT="$U/v1/chat/completions"

# chat BODY [curl args]: body of a chat response on stdout.
chat() {
    local body=$1
    shift
    curl -sS -N "$@" -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-test' \
        --data-binary "$body" "$CHAT"
}
user_msg() { printf '{"model":"fake","messages":[{"role":"user","content":"%s"}]%s}' "$1" "${2:-}"; }
# Content deltas of a stream, joined.
deltas() { grep -o '"delta":{"content":"[^"]*"' | sed 's/.*"content":"//; s/"$//' | tr -d '\n'; }

# Health.
eq "$(curl -sS "$U/_health")" "ok" "health"
pass "health"

# Non-streaming echo.
out=$(chat "$(user_msg '  hello world  ')")
has "$out" '"object":"chat.completion"' "non-stream"
has "$out" '"message":{"role":"assistant","content":"echo: hello world"}' "non-stream"
has "$out" '"finish_reason":"stop"' "non-stream"
has "$out" '"usage":{"prompt_tokens":4,"completion_tokens":5,"total_tokens":9}' "non-stream usage"
pass "non-streaming echo"

# Streaming echo with usage.
out=$(chat "$(user_msg 'hello streaming world' ',"stream":true,"stream_options":{"include_usage":true}')" \
    -D "$TMP/headers")
headers=$(tr -d '\r' <"$TMP/headers")
has "$headers" "Content-Type: text/event-stream" "stream headers"
has "$headers" "Transfer-Encoding: chunked" "stream headers"
eq "$(grep -c '^data: ' <<<"$out")" 9 "stream event count"
eq "$(grep '^data: ' <<<"$out" | tail -1)" "data: [DONE]" "stream end"
eq "$(head -1 <<<"$out" | grep -o '"delta":{[^}]*}')" '"delta":{"role":"assistant","content":""}' \
    "first delta"
eq "$(deltas <<<"$out")" "echo: hello streaming world" "stream content"
has "$out" '"delta":{},"finish_reason":"stop"' "stream finish"
has "$out" '"choices":[],"usage":{"prompt_tokens":6,"completion_tokens":7,"total_tokens":13}' \
    "stream usage"
out=$(chat "$(user_msg 'no usage' ',"stream":true')")
hasnt "$out" '"usage"' "stream without include_usage"
pass "streaming echo"

# Events arrive one by one, not at the end.
curl -sS -XPOST "$U/_script" -d '[{"chunk_delay_ms":150}]' >/dev/null
chat "$(user_msg 'one two three four' ',"stream":true')" | while IFS= read -r line; do
    [ -n "$line" ] && echo "$(date +%s%N) $line"
done >"$TMP/timed"
first=$(head -1 "$TMP/timed" | cut -d' ' -f1)
last=$(tail -1 "$TMP/timed" | cut -d' ' -f1)
(((last - first) / 1000000 >= 600)) || fail "chunk_delay_ms: events not spread out: $(cat "$TMP/timed")"
pass "events are flushed one at a time"

# Markers: [system], [count].
out=$(chat '{"model":"fake","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"[system]"}]}')
has "$out" '"content":"system: be brief"' "[system]"
out=$(chat '{"model":"fake","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"[count]"}]}')
has "$out" '"content":"messages: 3"' "[count]"
pass "[system] and [count]"

# Tool calls, non-streaming: two parallel calls.
out=$(chat "$(user_msg 'go [tool:lookup {\"q\": \"x\"}] [tool:now]')")
has "$out" '"content":null,"tool_calls":[{"id":"call_' "tool call"
has "$out" '"type":"function","function":{"name":"lookup","arguments":"{\"q\": \"x\"}"}}' "tool call"
has "$out" '"function":{"name":"now","arguments":"{}"}' "second tool call"
has "$out" '"finish_reason":"tool_calls"' "tool call finish"
pass "non-streaming tool calls"

# Tool calls, streaming: index, id, name first; arguments in >= 2 fragments.
out=$(chat "$(user_msg '[tool:lookup {\"q\": \"x\"}] [tool:now]' ',"stream":true')")
has "$out" '"delta":{"role":"assistant","content":null}' "stream tool call role"
has "$out" '"delta":{"tool_calls":[{"index":0,"id":"call_' "stream tool call head"
has "$out" '"type":"function","function":{"name":"lookup","arguments":""}}]}' "stream tool call head"
has "$out" '"delta":{"tool_calls":[{"index":1,"id":"call_' "second stream tool call"
frags=$(grep -c '"delta":{"tool_calls":\[{"index":0,"function":{"arguments":' <<<"$out")
((frags >= 2)) || fail "stream tool call: $frags argument fragments"
args=$(grep '"delta":{"tool_calls":\[{"index":0,"function"' <<<"$out" |
    sed 's/.*"function":{"arguments":"\(.*\)"}}\]},"finish_reason".*/\1/' | tr -d '\n' | sed 's/\\"/"/g')
eq "$args" '{"q": "x"}' "stream tool call arguments"
has "$out" '"delta":{},"finish_reason":"tool_calls"' "stream tool call finish"
eq "$(grep '^data: ' <<<"$out" | tail -1)" "data: [DONE]" "stream tool call end"
pass "streaming tool calls"

# Handoff: only when transfer_to_NAME is offered.
TOOLS='"tools":[{"type":"function","function":{"name":"transfer_to_bob","description":"hand off","parameters":{"type":"object","properties":{}}}}]'
out=$(chat "{\"model\":\"fake\",$TOOLS,\"messages\":[{\"role\":\"user\",\"content\":\"[handoff:bob]\"}]}")
has "$out" '"function":{"name":"transfer_to_bob","arguments":"{}"}' "handoff"
out=$(chat "$(user_msg '[handoff:carol]')")
has "$out" '"content":"no tool transfer_to_carol offered"' "handoff not offered"
pass "handoff"

# Tool results.
out=$(chat '{"model":"fake","messages":[{"role":"user","content":"ls"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"ls","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"a.txt"}]}')
has "$out" '"content":"tool ls said: a.txt"' "tool result"
out=$(chat '{"model":"fake","messages":[{"role":"user","content":"ls"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"ls","arguments":"{}"}}]},{"role":"user","content":"x"}]}' \
    -o /dev/null -w '%{http_code}')
eq "$out" 400 "unanswered tool call"
pass "tool results"

# Scripted 429 with Retry-After, then 500, then a targeted reply.
curl -sS -XPOST "$U/_script" -d '[{"status":429,"retry_after":1},{"match":"target","reply":"hit"},{"status":500}]' >/dev/null
code=$(chat "$(user_msg 'first')" -D "$TMP/h429" -o "$TMP/b429" -w '%{http_code}')
eq "$code" 429 "429 status"
has "$(tr -d '\r' <"$TMP/h429")" "Retry-After: 1" "429 Retry-After"
has "$(cat "$TMP/b429")" '"type":"rate_limit_error"' "429 body"
code=$(chat "$(user_msg 'second')" -o "$TMP/b500" -w '%{http_code}')
eq "$code" 500 "500 status (targeted step skipped)"
has "$(cat "$TMP/b500")" '"type":"server_error"' "500 body"
out=$(chat "$(user_msg 'the target')")
has "$out" '"content":"hit"' "targeted step"
out=$(chat "$(user_msg 'after')")
has "$out" '"content":"echo: after"' "queue empty again"
pass "429, 500, match"

# Scripted reply with tool calls, drop, malformed, stall.
curl -sS -XPOST "$U/_script" -d '{"tool_calls":[{"name":"f","arguments":{"a":1}},{"name":"g","arguments":"raw{"}]}' >/dev/null
out=$(chat "$(user_msg 'x')")
has "$out" '"function":{"name":"f","arguments":"{\"a\":1}"}' "scripted tool_calls"
has "$out" '"function":{"name":"g","arguments":"raw{"}' "scripted raw arguments"
curl -sS -XPOST "$U/_script" -d '[{"drop_after_chunks":2},{"malformed":true},{"stall_ms":300}]' >/dev/null
out=$(chat "$(user_msg 'drop me now' ',"stream":true')" 2>/dev/null)
rc=$?
((rc != 0)) || fail "drop: curl succeeded"
eq "$(grep -c '^data: ' <<<"$out")" 2 "drop events"
hasnt "$out" "[DONE]" "drop"
out=$(chat "$(user_msg 'bad' ',"stream":true')")
eq "$(grep '^data: ' <<<"$out" | sed -n 2p)" "data: {not json" "malformed second event"
eq "$(grep '^data: ' <<<"$out" | tail -1)" "data: [DONE]" "malformed end"
start_ns=$(date +%s%N)
chat "$(user_msg 'stall')" >/dev/null 2>&1 && fail "stall: curl succeeded"
(($(date +%s%N) - start_ns >= 280000000)) || fail "stall: closed too early"
pass "scripted tool_calls, drop, malformed, stall"

# Bad JSON, unknown path.
eq "$(curl -sS -o /dev/null -w '%{http_code}' --data-binary '{nope' "$CHAT")" 400 "bad JSON"
eq "$(curl -sS -o /dev/null -w '%{http_code}' "$U/v2/nothing")" 404 "unknown path"
pass "400 and 404"

# 16 concurrent streaming clients, each gets its own echo. One client alone
# first, to compare with: served one after another, 16 would take 16 times
# as long. (A ratio, not a wall-clock bound: the machine may be loaded.)
steps=$(printf '{"chunk_delay_ms":150},%.0s' $(seq 17))
curl -sS -XPOST "$U/_script" -d "[${steps%,}]" >/dev/null
solo_start=$(date +%s%N)
chat "$(user_msg "client number 0" ',"stream":true')" >"$TMP/c0"
solo=$((($(date +%s%N) - solo_start) / 1000000))
eq "$(deltas <"$TMP/c0")" "echo: client number 0" "the client alone"
wait_start=$(date +%s%N)
clients=()
for i in $(seq 16); do
    chat "$(user_msg "client number $i" ',"stream":true')" >"$TMP/c$i" &
    clients+=($!)
done
for p in "${clients[@]}"; do wait "$p" || fail "concurrent client exited non-zero"; done
for i in $(seq 16); do
    eq "$(deltas <"$TMP/c$i")" "echo: client number $i" "concurrent client $i"
    eq "$(grep '^data: ' "$TMP/c$i" | tail -1)" "data: [DONE]" "concurrent client $i end"
done
elapsed=$((($(date +%s%N) - wait_start) / 1000000))
((elapsed < 8 * solo)) || fail "16 clients took ${elapsed} ms, one alone ${solo} ms: not concurrent?"
pass "16 concurrent streams (${elapsed} ms; one alone ${solo} ms)"

# /_requests records bodies with lowercased headers; DELETE clears.
reqs=$(curl -sS "$U/_requests")
has "$reqs" '"path":"/v1/chat/completions"' "_requests"
has "$reqs" '"authorization":"Bearer sk-test"' "_requests headers"
has "$reqs" '"content":"  hello world  "' "_requests body"
has "$reqs" '"step":{"retry_after":1,"status":429}' "_requests step"
hasnt "$reqs" '"path":"/_' "_requests skips control paths"
grep -q '^{"n":1,' <<<"$reqs" || fail "_requests: first record is not n 1"
curl -sS -XDELETE "$U/_requests" >/dev/null
chat "$(user_msg 'only')" >/dev/null
eq "$(curl -sS "$U/_requests" | wc -l)" 1 "_requests after DELETE"
curl -sS -XPOST "$U/_script" -d '[{"reply":"never"}]' >/dev/null
curl -sS -XDELETE "$U/_script" >/dev/null
has "$(chat "$(user_msg 'cleared')")" '"content":"echo: cleared"' "DELETE /_script"
eq "$(curl -sS -o /dev/null -w '%{http_code}' -XPOST "$U/_script" -d '[{"stall":1}]')" 400 \
    "unknown step key"
pass "/_requests and /_script"

grep -q '^POST /v1/chat/completions 429' "$TMP/requests.log" || fail "--log: no 429 line"
pass "--log"

# SIGTERM exits 0.
kill -TERM "$PID_main"
wait "$PID_main"
eq "$?" 0 "exit status after SIGTERM"
pass "SIGTERM"

# --require-key.
start auth --require-key sk-right
U="http://127.0.0.1:$PORT_auth"
CHAT="$U/v1/chat/completions"
code=$(chat "$(user_msg 'x')" -o "$TMP/b401" -w '%{http_code}')
eq "$code" 401 "wrong key"
has "$(cat "$TMP/b401")" '"code":"invalid_api_key"' "401 body"
code=$(curl -sS -o /dev/null -w '%{http_code}' --data-binary "$(user_msg 'x')" "$CHAT")
eq "$code" 401 "missing key"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sk-right' \
    --data-binary "$(user_msg 'x')" "$CHAT")
eq "$code" 200 "right key"
kill -INT "$PID_auth"
wait "$PID_auth"
eq "$?" 0 "exit status after SIGINT"
pass "--require-key"

# --exit-on-stdin-eof.
mkfifo "$TMP/stdin"
"$BIN" --exit-on-stdin-eof <"$TMP/stdin" >"$TMP/eof.out" &
eof_pid=$!
PIDS+=("$eof_pid")
exec 9>"$TMP/stdin"
for _ in $(seq 100); do grep -q listening "$TMP/eof.out" && break; sleep 0.05; done
grep -q listening "$TMP/eof.out" || fail "--exit-on-stdin-eof: did not start"
exec 9>&-
for _ in $(seq 100); do kill -0 "$eof_pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$eof_pid" 2>/dev/null && fail "--exit-on-stdin-eof: still running"
wait "$eof_pid"
eq "$?" 0 "exit status after stdin EOF"
pass "--exit-on-stdin-eof"

echo "all fake_openai smoke checks passed"
