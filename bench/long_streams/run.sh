#!/usr/bin/env bash
# The transport under real LLM load (not a timed test; figures go to bench/README.md):
#   1. 2,000 concurrent 30-second streams through a configuration with every transport setting
#      at its default (max_connections 1024, queue_timeout 5s): two providers, as a route with
#      the same model on two platforms has. Expect 0 caller errors, 0 breaker transitions, RSS
#      within 256 MB.
#   2. Saturation: the same streams against max_connections 50 per provider: capacity attempts
#      move requests on, no breaker opens, and 529 only for requests no model could take.
# usage: bash bench/long_streams/run.sh [STREAMS] [SATURATION_STREAMS]
set -euo pipefail
cd "$(dirname "$0")/../.."
STREAMS=${1:-2000}
SATURATION=${2:-300}
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true

echo "== building switchyard (release)"
swift build -c release --product switchyard 2>&1 | tail -1
bin="$(swift build -c release --show-bin-path)/switchyard"
SIM_A=19301 SIM_B=19302 ROUTER=19303

config() { # $1: extra provider keys
    cat <<YAML
version: 1
server: { listen: 127.0.0.1:$ROUTER }
providers:
  anthropic: { type: anthropic, base_url: "http://127.0.0.1:$SIM_A", api_key_env: BENCH_KEY $1 }
  anthropic-2: { type: anthropic, base_url: "http://127.0.0.1:$SIM_B", api_key_env: BENCH_KEY $1 }
models:
  sonnet: { provider: anthropic, model: claude-sonnet-4-5 }
  sonnet-2: { provider: anthropic-2, model: claude-sonnet-4-5 }
routes:
  default: { models: [sonnet, sonnet-2] }
logging: { audit: $work/audit.jsonl }
YAML
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

drill() { # $1: name, $2: streams, $3: extra provider keys, $4: sim script
    echo "== $1: $2 concurrent streams"
    rm -f "$work/audit.jsonl"
    "$bin" upstream-sim --listen 127.0.0.1:$SIM_A --name a --script "$4" 2>/dev/null & local a=$!
    "$bin" upstream-sim --listen 127.0.0.1:$SIM_B --name b --script "$4" 2>/dev/null & local b=$!
    config "$3" > "$work/routes.yaml"
    BENCH_KEY=sk-ant-bench-0000000000 "$bin" serve --config "$work/routes.yaml" 2>"$work/switchyard.log" & local router=$!
    pids+=($a $b $router)
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$ROUTER/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    local idle peak=0
    idle=$(rss_kb $router)
    ( while kill -0 $router 2>/dev/null; do rss_kb $router; sleep 0.5; done ) > "$work/rss.txt" & local sampler=$!
    python3 bench/long_streams/stream_load.py 127.0.0.1 $ROUTER default "$2" 2 > "$work/load.json"
    kill $sampler 2>/dev/null || true
    peak=$(sort -n "$work/rss.txt" | tail -1)
    curl -fs "http://127.0.0.1:$ROUTER/metrics" | grep -E '^switchyard_(capacity_rejections_total|upstream_connections|breaker_transitions_total)' > "$work/metrics.txt" || true
    kill $router $a $b 2>/dev/null || true
    wait $router $a $b 2>/dev/null || true
    python3 - "$work" "$1" "$idle" "$peak" <<'PY'
import json, sys, collections
work, name, idle, peak = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
load = json.load(open(f"{work}/load.json"))
requests, breakers, attempts = 0, 0, collections.Counter()
capacity_queued = []
for line in open(f"{work}/audit.jsonl"):
    entry = json.loads(line)
    if entry.get("event") == "request":
        requests += 1
        for attempt in entry.get("attempts", []):
            attempts[attempt.get("error") or str(attempt.get("status"))] += 1
            if attempt.get("error") == "capacity":
                capacity_queued.append(attempt.get("queued_ms", 0))
    elif entry.get("event") == "breaker":
        breakers += 1
print(json.dumps({"drill": name, **load, "audit_request_lines": requests, "breaker_transitions": breakers,
                  "attempts_by_result": dict(attempts),
                  "capacity_queued_ms": {"min": min(capacity_queued), "max": max(capacity_queued)} if capacity_queued else None,
                  "rss_idle_mb": round(idle / 1024, 1), "rss_peak_mb": round(peak / 1024, 1)}, indent=1))
PY
    sed 's/^/   /' "$work/metrics.txt"
}

drill "long streams, default transport settings" "$STREAMS" "" "ok(events=60,interval=500ms)*"
drill "saturation, max_connections 50 per provider" "$SATURATION" ", max_connections: 50, queue_timeout: 2s" "ok(events=20,interval=500ms)*"
