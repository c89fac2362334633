#!/usr/bin/env bash
# Runs the openai SDK check: two `upstream-sim --platform openai` on free loopback ports (one
# checking an API key, one following openai_sim.py's fault script), then openai_sim.py.
# Usage: Tests/sdk/openai_sim.sh SWITCHYARD_BINARY PYTHON
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

key=sk-sim-openai-0000000000
"$bin" upstream-sim --listen 127.0.0.1:0 --name openai --platform openai --api-key "$key" 2>"$work/sim.log" & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:0 --name openai-faults --platform openai \
    --script "$("$python" "$here/openai_sim.py" --fault-script)" 2>"$work/faults.log" & pids+=($!)

# Port 0: each sim picks a free port and names it in its first log line.
port_of() {
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$1")
        if [ -n "$port" ]; then echo "$port"; return 0; fi
        sleep 0.1
    done
    echo "no port in $1:" >&2; cat "$1" >&2; return 1
}
sim_port=$(port_of "$work/sim.log")
fault_port=$(port_of "$work/faults.log")

"$python" "$here/openai_sim.py" "http://127.0.0.1:$sim_port" "http://127.0.0.1:$fault_port" "$key"
