#!/usr/bin/env bash
# Stream recovery (README, "Stream recovery"), measured with upstream-sim on loopback (release build):
#   1. the added time to the next token when a failed stream is finished by a continuation;
#   2. the memory a held stream costs with stream_recovery on (its text is kept) against off.
#   bash bench/recovery.sh            # COUNT=300 STREAMS=1000
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-300}
STREAMS=${STREAMS:-1000}
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "== building switchyard (release)"
swift build -c release --product switchyard 2>&1 | tail -1
bin="$(swift build -c release --show-bin-path)/switchyard"

cat > "$work/routes.yaml" <<YAML
version: 1
server: { listen: 127.0.0.1:19302 }
providers:
  failing: { type: anthropic, base_url: "http://127.0.0.1:19303", api_key_env: BENCH_KEY, max_connections: 2048 }
  healthy: { type: anthropic, base_url: "http://127.0.0.1:19304", api_key_env: BENCH_KEY, max_connections: 2048 }
  slow: { type: anthropic, base_url: "http://127.0.0.1:19305", api_key_env: BENCH_KEY, max_connections: 2048 }
models:
  first: { provider: failing, model: claude-sonnet-4-20250514 }
  second: { provider: healthy, model: claude-sonnet-4-20250514 }
  held: { provider: slow, model: claude-sonnet-4-20250514 }
defaults:
  breaker: { failure_threshold: 10000 }
routes:
  recover: { models: [first, second], stream_recovery: continue }
  fresh: { models: [second] }
  held-plain: { models: [held] }
  held-recovering: { models: [held], stream_recovery: continue }
logging: { audit: $work/audit.jsonl }
YAML
# first: 10 text deltas 5 ms apart, then event: error; second: continuations, deltas 5 ms apart.
"$bin" upstream-sim --listen 127.0.0.1:19303 --name failing --script 'sse-error(13,overloaded_error)*' --fault-deltas 20 --fault-interval 5ms 2>/dev/null & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:19304 --name healthy --script 'ok(events=10,interval=5ms)*' 2>/dev/null & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:19305 --name slow --script 'ok(events=40,interval=250ms)*' 2>/dev/null & pids+=($!)
BENCH_KEY=sk-ant-bench-0000000000 "$bin" serve --config "$work/routes.yaml" 2>"$work/router.log" & sy=$!; pids+=($sy)
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:19302/readyz >/dev/null 2>&1 && break; sleep 0.1; done

echo "== added time to the next token ($COUNT recovered streams)"
python3 bench/recovery_probe.py http://127.0.0.1:19302 recover "$COUNT" > "$work/probe.json"
python3 bench/stream_probe.py http://127.0.0.1:19302 fresh "$COUNT" > "$work/fresh.json"
python3 - "$work/probe.json" "$work/fresh.json" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
fresh = [v for v in json.load(open(sys.argv[2]))["ttfe_ms"] if v is not None]
def pct(values, p):
    values = sorted(values); return values[min(len(values) - 1, int(len(values) * p))]
gap, normal = d["gap_ms"], d["normal_gap_ms"]
print(f"   recovered streams: {len(gap)}, broken: {d['broken']}")
print(f"   gap between two deltas, normal:      p50 {pct(normal, .5):.2f} ms  p99 {pct(normal, .99):.2f} ms")
print(f"   gap across the recovery:            p50 {pct(gap, .5):.2f} ms  p99 {pct(gap, .99):.2f} ms")
print(f"   added time to the next token:       p50 {pct(gap, .5) - pct(normal, .5):.2f} ms  p99 {pct(gap, .99) - pct(normal, .5):.2f} ms")
print(f"   of which the continuing model's own time to its first delta (a fresh stream to it through the router):")
print(f"                                        p50 {pct(fresh, .5):.2f} ms  p99 {pct(fresh, .99):.2f} ms")
print(f"   Switchyard's own part (gap - normal gap - fresh first delta): p50 {pct(gap, .5) - pct(normal, .5) - pct(fresh, .5):.2f} ms")
PY

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hold() {
    python3 bench/hold_streams.py 127.0.0.1 19302 "$1" "$STREAMS" 30 > "$work/hold-$1.txt" &
    local h=$!
    local rss=0
    for _ in $(seq 1 300); do
        sleep 0.1
        if grep -q streaming "$work/hold-$1.txt" 2>/dev/null; then sleep 2; rss=$(rss_kb $sy); break; fi
    done
    wait $h || true
    echo "$rss"
}
echo "== memory: $STREAMS slow streams held open (40 deltas, 250 ms apart), recovery off then on"
sleep 2
idle=$(rss_kb $sy)
plain=$(hold held-plain)
sleep 3
recovering=$(hold held-recovering)
echo "   RSS idle ${idle} kB; holding $STREAMS streams: recovery off ${plain} kB, on ${recovering} kB"
echo "   cost per held stream with recovery on: $(( (recovering - plain) * 1024 / STREAMS )) bytes (RSS difference / streams)"
