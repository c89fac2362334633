#!/usr/bin/env bash
# What reading Anthropic's rate-limit headers costs on the hot path: two routers against nginx's
# canned Messages answer, one upstream answering without the anthropic-ratelimit-* headers (as
# bench/run.sh's does) and one answering with all twelve, as api.anthropic.com does. wrk
# alternates between them each round; CPU per request is each router's user+sys from /proc.
#   bash bench/headroom/run.sh                  # ROUNDS=3 DURATION=5 C=16, release build
#   BIN=path/to/switchyard bash bench/headroom/run.sh
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
UPSTREAM=19411 LIMITED=19412 PLAIN=19413 HEADERS=19414

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
        listen 127.0.0.1:$LIMITED reuseport backlog=4096;
        location /v1/messages {
            default_type application/json;
            add_header request-id req_bench_0001;
            add_header anthropic-ratelimit-requests-limit 4000;
            add_header anthropic-ratelimit-requests-remaining 3999;
            add_header anthropic-ratelimit-requests-reset 2026-12-05T12:00:01Z;
            add_header anthropic-ratelimit-tokens-limit 2000000;
            add_header anthropic-ratelimit-tokens-remaining 1999000;
            add_header anthropic-ratelimit-tokens-reset 2026-12-05T12:00:00Z;
            add_header anthropic-ratelimit-input-tokens-limit 1600000;
            add_header anthropic-ratelimit-input-tokens-remaining 1599000;
            add_header anthropic-ratelimit-input-tokens-reset 2026-12-05T12:00:00Z;
            add_header anthropic-ratelimit-output-tokens-limit 400000;
            add_header anthropic-ratelimit-output-tokens-remaining 399000;
            add_header anthropic-ratelimit-output-tokens-reset 2026-12-05T12:00:00Z;
            return 200 '{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hello from the benchmark upstream."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":9}}';
        }
    }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)

config() { # $1 port, $2 upstream port
    cat <<YAML
version: 1
server: { listen: 127.0.0.1:$1, idle_timeout: 600s }
providers:
  fake: { type: anthropic, base_url: "http://127.0.0.1:$2", api_key_env: BENCH_KEY, max_connections: 128 }
models:
  sonnet: { provider: fake, model: claude-sonnet-4-20250514 }
routes:
  default: { models: [sonnet], aliases: [claude-sonnet-4-20250514] }
logging: { level: warning, audit: $work/audit-$1.jsonl }
YAML
}
declare -A port=([plain]=$PLAIN [headers]=$HEADERS)
declare -A pid
config $PLAIN $UPSTREAM > "$work/plain.yaml"
config $HEADERS $LIMITED > "$work/headers.yaml"
for t in plain headers; do
    BENCH_KEY=sk-ant-bench-0000000000 "$BIN" serve --config "$work/$t.yaml" 2>"$work/$t.log" & pid[$t]=$!; pids+=(${pid[$t]})
done
for t in plain headers; do
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:${port[$t]}/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)
for t in plain headers; do wrk -t2 -c4 -d1s -s bench/post.lua "http://127.0.0.1:${port[$t]}/v1/messages" >/dev/null 2>&1; done

echo "== wrk -c$C, $ROUNDS rounds × $DURATION s, alternating: answers without, and with, the twelve rate-limit headers"
for round in $(seq 1 "$ROUNDS"); do
    for t in plain headers; do
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
print("\n| upstream answer | RPS | p50 ms | CPU µs/request | RPS vs plain | CPU vs plain |")
print("|---|---:|---:|---:|---:|---:|")
for t in ["plain", "headers"]:
    rps, p50, cpu = med[t]
    print("| %s | %.0f | %.3f | %.1f | %.2f | %.2f |" % (t, rps, p50, cpu, rps / med["plain"][0], cpu / med["plain"][2]))
PY
# The router read them: its admin state shows the headroom of the model.
curl -fs "http://127.0.0.1:$HEADERS/admin/state" | grep -o '"headroom":[^]]*' | head -c 300; echo
