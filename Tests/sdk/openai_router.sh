#!/usr/bin/env bash
# The official openai SDK against the router's /v1/chat/completions, and the anthropic SDK against
# a route whose Claude model fails over to an OpenAI-compatible one: two Anthropic-mode sims (one
# answering, one failing with 500), two OpenAI-mode sims (one checking its key, one out of quota),
# the router on openai_router.yaml, then openai_router.py; then the audit log is checked.
# Usage: Tests/sdk/openai_router.sh SWITCHYARD_BINARY PYTHON
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
python="$2"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

key=sk-sim-openai-router-0000000000
"$bin" upstream-sim --listen 127.0.0.1:0 --name claude 2>"$work/claude.log" & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:0 --name claude-down --script '500*' 2>"$work/claude-down.log" & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:0 --name gpt --platform openai --api-key "$key" 2>"$work/gpt.log" & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:0 --name gpt-broke --platform openai --script 'quota*' 2>"$work/gpt-broke.log" & pids+=($!)

port_of() {
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$1")
        if [ -n "$port" ]; then echo "$port"; return 0; fi
        sleep 0.1
    done
    echo "no port in $1:" >&2; cat "$1" >&2; return 1
}
sed -e "s/CLAUDE_PORT/$(port_of "$work/claude.log")/" -e "s/CLAUDE_DOWN_PORT/$(port_of "$work/claude-down.log")/" \
    -e "s/GPT_PORT/$(port_of "$work/gpt.log")/" -e "s/GPT_BROKE_PORT/$(port_of "$work/gpt-broke.log")/" \
    "$here/openai_router.yaml" >"$work/routes.yaml"
(cd "$work" && SIM_API_KEY=sk-ant-sim-e2e-0000000000 OPENAI_API_KEY=$key exec "$bin" serve --config "$work/routes.yaml" \
    >"$work/audit.log" 2>"$work/router.log") & pids+=($!)
for _ in $(seq 1 100); do
    if curl -fsS http://127.0.0.1:18190/readyz >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS http://127.0.0.1:18190/readyz >/dev/null || { echo "router did not become ready"; cat "$work/router.log"; exit 1; }

status=0
"$python" "$here/openai_router.py" http://127.0.0.1:18190 | tee "$work/out" || status=$?
sleep 0.3
chat=$(grep -c '"api":"chat_completions"' "$work/audit.log" || true)
translated=$(grep -c '"translated":true' "$work/audit.log" || true)
expected_chat=$(sed -n 's/^CHAT //p' "$work/out")
expected_translated=$(sed -n 's/^TRANSLATED //p' "$work/out")
echo "audit log: $chat chat_completions lines, $translated translated lines"
if [ "$chat" -ne "${expected_chat:-x}" ]; then echo "FAIL expected $expected_chat chat_completions lines"; status=1; fi
if [ "$translated" -ne "${expected_translated:-x}" ]; then echo "FAIL expected $expected_translated translated lines"; status=1; fi
if grep -q "$key" "$work/audit.log" "$work/router.log"; then echo "FAIL the OpenAI key appears in a log"; status=1; fi
if [ "$status" -ne 0 ]; then
    echo "--- router log"; cat "$work/router.log"; echo "--- audit log"; cat "$work/audit.log"
fi
exit $status
