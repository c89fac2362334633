"""Upstream attempts per caller request, from a router's audit log (one JSON line per request)."""
import json
import sys

requests = attempts = refused = 0
per_request = {}
for line in open(sys.argv[1]):
    record = json.loads(line)
    if record.get("event") != "request":
        continue
    requests += 1
    n = len(record.get("attempts", []))
    attempts += n
    per_request[n] = per_request.get(n, 0) + 1
    if record.get("error") == "retry_budget":
        refused += 1
load = json.load(open(sys.argv[2]))
seconds = load["seconds"]
print(json.dumps({
    "caller_requests": requests,
    "upstream_attempts": attempts,
    "attempts_per_request": round(attempts / max(requests, 1), 3),
    "retries_per_second": round((attempts - requests) / seconds, 1),
    "requests_by_attempts": dict(sorted(per_request.items())),
    "retries_refused_by_budget": refused,
    "caller_p50_ms": load["p50_ms"],
    "caller_p99_ms": load["p99_ms"],
}))
