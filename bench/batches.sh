#!/usr/bin/env bash
# Message Batches throughput (mode: direct) on a 10,000-request batch against upstream-sim,
# release build, at concurrency 8 and 64, on SQLite and on PostgreSQL (a throwaway cluster from
# ops/postgres-test-cluster.sh when PostgreSQL is installed): requests/s from create to ended,
# peak RSS, and the store's size per 1,000 requests.
#   bash bench/batches.sh            # REQUESTS=10000 CONCURRENCY="8 64" STORES="sqlite postgres"
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-10000}
CONCURRENCY=${CONCURRENCY:-"8 64"}
STORES=${STORES:-"sqlite postgres"}
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    SWITCHYARD_PG_TEST_DIR="$work/pg" SWITCHYARD_PG_TEST_PORT=19399 ops/postgres-test-cluster.sh destroy >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building switchyard (release)"
swift build -c release --product switchyard 2>&1 | tail -1
bin="$(swift build -c release --show-bin-path)/switchyard"
"$bin" upstream-sim --listen 127.0.0.1:19311 --name fast --script 'ok*' 2>/dev/null & pids+=($!)

python3 - "$REQUESTS" > "$work/create.json" <<'PY'
import json, sys
n = int(sys.argv[1])
print(json.dumps({"requests": [{"custom_id": f"r{i}", "params": {"model": "default", "max_tokens": 32,
      "messages": [{"role": "user", "content": f"batch item {i}: " + "x" * 200}]}} for i in range(n)]}))
PY

for store in $STORES; do
    case $store in
    sqlite) url="sqlite:$work/batches.db" ;;
    postgres)
        if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then echo "== postgres: not installed, skipped"; continue; fi
        url="$(SWITCHYARD_PG_TEST_DIR="$work/pg" SWITCHYARD_PG_TEST_PORT=19399 ops/postgres-test-cluster.sh start | sed -n 's/.*URL=//p')"
        url="$url?schema=bench" ;;
    esac
    for c in $CONCURRENCY; do
        rm -f "$work"/batches.db*
        cat > "$work/routes.yaml" <<YAML
version: 1
server: { listen: 127.0.0.1:19310 }
providers:
  sim: { type: anthropic, base_url: "http://127.0.0.1:19311", api_key_env: BENCH_KEY, max_connections: 256 }
models:
  sonnet: { provider: sim, model: claude-sonnet-4-20250514 }
routes:
  default: { models: [sonnet] }
batches: { store: "$url", concurrency: $c }
logging: { audit: $work/audit.jsonl }
YAML
        BENCH_KEY=sk-ant-bench-0000000000 "$bin" serve --config "$work/routes.yaml" 2>"$work/router.log" & sy=$!
        for _ in $(seq 1 200); do
            code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19310/v1/messages/batches || true)
            [ "$code" = 200 ] && break
            sleep 0.05
        done
        start=$(date +%s.%N)
        id=$(curl -s http://127.0.0.1:19310/v1/messages/batches -H 'content-type: application/json' --data-binary @"$work/create.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
        created=$(date +%s.%N)
        while true; do
            status=$(curl -s "http://127.0.0.1:19310/v1/messages/batches/$id" | python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["processing_status"], b["request_counts"]["succeeded"])')
            [ "${status%% *}" = ended ] && break
            sleep 0.2
        done
        ended=$(date +%s.%N)
        peak=$(awk '/^VmHWM/ {print $2}' "/proc/$sy/status")
        if [ "$store" = sqlite ]; then
            size=$(( $(stat -c %s "$work/batches.db") + $(stat -c %s "$work/batches.db-wal" 2>/dev/null || echo 0) ))
        else
            size=$(runuser -u postgres -- psql -h "$work/pg" -p 19399 -d switchyard_test -tAc \
                "select pg_total_relation_size('bench.batch_requests') + pg_total_relation_size('bench.batches')" 2>/dev/null || echo 0)
            runuser -u postgres -- psql -h "$work/pg" -p 19399 -d switchyard_test -qc "drop schema bench cascade" >/dev/null 2>&1 || true
        fi
        python3 - "$store" "$c" "$REQUESTS" "$start" "$created" "$ended" "$peak" "$size" "$status" <<'PY'
import sys
store, c, n, start, created, ended, peak, size, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:6]), float(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), sys.argv[9]
print(f"   {store:8} concurrency {c:3}: create {created - start:.2f} s, run {ended - created:.1f} s = {n / (ended - created):.0f} requests/s "
      f"({status.split()[1]} succeeded); peak RSS {peak / 1024:.0f} MB; store {size / 1024 / 1024:.1f} MiB = {size / n * 1000 / 1024:.0f} KiB per 1,000 requests")
PY
        kill $sy; wait $sy 2>/dev/null || true
    done
done
