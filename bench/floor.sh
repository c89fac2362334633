#!/usr/bin/env bash
# The floor under any SwiftNIO proxy on this machine (bench/floor: a bare reverse proxy on NIO's
# HTTP/1.1 codec, no routing, no task per request), measured in one run next to nginx and
# Switchyard, all in front of the same nginx fake upstream, targets alternating (`floor-raw` pipes
# the bytes with no HTTP codec at all: what NIO's channels and the kernel cost alone; `floor-lite`
# frames each message with a minimal hand parser instead of NIO's HTTP/1 codec):
#   ROUNDS=3 DURATION=5 bash bench/floor.sh
# Prints, per concurrency and target, the median RPS, p50, p99, the p50 added over the upstream
# alone, its ratio to nginx's, and the proxy process's CPU per request. `nginx-apart` is the same
# nginx proxy in a process of its own (bench/nginx-apart.conf.template), next to the upstream
# rather than sharing its worker as bench/run.sh's nginx does; the last column compares with it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONCURRENCY=${CONCURRENCY:-"16 64"}
work=$(mktemp -d)
UPSTREAM=19200 PROXY=19201 SWITCHYARD=19202 SIM=19203 SIM_PROXY=19204 SLOW_SIM=19205 FLOOR=19207 FLOOR_TASK=19208 FLOOR_RAW=19214 FLOOR_LITE=19215 OWN=19209 HB=19210 TYPES=19211 APART=19213
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    [ -f "$work/nginx-apart.pid" ] && kill "$(cat "$work/nginx-apart.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${SWITCHYARD_BIN:-}" ]; then
    swift build -c release --product switchyard 2>&1 | tail -1
    bin="$(swift build -c release --show-bin-path)/switchyard"
else
    bin=$SWITCHYARD_BIN   # a release build of this same commit elsewhere
fi
(cd bench/floor && swift build -c release 2>&1 | tail -1)
floor="$root/bench/floor/.build/release/NIOProxyFloor"
layered="$root/bench/floor/.build/release/LayeredProxy"

fill() {
    sed -e "s|@WORK@|$work|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM|g" -e "s|@PROXY_PORT@|$PROXY|g" \
        -e "s|@SWITCHYARD_PORT@|$SWITCHYARD|g" -e "s|@SIM_PORT@|$SIM|g" -e "s|@SIM_PROXY_PORT@|$SIM_PROXY|g" \
        -e "s|@SLOW_SIM_PORT@|$SLOW_SIM|g" -e "s|@RELAY_SIM_PORT@|19107|g" -e "s|@APART_PORT@|$APART|g" "$1"
}
fill bench/nginx.conf.template > "$work/nginx.conf"
fill bench/routes.bench.yaml.template > "$work/routes.yaml"
fill bench/nginx-apart.conf.template > "$work/nginx-apart.conf"
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
nginx -c "$work/nginx-apart.conf" -p "$work" & pids+=($!)
"$floor" 127.0.0.1:$FLOOR 127.0.0.1:$UPSTREAM >/dev/null & floor_pid=$!; pids+=($floor_pid)
"$floor" 127.0.0.1:$FLOOR_TASK 127.0.0.1:$UPSTREAM task >/dev/null & floor_task_pid=$!; pids+=($floor_task_pid)
"$floor" 127.0.0.1:$FLOOR_RAW 127.0.0.1:$UPSTREAM raw >/dev/null & floor_raw_pid=$!; pids+=($floor_raw_pid)
"$floor" 127.0.0.1:$FLOOR_LITE 127.0.0.1:$UPSTREAM lite >/dev/null & floor_lite_pid=$!; pids+=($floor_lite_pid)
"$layered" 127.0.0.1:$OWN 127.0.0.1:$UPSTREAM own >/dev/null & own_pid=$!; pids+=($own_pid)
"$layered" 127.0.0.1:$TYPES 127.0.0.1:$UPSTREAM httptypes >/dev/null & types_pid=$!; pids+=($types_pid)
"$layered" 127.0.0.1:$HB 127.0.0.1:$UPSTREAM hummingbird >/dev/null & hb_pid=$!; pids+=($hb_pid)
BENCH_KEY=sk-ant-bench-0000000000 "$bin" serve --config "$work/routes.yaml" 2>"$work/switchyard.log" & sy_pid=$!; pids+=($sy_pid)
extra=""
if [ -n "${SWITCHYARD_BIN_B:-}" ]; then
    # A second build (another commit) on its own port, measured as target `switchyard-b`.
    sed -e "s|127.0.0.1:$SWITCHYARD|127.0.0.1:19212|" -e "s|audit.jsonl|audit-b.jsonl|" "$work/routes.yaml" > "$work/routes-b.yaml"
    BENCH_KEY=sk-ant-bench-0000000000 "$SWITCHYARD_BIN_B" serve --config "$work/routes-b.yaml" 2>"$work/switchyard-b.log" & sy_b_pid=$!; pids+=($sy_b_pid)
    extra=switchyard-b
