#!/usr/bin/env bash
# Side-by-side benchmark: the fake upstream directly, nginx as a reverse proxy, Switchyard
# (release build), and LiteLLM's proxy when it can be installed. One command:
#   bash bench/run.sh            # full run (~6 min after the release build)
#   ROUNDS=1 DURATION=3 bash bench/run.sh   # quicker
#   CHAT=off                                # without the POST /v1/chat/completions row
#   SWITCHYARD_BIN=path/to/switchyard       # a release build made elsewhere, not built here
# Results: a table on stdout and bench/results/<timestamp>/ (raw wrk output, JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
STREAMS=${STREAMS:-1000}
LITELLM=${LITELLM:-auto}   # auto | off
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$root/bench/results/$stamp"
work=$(mktemp -d)
mkdir -p "$out"

UPSTREAM=19200 PROXY=19201 SWITCHYARD=19202 SIM=19203 SIM_PROXY=19204 SLOW_SIM=19205 LITELLM_PORT=19206 RELAY_SIM=19207 RELAY_PROXY=19208
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
    echo "== installing wrk and nginx (Debian packages)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light) >/dev/null
fi

if [ -n "${SWITCHYARD_BIN:-}" ]; then
    bin=$SWITCHYARD_BIN   # a release build made elsewhere (another commit)
else
    echo "== building switchyard (release)"
    swift build -c release --product switchyard 2>&1 | tail -1
    bin="$(swift build -c release --show-bin-path)/switchyard"
fi

fill() {
    sed -e "s|@WORK@|$work|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM|g" -e "s|@PROXY_PORT@|$PROXY|g" \
        -e "s|@SWITCHYARD_PORT@|$SWITCHYARD|g" -e "s|@SIM_PORT@|$SIM|g" -e "s|@SIM_PROXY_PORT@|$SIM_PROXY|g" \
        -e "s|@SLOW_SIM_PORT@|$SLOW_SIM|g" -e "s|@RELAY_SIM_PORT@|$RELAY_SIM|g" -e "s|@RELAY_PROXY_PORT@|$RELAY_PROXY|g" "$1"
}
fill bench/nginx.conf.template > "$work/nginx.conf"
fill bench/routes.bench.yaml.template > "$work/routes.yaml"

echo "== starting nginx, upstream-sims and switchyard"
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:$SIM --name fast --script "ok(events=20,interval=5ms)*" 2>/dev/null & pids+=($!)
"$bin" upstream-sim --listen 127.0.0.1:$SLOW_SIM --name slow --script "ok(events=40,interval=250ms)*" 2>/dev/null & pids+=($!)
BENCH_KEY=sk-ant-bench-0000000000 "$bin" serve --config "$work/routes.yaml" 2>"$work/switchyard.log" & sy_pid=$!; pids+=($sy_pid)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$SWITCHYARD/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$SWITCHYARD/readyz" >/dev/null
sleep 0.5
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time (user + system, clock ticks) a process has used so far: the cost measure that does not
# depend on how busy the machine is.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
idle_rss=$(rss_kb $sy_pid)
nginx_worker=$(pgrep -f "nginx: worker" | head -1)

targets="direct nginx switchyard"
declare -A url=([direct]="http://127.0.0.1:$UPSTREAM/v1/messages" [nginx]="http://127.0.0.1:$PROXY/v1/messages" [switchyard]="http://127.0.0.1:$SWITCHYARD/v1/messages")
# The wrk script per target: a Messages request, except for the Chat Completions row.
declare -A script=([direct]=bench/post.lua [nginx]=bench/post.lua [switchyard]=bench/post.lua [litellm]=bench/post.lua)
if [ "${CHAT:-on}" != off ]; then
    # The same conversation through Switchyard's OpenAI-compatible front (translated to Messages
    # and back), next to the /v1/messages row: the translation's cost.
    targets="$targets switchyard_chat"
    url[switchyard_chat]="http://127.0.0.1:$SWITCHYARD/v1/chat/completions"
    script[switchyard_chat]=bench/chat.lua
fi

if [ "$LITELLM" != off ]; then
    echo "== LiteLLM proxy (pip litellm[proxy] in bench/.venv)"
    if [ ! -x bench/.venv/bin/litellm ]; then
        (python3 -m venv bench/.venv && timeout 600 bench/.venv/bin/pip install -q "litellm[proxy]") >"$out/litellm-install.log" 2>&1 || true
    fi
    if [ -x bench/.venv/bin/litellm ]; then
        cat > "$work/litellm.yaml" <<YAML
model_list:
  - model_name: claude-sonnet-4-20250514
    litellm_params: { model: anthropic/claude-sonnet-4-20250514, api_base: "http://127.0.0.1:$UPSTREAM", api_key: sk-ant-bench }
  - model_name: claude-3-5-haiku-20241022
    litellm_params: { model: anthropic/claude-3-5-haiku-20241022, api_base: "http://127.0.0.1:$UPSTREAM", api_key: sk-ant-bench }
router_settings:
  fallbacks: [{ "claude-sonnet-4-20250514": ["claude-3-5-haiku-20241022"] }]
