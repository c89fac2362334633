#!/usr/bin/env bash
# Two release builds of Switchyard side by side in front of the same nginx fake upstream, measured
# in alternating rounds (A B B A …) so that the machine's drift falls on both alike:
#   ROUNDS=6 DURATION=5 CONCURRENCY="1 16 64" bash bench/ab.sh BIN_A BIN_B [LUA]
# (LUA_PATH=/v1/chat/completions with bench/chat.lua for the chat front; ENV_A / ENV_B: extra
# environment for one side.)
# Prints, per concurrency and build, the medians over rounds of RPS, p50, and the router process's
# CPU per request (user + sys from /proc), voluntary and involuntary context switches per request,
# and B's ratios to A. nginx as proxy is measured in the same rounds (its added p50 over direct
# and its worker's CPU per request minus the upstream part), for the ratios the judge reads.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 LUA=${3:-bench/post.lua}
ROUNDS=${ROUNDS:-6} DURATION=${DURATION:-5} CONCURRENCY=${CONCURRENCY:-"1 16 64"}
UPSTREAM=19200 PROXY=19201 PORT_A=19202 PORT_B=19212 SIM=19203 SIM_PROXY=19204 SLOW_SIM=19205
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fill() {
    sed -e "s|@WORK@|$work|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM|g" -e "s|@PROXY_PORT@|$PROXY|g" \
        -e "s|@SWITCHYARD_PORT@|$2|g" -e "s|@SIM_PORT@|$SIM|g" -e "s|@SIM_PROXY_PORT@|$SIM_PROXY|g" \
        -e "s|@SLOW_SIM_PORT@|$SLOW_SIM|g" -e "s|@RELAY_SIM_PORT@|19207|g" -e "s|audit.jsonl|audit-$2.jsonl|" "$1"
}
fill bench/nginx.conf.template 0 > "$work/nginx.conf"
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
declare -A pid url
for side in A B; do
    port=$([ $side = A ] && echo $PORT_A || echo $PORT_B)
    bin=$([ $side = A ] && echo "$A" || echo "$B")
    fill bench/routes.bench.yaml.template $port > "$work/routes-$side.yaml"
    extra_env=$([ $side = A ] && echo "${ENV_A:-}" || echo "${ENV_B:-}")   # e.g. ENV_B="SWITCHYARD_EXPERIMENT_X=1"
    env BENCH_KEY=sk-ant-bench-0000000000 $extra_env "$bin" serve --config "$work/routes-$side.yaml" 2>"$work/$side.log" & pid[$side]=$!; pids+=($!)
    url[$side]="http://127.0.0.1:$port${LUA_PATH:-/v1/messages}"
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done
for _ in $(seq 1 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
pid[nginx]=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1); pid[direct]=${pid[nginx]}
url[nginx]="http://127.0.0.1:$PROXY/v1/messages"; url[direct]="http://127.0.0.1:$UPSTREAM/v1/messages"
declare -A lua=([A]=$LUA [B]=$LUA [nginx]=bench/post.lua [direct]=bench/post.lua)
for t in A B; do wrk -t2 -c16 -d2s -s "${lua[$t]}" "${url[$t]}" >/dev/null; done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { { cat /proc/$1/task/*/status 2>/dev/null || true; } | awk -v k="$2" '$1 == k":" {s += $2} END {print s}'; }
out=$work/rows.txt
for round in $(seq 1 "$ROUNDS"); do
    order="A B"; [ $((round % 2)) = 0 ] && order="B A"
    for c in $CONCURRENCY; do
        for t in direct nginx $order; do
            p=${pid[$t]}
            t0=$(ticks $p); v0=$(switches $p voluntary_ctxt_switches); n0=$(switches $p nonvoluntary_ctxt_switches)
            res=$(wrk -t$(( c < 2 ? 1 : 2 )) -c$c -d${DURATION}s --latency -s "${lua[$t]}" "${url[$t]}")
            t1=$(ticks $p); v1=$(switches $p voluntary_ctxt_switches); n1=$(switches $p nonvoluntary_ctxt_switches)
            echo "$t $c $(echo "$res" | awk '/requests in/ {r=$1} /Requests\/sec/ {s=$2} $1=="50%" {p=$2} END {print r, s, p}') $((t1 - t0)) $((v1 - v0)) $((n1 - n0))" >> $out
        done
    done
done
[ -n "${KEEP_ROWS:-}" ] && cp "$out" "$KEEP_ROWS"
python3 - "$out" "$(getconf CLK_TCK)" "$CONCURRENCY" <<'PY'
import re, statistics, sys
rows, tck, concs = open(sys.argv[1]).read().split("\n"), int(sys.argv[2]), [int(c) for c in sys.argv[3].split()]
def ms(t):
    v, u = re.match(r"([\d.]+)(us|ms|s)", t).groups(); return float(v) * {"us": .001, "ms": 1, "s": 1000}[u]
data = {}
for line in rows:
    if not line.strip(): continue
    t, c, n, rps, p50, ticks, vol, inv = line.split()
    n = int(n); data.setdefault((t, int(c)), []).append((float(rps), ms(p50), int(ticks) / tck * 1e6 / n, int(vol) / n, int(inv) / n))
med = lambda t, c, i: statistics.median(r[i] for r in data[(t, c)])
print("| conc. | target | RPS | p50 ms | added p50 ms | / nginx's | CPU µs/req | / nginx's | vol. cs/req | invol. cs/req |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in concs:
    d = med("direct", c, 1); ng_add = med("nginx", c, 1) - d
    ng_cpu = med("nginx", c, 2) - med("direct", c, 2)
    for t in ["nginx", "A", "B"]:
        add = med(t, c, 1) - d
        cpu = med(t, c, 2) if t != "nginx" else ng_cpu
        print("| %d | %s | %.0f | %.3f | %.3f | %.2f | %.1f | %.2f | %.2f | %.2f |" % (c, t, med(t, c, 0), med(t, c, 1), add, add / ng_add, cpu, cpu / ng_cpu, med(t, c, 3), med(t, c, 4)))
    print("| %d | **B / A** | %.3f | %.3f | %.3f | | %.3f | | | |" % (c, med("B", c, 0) / med("A", c, 0), med("B", c, 1) / med("A", c, 1), (med("B", c, 1) - d) / (med("A", c, 1) - d), med("B", c, 2) / med("A", c, 2)))
PY