fi
for port in $SWITCHYARD ${SWITCHYARD_BIN_B:+19212}; do
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done
sleep 0.5
# Each nginx's worker, found through its master's pid file.
worker_of() { for _ in $(seq 1 50); do [ -s "$1" ] && pgrep -P "$(cat "$1")" && return; sleep 0.1; done; }
nginx_worker=$(worker_of "$work/nginx.pid" | head -1)
apart_worker=$(worker_of "$work/nginx-apart.pid" | head -1)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A url=([direct]="http://127.0.0.1:$UPSTREAM/v1/messages" [nginx]="http://127.0.0.1:$PROXY/v1/messages" [nginx-apart]="http://127.0.0.1:$APART/v1/messages"
    [floor]="http://127.0.0.1:$FLOOR/v1/messages" [floor-task]="http://127.0.0.1:$FLOOR_TASK/v1/messages" [floor-raw]="http://127.0.0.1:$FLOOR_RAW/v1/messages" [floor-lite]="http://127.0.0.1:$FLOOR_LITE/v1/messages"
    [own-client]="http://127.0.0.1:$OWN/v1/messages" [httptypes]="http://127.0.0.1:$TYPES/v1/messages" [hummingbird]="http://127.0.0.1:$HB/v1/messages" [switchyard]="http://127.0.0.1:$SWITCHYARD/v1/messages" [switchyard-b]="http://127.0.0.1:19212/v1/messages")
declare -A pid=([direct]=$nginx_worker [nginx]=$nginx_worker [nginx-apart]=$apart_worker [floor]=$floor_pid [floor-task]=$floor_task_pid [floor-raw]=$floor_raw_pid [floor-lite]=$floor_lite_pid [own-client]=$own_pid [httptypes]=$types_pid [hummingbird]=$hb_pid [switchyard]=$sy_pid [switchyard-b]=${sy_b_pid:-0})
for t in floor-raw floor-lite floor floor-task own-client httptypes hummingbird switchyard $extra; do wrk -t2 -c64 -d2s -s bench/post.lua "${url[$t]}" >/dev/null; done
for round in $(seq 1 "$ROUNDS"); do
    for c in $CONCURRENCY; do
        for t in direct nginx nginx-apart floor-raw floor-lite floor floor-task ${TARGETS:-own-client httptypes hummingbird switchyard} $extra; do
            before=$(cpu_ticks "${pid[$t]}")
            out=$(wrk -t$(( c < 2 ? 1 : 2 )) -c$c -d${DURATION}s --latency -s bench/post.lua "${url[$t]}")
            ticks=$(( $(cpu_ticks "${pid[$t]}") - before ))
            echo "$out" | awk -v t=$t -v c=$c -v ticks=$ticks -v hz=$(getconf CLK_TCK) '
                function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
                /requests in/ {n=$1} /Requests\/sec/ {rps=$2} / 50%/ {p50=ms($2)} / 99%/ {p99=ms($2)}
                END {printf "%s %s %s %.4f %.4f %.2f\n", c, t, rps, p50, p99, ticks*1e6/hz/n}'
        done
    done
done > "$work/rows.txt"
python3 - "$work/rows.txt" <<'PY'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    c, t, rps, p50, p99, cpu = line.split()
    rows.setdefault((int(c), t), []).append((float(rps), float(p50), float(p99), float(cpu)))
med = lambda xs, i: st.median(x[i] for x in xs)
print("| conc. | target | RPS | p50 ms | p99 ms | added p50 ms | added p50 / nginx's | CPU µs/request (proxy process) | CPU / nginx's proxy part | added p50 / nginx-apart's |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in sorted({c for c, _ in rows}):
    direct = med(rows[(c, "direct")], 1)
    nginx_added = med(rows[(c, "nginx")], 1) - direct
    apart_added = med(rows[(c, "nginx-apart")], 1) - direct
    # nginx's proxy part as bench/run.sh judges CPU: its whole worker less the upstream's own work.
    proxy_part = med(rows[(c, "nginx")], 3) - med(rows[(c, "direct")], 3)
    for t in ("direct", "nginx", "nginx-apart", "floor-raw", "floor-lite", "floor", "floor-task", "own-client", "httptypes", "hummingbird", "switchyard", "switchyard-b"):
        if (c, t) not in rows: continue
        r = rows[(c, t)]
        added = med(r, 1) - direct
        ratio = "" if t == "direct" else f"{added / nginx_added:.2f}"
        # direct's CPU is the fake upstream's own work per request; nginx's whole worker less it is its proxy part.
        cpu = f"{med(r, 3):.1f}" + {"direct": " (upstream alone)", "nginx": f" (whole worker; proxy part {med(r, 3) - med(rows[(c, 'direct')], 3):.1f})"}.get(t, "")
        apart_ratio = "" if t == "direct" else f"{added / apart_added:.2f}"
        print(f"| {c} | {t} | {med(r, 0):,.0f} | {med(r, 1):.3f} | {med(r, 2):.3f} | {'' if t == 'direct' else f'{added:.3f}'} | {ratio} | {cpu} | {'' if t == 'direct' else '1.00' if t == 'nginx' else f'{med(r, 3) / proxy_part:.2f}'} | {apart_ratio} |")
PY
