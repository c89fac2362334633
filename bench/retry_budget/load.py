"""Steady open-loop load for the retry-budget drill: RATE requests a second for SECONDS, each
started on schedule whatever the earlier ones are doing (a caller population, not a closed loop),
on loopback only. Prints one JSON object: requests sent, statuses, caller latency percentiles.

    python3 load.py http://127.0.0.1:19402 ROUTE RATE SECONDS
"""
import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

base, route, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
url = urlparse(base)
assert url.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
body = json.dumps({"model": route, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
lock = threading.Lock()
statuses, latencies = {}, []
local = threading.local()


def one():
    started = time.perf_counter()
    status = 0
    try:
        if getattr(local, "conn", None) is None:
            local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        local.conn.request("POST", "/v1/messages", body, {"content-type": "application/json", "anthropic-version": "2023-06-01"})
        response = local.conn.getresponse()
        response.read()
        status = response.status
    except Exception:
        local.conn = None
    with lock:
        statuses[status] = statuses.get(status, 0) + 1
        latencies.append((time.perf_counter() - started) * 1000)


count = int(rate * seconds)
start = time.perf_counter()
with ThreadPoolExecutor(max_workers=256) as pool:
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        pool.submit(one)
elapsed = time.perf_counter() - start
latencies.sort()


def pct(p):
    return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1) if latencies else None


print(json.dumps({"requests": count, "seconds": round(elapsed, 1), "statuses": statuses, "p50_ms": pct(0.5), "p99_ms": pct(0.99)}))
