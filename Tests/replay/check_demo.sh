#!/usr/bin/env bash
# The replay self-check on the demo: `switchyard demo` records an incident (outage, throttling,
# recovery, low headroom), then `switchyard replay` with the demo's own configuration must give
# back every recorded count and each model's breaker transitions, and a candidate with a raised
# failure_threshold must differ. Usage: Tests/replay/check_demo.sh SWITCHYARD_BINARY
#
# The replay orders events by the log's microsecond times; two events in the same microsecond
# could still come back in the other order, so a run that differs is printed and recorded again
# once (none has differed since the microsecond fields came).
set -euo pipefail
bin="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$bin" demo --print-config > "$work/demo.yaml"
sed 's/failure_threshold: 3/failure_threshold: 10/' "$work/demo.yaml" > "$work/threshold10.yaml"
grep -q "failure_threshold: 10" "$work/threshold10.yaml"

field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

for run in 1 2; do
    "$bin" demo --audit "$work/audit-$run.jsonl" > "$work/demo-$run.out" 2>&1
    "$bin" replay --config "$work/demo.yaml" "$work/audit-$run.jsonl" --json > "$work/same-$run.json"
    "$bin" replay --config "$work/demo.yaml" "$work/audit-$run.jsonl" > "$work/same-$run.txt"
    same=$(field "$work/same-$run.json" same_counts)
    requests=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['recorded']['requests'])" "$work/same-$run.json")
    echo "replay self-check, run $run: $requests requests from the demo, same counts: $same"
    if [ "$same" = "True" ]; then break; fi
    cat "$work/same-$run.txt"
    if [ "$run" = 2 ]; then echo "replay with the demo's own configuration did not give back its counts twice"; exit 1; fi
done
grep -q "headroom" "$work/demo-$run.out" || { echo "the demo ran no headroom scene"; exit 1; }
[ "$(grep -c '"reason":"headroom"' "$work/audit-$run.jsonl")" -gt 0 ] || { echo "no request skipped a model for headroom"; exit 1; }

"$bin" replay --config "$work/threshold10.yaml" "$work/audit-$run.jsonl" --json > "$work/raised.json"
"$bin" replay --config "$work/threshold10.yaml" "$work/audit-$run.jsonl" > "$work/raised.txt"
if [ "$(field "$work/raised.json" same_counts)" != "False" ]; then
    cat "$work/raised.txt"
    echo "a raised failure_threshold changed nothing"
    exit 1
fi
echo "replay with failure_threshold: 10: $(grep '^\* differs' "$work/raised.txt")"
echo "replay checks passed"
