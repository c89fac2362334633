#!/usr/bin/env bash
# What `telemetry:` costs on the hot path: the same router three times — no telemetry, traces at
# `sample: 10%`, traces at `sample: 100%` — against nginx's canned Messages answer, with an OTLP/HTTP
# sink (nginx answering 200 to POST /v1/traces, so no collector's CPU competes with the router).
# wrk alternates between the three each round; CPU per request is each router's user+sys from /proc.
#   bash bench/telemetry/run.sh                 # ROUNDS=3 DURATION=5 C=16, release build
#   BIN=path/to/switchyard bash bench/telemetry/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
C=${C:-16}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
command -v wrk >/dev/null && command -v nginx >/dev/null || {
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light) >/dev/null
}
if [ -z "${BIN:-}" ]; then
    swift build -c release --product switchyard 2>&1 | tail -1
    BIN="$(swift build -c release --show-bin-path)/switchyard"
fi
UPSTREAM=19401 SINK=19402 OFF=19403 TEN=19404 ALL=19405

cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$UPSTREAM reuseport backlog=4096;
        location /v1/messages {
            default_type application/json;
            add_header request-id req_bench_0001;
            return 200 '{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hello from the benchmark upstream."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":9}}';
        }
    }
    server {
        listen 127.0.0.1:$SINK;
        client_max_body_size 64m;
        location /v1/traces { default_type application/x-protobuf; return 200 ''; }
    }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)

config() { # $1 port, $2 telemetry line
    cat <<YAML
version: 1
server: { listen: 127.0.0.1:$1, idle_timeout: 600s }
providers:
  fake: { type: anthropic, base_url: "http://127.0.0.1:$UPSTREAM", api_key_env: BENCH_KEY, max_connections: 128 }
models:
  sonnet: { provider: fake, model: claude-sonnet-4-20250514 }
routes:
  default: { models: [sonnet], aliases: [claude-sonnet-4-20250514] }
logging: { level: warning, audit: $work/audit-$1.jsonl }
$2
YAML
}
declare -A port=([off]=$OFF [sample10]=$TEN [sample100]=$ALL)
declare -A pid
config $OFF "" > "$work/off.yaml"
config $TEN "telemetry: { otlp_endpoint: \"http://127.0.0.1:$SINK\", sample: 10%, service_name: bench }" > "$work/sample10.yaml"
config $ALL "telemetry: { otlp_endpoint: \"http://127.0.0.1:$SINK\", sample: 100%, service_name: bench }" > "$work/sample100.yaml"
for t in off sample10 sample100; do
    BENCH_KEY=sk-ant-bench-0000000000 "$BIN" serve --config "$work/$t.yaml" 2>"$work/$t.log" & pid[$t]=$!; pids+=(${pid[$t]})
done
for t in off sample10 sample100; do
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:${port[$t]}/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)
for t in off sample10 sample100; do wrk -t2 -c4 -d1s -s bench/post.lua "http://127.0.0.1:${port[$t]}/v1/messages" >/dev/null 2>&1; done

echo "== wrk -c$C, $ROUNDS rounds × $DURATION s, alternating: off, sample 10%, sample 100%"
for round in $(seq 1 "$ROUNDS"); do
    for t in off sample10 sample100; do
        before=$(cpu_ticks ${pid[$t]})
        wrk -t2 -c$C -d${DURATION}s --latency -s bench/post.lua "http://127.0.0.1:${port[$t]}/v1/messages" > "$work/wrk-$t-$round.txt" 2>&1
        ticks=$(( $(cpu_ticks ${pid[$t]}) - before ))
        requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk-$t-$round.txt")
        rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk-$t-$round.txt")
        p50=$(awk '$1 == "50%" {print $2}' "$work/wrk-$t-$round.txt")
        echo "$t $round $rps $p50 $(awk -v t=$ticks -v c=$clk_tck -v n=$requests 'BEGIN {printf "%.1f", t / c * 1e6 / n}')" | tee -a "$work/rows.txt"
    done
done
python3 - "$work/rows.txt" <<'PY'
import statistics, sys, re
rows = {}
for line in open(sys.argv[1]):
    t, _, rps, p50, cpu = line.split()
    ms = float(re.sub(r"[a-z]+$", "", p50)) * (0.001 if p50.endswith("us") else 1000 if p50.endswith("s") and not p50.endswith("ms") else 1)
    rows.setdefault(t, []).append((float(rps), ms, float(cpu)))
med = {t: [statistics.median(v[i] for v in values) for i in range(3)] for t, values in rows.items()}
print("\n| telemetry | RPS | p50 ms | CPU µs/request | RPS vs off | CPU vs off |")
print("|---|---:|---:|---:|---:|---:|")
for t in ["off", "sample10", "sample100"]:
    rps, p50, cpu = med[t]
    print("| %s | %.0f | %.3f | %.1f | %.2f | %.2f |" % (t, rps, p50, cpu, rps / med["off"][0], cpu / med["off"][2]))
PY
for t in sample10 sample100; do
    if grep -qi "error\|fail" "$work/$t.log"; then echo "($t's log says:)"; tail -3 "$work/$t.log"; fi
done