litellm_settings: { drop_params: true }
general_settings: { master_key: sk-ant-bench-not-a-real-key }
YAML
        bench/.venv/bin/litellm --config "$work/litellm.yaml" --port $LITELLM_PORT --num_workers 1 >"$out/litellm.log" 2>&1 & pids+=($!)
        for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$LITELLM_PORT/health/liveliness" >/dev/null 2>&1 && break; sleep 1; done
        if curl -fs "http://127.0.0.1:$LITELLM_PORT/health/liveliness" >/dev/null 2>&1; then
            targets="$targets litellm"
            url[litellm]="http://127.0.0.1:$LITELLM_PORT/v1/messages"
        else
            echo "   LiteLLM did not start; see $out/litellm.log"
        fi
    else
        echo "   LiteLLM could not be installed; see $out/litellm-install.log (continuing without it)"
    fi
fi

echo "== warm-up"
for t in $targets; do wrk -t1 -c4 -d1s -s "${script[$t]}" "${url[$t]}" >/dev/null 2>&1 || true; done

echo "== wrk: $ROUNDS rounds × concurrency ($CONCURRENCY) × $DURATION s, targets alternating: $targets"
for round in $(seq 1 "$ROUNDS"); do
    for c in $CONCURRENCY; do
        threads=$(( c < 2 ? 1 : 2 ))
        for t in $targets; do
            sy_before=$(cpu_ticks $sy_pid); ng_before=$(cpu_ticks "$nginx_worker")
            wrk -t$threads -c$c -d${DURATION}s --latency -s "${script[$t]}" "${url[$t]}" > "$out/wrk-$t-c$c-r$round.txt" 2>&1 || true
            echo "{\"switchyard_ticks\": $(( $(cpu_ticks $sy_pid) - sy_before )), \"nginx_ticks\": $(( $(cpu_ticks "$nginx_worker") - ng_before )), \"clk_tck\": $clk_tck}" \
                > "$out/cpu-$t-c$c-r$round.json"
            printf '   round %s c=%-3s %-10s %s\n' "$round" "$c" "$t" "$(grep 'Requests/sec' "$out/wrk-$t-c$c-r$round.txt" | awk '{print $2}')"
        done
    done
done
sy_peak=$(hwm_kb $sy_pid)
nginx_peak=$( [ -n "$nginx_worker" ] && hwm_kb "$nginx_worker" || echo 0)

echo "== streaming: time to first content event and to the end (20 events, 5 ms apart)"
python3 bench/stream_probe.py "http://127.0.0.1:$SIM" claude-sonnet-4-20250514 200 > "$out/stream-direct.json"
python3 bench/stream_probe.py "http://127.0.0.1:$SIM_PROXY" claude-sonnet-4-20250514 200 > "$out/stream-nginx.json"
python3 bench/stream_probe.py "http://127.0.0.1:$SWITCHYARD" stream 200 > "$out/stream-switchyard.json"

echo "== streams relayed: CPU per stream, ${RELAY_CONNECTIONS:=400} concurrent, 100 content events 10 ms apart"
# nginx in a process of its own in front of an upstream-sim of its own: its worker's CPU is the
# proxy's alone, as the router's is. Rounds alternate the two; each relays CONNECTIONS × WAVES streams.
"$bin" upstream-sim --listen 127.0.0.1:$RELAY_SIM --name relay --script "ok(events=100,interval=10ms)*" 2>/dev/null & pids+=($!)
fill bench/nginx-relay.conf.template > "$work/nginx-relay.conf"
nginx -c "$work/nginx-relay.conf" -p "$work" & pids+=($!)
for _ in $(seq 1 50); do [ -s "$work/nginx-relay.pid" ] && break; sleep 0.1; done
relay_worker=$(pgrep -P "$(cat "$work/nginx-relay.pid")" | head -1)
python3 bench/relay_streams.py 127.0.0.1 $RELAY_PROXY claude-sonnet-4-20250514 50 1 >/dev/null
python3 bench/relay_streams.py 127.0.0.1 $SWITCHYARD relaystream 50 1 >/dev/null
for round in $(seq 1 "$ROUNDS"); do
    order="nginx switchyard"; [ $((round % 2)) = 0 ] && order="switchyard nginx"
    for t in $order; do
        if [ $t = nginx ]; then p=$relay_worker port=$RELAY_PROXY model=claude-sonnet-4-20250514; else p=$sy_pid port=$SWITCHYARD model=relaystream; fi
        before=$(cpu_ticks $p)
        result=$(python3 bench/relay_streams.py 127.0.0.1 $port $model "$RELAY_CONNECTIONS" "${RELAY_WAVES:-2}")
        echo "{\"target\": \"$t\", \"ticks\": $(( $(cpu_ticks $p) - before )), \"clk_tck\": $clk_tck, \"result\": $result}" > "$out/relay-$t-r$round.json"
        printf '   round %s %-10s %s\n' "$round" "$t" "$result"
    done
done

echo "== memory: idle, and $STREAMS concurrent slow streams held open"
python3 bench/hold_streams.py 127.0.0.1 $SWITCHYARD slowstream "$STREAMS" 30 > "$out/hold.txt" &
hold=$!
streaming_rss=0
for _ in $(seq 1 300); do
    sleep 0.1
    if grep -q streaming "$out/hold.txt" 2>/dev/null; then streaming_rss=$(rss_kb $sy_pid); break; fi
done
wait $hold || true
echo "{\"idle_rss_kb\": $idle_rss, \"streams_rss_kb\": $streaming_rss, \"switchyard_peak_kb\": $sy_peak, \"nginx_worker_peak_kb\": $nginx_peak, \"machine\": \"$(nproc) cores, $(uname -r)\"}" > "$out/memory.json"
cat "$out/hold.txt" >> "$out/memory.json.log"

python3 bench/report.py "$out" $targets | tee "$out/table.md"
echo "raw results: $out"
