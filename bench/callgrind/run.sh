#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: the same figure for the same
# binary and load on every run, however busy the machine is (CPU time from /proc, bench/run.sh's
# cost measure, moves by ±5 µs between runs here). User space only: the kernel's part is not in it.
#   bash bench/callgrind/run.sh                  # the release build
#   bash bench/callgrind/run.sh BIN_A BIN_B      # each binary in turn, same load (an A/B)
#   TOP=40 bash bench/callgrind/run.sh BIN       # and its 40 costliest functions, self cost
#   LOAD=streams bash bench/callgrind/run.sh BIN # instructions per relayed stream instead
#   KEEP=DIR bash bench/callgrind/run.sh BIN     # and keep the last binary's callgrind dump in DIR
# Each binary serves the fixed load of bench/callgrind/fixed_load.py (CONNECTIONS keep-alive
# connections × REQUESTS each, after a warm-up) against nginx's canned answer, as in bench/run.sh.
# LOAD=streams relays STREAMS concurrent streams × WAVES (bench/relay_streams.py; 100 content
# events 10 ms apart from an upstream-sim, as bench/run.sh's relay test): few enough that the
# router under valgrind keeps up, so that events arrive one at a time as they do natively.
set -euo pipefail
cd "$(dirname "$0")/../.."
WARMUP=${WARMUP:-100}
REQUESTS=${REQUESTS:-500}
CONNECTIONS=${CONNECTIONS:-4}
TOP=${TOP:-0}
LOAD=${LOAD:-requests}
STREAMS=${STREAMS:-8}
WAVES=${WAVES:-3}
UPSTREAM=19300 SWITCHYARD=19302 RELAY_SIM=19307

for tool in valgrind nginx gcc callgrind_control; do
    command -v "$tool" >/dev/null || { echo "needs $tool (Debian: valgrind, nginx-light, gcc)"; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && cp "$work"/cg.* "$KEEP"/ 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT

if [ $# -eq 0 ]; then
    swift build -c release --product switchyard 2>&1 | tail -1
    set -- "$(swift build -c release --show-bin-path)/switchyard"
fi
gcc -O2 -shared -fPIC bench/callgrind/sigsuspend_shim.c -o "$work/shim.so" -ldl
fill() {
    sed -e "s|@WORK@|$work|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM|g" -e "s|@PROXY_PORT@|19301|g" -e "s|@SWITCHYARD_PORT@|$SWITCHYARD|g" \
        -e "s|@SIM_PORT@|19303|g" -e "s|@SIM_PROXY_PORT@|19304|g" -e "s|@SLOW_SIM_PORT@|19305|g" -e "s|@RELAY_SIM_PORT@|19307|g" "$1"
}
fill bench/nginx.conf.template > "$work/nginx.conf"
fill bench/routes.bench.yaml.template > "$work/routes.yaml"
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
if [ "$LOAD" = streams ]; then
    "$1" upstream-sim --listen 127.0.0.1:$RELAY_SIM --name relay --script "ok(events=100,interval=10ms)*" 2>/dev/null & pids+=($!)
    total=$(( STREAMS * WAVES )) unit="relayed stream"
else
    total=$(( REQUESTS * CONNECTIONS )) unit=request
fi
for bin in "$@"; do
    # Debian's valgrind 3.19 cannot read Swift's DWARF 5 debug info; the symbol table is enough.
    strip --strip-debug -o "$work/switchyard" "$bin"
    rm -f "$work"/cg.*
    BENCH_KEY=sk-ant-bench-0000000000 LD_PRELOAD="$work/shim.so" valgrind --tool=callgrind \
        --callgrind-out-file="$work/cg.%p" "$work/switchyard" serve --config "$work/routes.yaml" 2>"$work/valgrind.log" &
    pid=$!
    for _ in $(seq 1 240); do curl -fs "http://127.0.0.1:$SWITCHYARD/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
    curl -fs "http://127.0.0.1:$SWITCHYARD/readyz" >/dev/null || { tail -20 "$work/valgrind.log"; exit 1; }
    if [ "$LOAD" = streams ]; then
        python3 bench/relay_streams.py 127.0.0.1 $SWITCHYARD relaystream "$STREAMS" 1 >/dev/null
        callgrind_control -z "$pid" >/dev/null 2>&1
        relayed=$(python3 bench/relay_streams.py 127.0.0.1 $SWITCHYARD relaystream "$STREAMS" "$WAVES")
        case "$relayed" in *'"failed": 0,'*) ;; *) echo "streams failed under valgrind: $relayed"; exit 1 ;; esac
    else
        python3 bench/callgrind/fixed_load.py 127.0.0.1 $SWITCHYARD "$WARMUP" "$CONNECTIONS" >/dev/null
        callgrind_control -z "$pid" >/dev/null 2>&1
        python3 bench/callgrind/fixed_load.py 127.0.0.1 $SWITCHYARD "$REQUESTS" "$CONNECTIONS" >/dev/null
    fi
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"; wait "$pid" 2>/dev/null || true
    dump=$(ls "$work"/cg.*.1)
    instructions=$(awk '/^summary:/ {print $2}' "$dump")
    echo "$bin: $(( instructions / total )) instructions per $unit ($instructions over $total)"
    if [ "$TOP" -gt 0 ]; then
        callgrind_annotate --threshold=100 "$dump" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | sed -n "3,$(( TOP + 2 ))p" \
            | { command -v swift >/dev/null && swift demangle --simplified || cat; } | cut -c1-160
    fi
done
