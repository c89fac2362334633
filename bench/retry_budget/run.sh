#!/usr/bin/env bash
# The retry-budget drill (README, "Retry budget"): every model of a route fails for DURATION seconds under
# a steady RATE of callers, once without and once with `retry_budget: { percent: 20,
# min_per_second: 5 }`; upstream attempts per caller request are counted from the audit log.
# Breakers are set not to open, so that what is measured is the retries alone (a breaker that
# trips takes most of the load off by itself; the budget is the guard for the failures that do
# not trip one: errors spread thinly, timeouts, a failure rate under the threshold).
#   bash bench/retry_budget/run.sh            # RATE=50 DURATION=30
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${RATE:-50}
SECONDS_FAILING=${DURATION:-30}
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "== building switchyard (release)"
swift build -c release --product switchyard 2>&1 | tail -1
bin="$(swift build -c release --show-bin-path)/switchyard"

# Two ways to fail: 500 at once, and no answer until the 1 s first-byte timeout (each failed
# attempt then stays in flight, so active requests — and the budget's share — are larger).
"$bin" upstream-sim --listen 127.0.0.1:19403 --name first --script '500*' 2>/dev/null & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:19404 --name second --script '500*' 2>/dev/null & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:19405 --name first-hang --script 'hang*' 2>/dev/null & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:19406 --name second-hang --script 'hang*' 2>/dev/null & pids+=($!)

drill() {
    local name=$1 budget=$2 first=$3 second=$4
    cat > "$work/$name.yaml" <<YAML
version: 1
server: { listen: 127.0.0.1:19402 }
providers:
  first: { type: anthropic, base_url: "http://127.0.0.1:$first", api_key_env: BENCH_KEY, timeouts: { first_byte: 1s } }
  second: { type: anthropic, base_url: "http://127.0.0.1:$second", api_key_env: BENCH_KEY, timeouts: { first_byte: 1s } }
models:
  first: { provider: first, model: claude-sonnet-4-20250514 }
  second: { provider: second, model: claude-sonnet-4-20250514 }
defaults:
  breaker: { failure_threshold: 10000 }
  retry: { max_attempts: 4, per_model: 2, backoff: { initial: 100ms, multiplier: 2, max: 1s, jitter: full } }
routes:
  default:
    models: [first, second]
$budget
logging: { audit: $work/$name-audit.jsonl, level: error }
YAML
    BENCH_KEY=sk-ant-bench-0000000000 "$bin" serve --config "$work/$name.yaml" 2>"$work/$name-router.log" & local sy=$!
    for _ in $(seq 1 100); do curl -fs http://127.0.0.1:19402/healthz >/dev/null 2>&1 && break; sleep 0.1; done
    kill -0 $sy 2>/dev/null || { cat "$work/$name-router.log"; exit 1; }
    python3 bench/retry_budget/load.py http://127.0.0.1:19402 default "$RATE" "$SECONDS_FAILING" > "$work/$name-load.json"
    curl -fs http://127.0.0.1:19402/metrics | grep -E '^switchyard_retry_budget_exhausted_total' || true
    kill -TERM $sy; wait $sy || true
    echo "   $name: $(python3 bench/retry_budget/report.py "$work/$name-audit.jsonl" "$work/$name-load.json")"
}

budget="    retry_budget: { percent: 20, min_per_second: 5 }"
echo "== every model answers 500 at once for ${SECONDS_FAILING} s, ${RATE} callers a second (max_attempts 4, per_model 2)"
drill 500-without-budget "" 19403 19404
drill 500-with-budget "$budget" 19403 19404
echo "== every model times out (first_byte 1 s) for ${SECONDS_FAILING} s, ${RATE} callers a second"
drill timeout-without-budget "" 19405 19406
drill timeout-with-budget "$budget" 19405 19406
