#!/usr/bin/env bash
# Runs the anthropic SDK end-to-end check: three upstream-sims, the router, then e2e.py; then the
# openai SDK against upstream-sim's OpenAI mode (openai_sim.sh, sims of its own), and against the
# router's /v1/chat/completions with OpenAI-compatible upstreams (openai_router.sh).
# Usage: Tests/sdk/run.sh SWITCHYARD_BINARY PYTHON
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
python="$2"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" upstream-sim --listen 127.0.0.1:18091 --name a 2>"$work/sim-a.log" & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:18092 --name b 2>"$work/sim-b.log" & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:18093 --name c --script '529*' 2>"$work/sim-c.log" & pids+=($!)
# Bedrock mode checks SigV4 signatures made with these test keys; Vertex mode checks bearer tokens
# (the fixed one for the SDK's AnthropicVertex, and those its own metadata server issues).
aws_key=AKIAE2ETEST000000001
aws_secret=e2e/secret+for-upstream-sim-0000000000
vertex_token=ya29.e2e-fixed-token
SIM_AWS_SECRET_ACCESS_KEY=$aws_secret "$bin" upstream-sim --listen 127.0.0.1:18094 --name bedrock --platform bedrock \
    --aws-access-key-id "$aws_key" 2>"$work/sim-bedrock.log" & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:18096 --name d --script 'sse-error(5,overloaded_error)*' 2>"$work/sim-d.log" & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:18095 --name vertex --platform vertex --accept-token "$vertex_token" 2>"$work/sim-vertex.log" & pids+=($!)
(cd "$work" && SIM_API_KEY=sk-ant-sim-e2e-0000000000 AWS_ACCESS_KEY_ID=$aws_key AWS_SECRET_ACCESS_KEY=$aws_secret \
    GCE_METADATA_HOST=127.0.0.1:18095 exec "$bin" serve --config "$here/routes.yaml" >"$work/audit.log" 2>"$work/router.log") & pids+=($!)

for _ in $(seq 1 100); do
    if curl -fsS http://127.0.0.1:18090/readyz >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS http://127.0.0.1:18090/readyz >/dev/null || { echo "router did not become ready"; cat "$work/router.log"; exit 1; }
for port in 18094 18095; do
    for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done

status=0
"$python" "$here/e2e.py" http://127.0.0.1:18090 || status=$?
"$python" "$here/platforms.py" http://127.0.0.1:18090 http://127.0.0.1:18094 http://127.0.0.1:18095 "$aws_key" "$aws_secret" "$vertex_token" \
    | tee "$work/platforms.out" || status=$?
"$python" "$here/recovery.py" http://127.0.0.1:18090 | tee "$work/recovery.out" || status=$?
"$python" "$here/batches.py" http://127.0.0.1:18090 || status=$?
"$here/openai_sim.sh" "$bin" "$python" || status=$?
"$here/openai_router.sh" "$bin" "$python" || status=$?
platform_requests=$(( $(sed -n 's/^ROUTED //p' "$work/platforms.out") + $(sed -n 's/^ROUTED //p' "$work/recovery.out") ))
sleep 0.3
# Batch requests have their own lines (with batch_id); count the callers' requests.
requests=$(grep '"event":"request"' "$work/audit.log" | grep -vc '"batch_id"' || true)
echo "audit log: $requests request lines"
# e2e.py makes 9 routed requests (models.list is not a routed request), platforms.py and
# recovery.py the numbers they print: exactly one line each.
expected=$((9 + ${platform_requests:-0}))
if [ "$requests" -ne "$expected" ]; then echo "FAIL expected $expected request lines in the audit log"; status=1; fi
if grep -q "$aws_secret" "$work/audit.log" "$work/router.log"; then echo "FAIL the AWS secret appears in a log"; status=1; fi
if [ "$status" -ne 0 ]; then
    echo "--- router log"; cat "$work/router.log"; echo "--- audit log"; cat "$work/audit.log"
fi
exit "$status"
