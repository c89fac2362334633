#!/usr/bin/env bash
# Runs the anthropic SDK end-to-end check: three upstream-sims, the router, then e2e.py.
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
SIM_API_KEY=sk-ant-sim-e2e-0000000000 "$bin" serve --config "$here/routes.yaml" >"$work/audit.log" 2>"$work/router.log" & pids+=($!)

for _ in $(seq 1 100); do
    if curl -fsS http://127.0.0.1:18090/readyz >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS http://127.0.0.1:18090/readyz >/dev/null || { echo "router did not become ready"; cat "$work/router.log"; exit 1; }

status=0
"$python" "$here/e2e.py" http://127.0.0.1:18090 || status=$?
sleep 0.3
requests=$(grep -c '"event":"request"' "$work/audit.log" || true)
echo "audit log: $requests request lines"
# e2e.py makes 9 routed requests (models.list is not a routed request): exactly one line each.
if [ "$requests" -ne 9 ]; then echo "FAIL expected 9 request lines in the audit log"; status=1; fi
if [ "$status" -ne 0 ]; then
    echo "--- router log"; cat "$work/router.log"; echo "--- audit log"; cat "$work/audit.log"
fi
exit "$status"
