#!/usr/bin/env python3
"""A stand-in for the router's admin surface, for developing and testing the dashboard page.

Python 3 standard library only. It serves:

  GET  /admin                              the page, read from Sources/SwitchyardCore/Admin/DashboardPage.swift
                                           on every request (that file holds the only copy), with the router's CSP
  GET  /admin/events                       SSE: `event: snapshot` on connect and every second after
  POST /admin/models/{name}/disable        drain a model; /enable undrains it
  POST /mock/outage?model=NAME&seconds=N   the model's breaker opens for N seconds, then half_open, then closed
  POST /mock/drop-streams                  ends every open /admin/events stream (the page should reconnect)

With --token, every /admin/* call but the page itself needs `Authorization: Bearer <token>`; without it
the mock behaves like a router in loopback mode and asks for nothing.

Traffic is simulated per second: two routes over three models, Poisson arrivals, lognormal latencies, a
few failed attempts that fail over to the next model, now and then a rate limit, and batches that progress.
The first 15 minutes are simulated at start (with one past outage) so the charts have history.
"""

import argparse
import json
import math
import os
import random
import re
import string
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

BUCKET_S = 10
BUCKETS = 90
HALF_OPEN_S = 2.0
CSP = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'"
PAGE_SWIFT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Sources", "SwitchyardCore", "Admin", "DashboardPage.swift")


def page_from_swift(path):
    """The contents of the first raw multi-line string literal (#\"\"\" ... \"\"\"#) in a Swift file.

    Swift strips the closing delimiter's indentation from every line; so does this. The page uses no
    escapes (a raw string has none but backslash-hash), so nothing else needs undoing.
    """
    lines = open(path, encoding="utf-8").read().split("\n")
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith('#"""'))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == '"""#')
    indent = len(lines[end]) - len(lines[end].lstrip())
    return "\n".join(line[indent:] for line in lines[start + 1:end])


def rid(prefix, n=22):
    return prefix + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(math.ceil(q * len(s))) - 1)]


def poisson(lam):
    # Knuth's method; lam stays small here.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= random.random()
        if p <= limit:
            return k
        k += 1


class Model:
    def __init__(self, name, provider, platform, upstream, latency_ms):
        self.name, self.provider, self.platform, self.upstream = name, provider, platform, upstream
        self.latency_ms = latency_ms
        self.open_until = None        # sim seconds; breaker open until then, half_open for HALF_OPEN_S after
        self.consecutive_failures = 0
        self.drained_by = None
        self.rate_limited_until = None
        self.last_error = None
        self.buckets = {}             # bucket index -> {"n", "err", "lat": []}

    def breaker(self, now):
        if self.open_until is None:
            return "closed"
        if now < self.open_until:
            return "open"
        if now < self.open_until + HALF_OPEN_S:
            return "half_open"
        self.open_until = None
        self.consecutive_failures = 0
        return "closed"


class Route:
    def __init__(self, name, models, base_rps, period_s):
        self.name, self.models, self.base_rps, self.period_s = name, models, base_rps, period_s
        self.buckets = {}             # bucket index -> {"n", "err", "lat": [], "served": {model: n}}


class Sim:
    def __init__(self):
        self.lock = threading.Lock()
        self.models = {m.name: m for m in [
            Model("sonnet", "anthropic", "anthropic", "claude-sonnet-4-5", 820),
            Model("sonnet-bedrock", "bedrock", "bedrock", "anthropic.claude-sonnet-4-5-v1:0", 960),
            Model("haiku", "anthropic", "anthropic", "claude-haiku-4-5", 310),
        ]}
        self.routes = [
            Route("default", ["sonnet", "sonnet-bedrock", "haiku"], 1.6, 300),
            Route("fast", ["haiku", "sonnet"], 2.8, 420),
        ]
        self.decisions = deque(maxlen=200)
        self.batches = []
        self.clock = time.time() - BUCKETS * BUCKET_S
        self._seed_batches()
        # Fifteen minutes of history, with an outage of sonnet ten minutes ago.
        with self.lock:
            self._advance(self.clock + 300)
            self._outage("sonnet", 45, self.clock)
            self._advance(time.time())

    def _seed_batches(self):
        t = self.clock
        self.batches = [
            {"id": rid("msgbatch_01"), "processing_status": "ended", "created_at_ms": int((t + 100) * 1000),
             "request_counts": {"processing": 0, "succeeded": 118, "errored": 2, "canceled": 0, "expired": 0}},
            {"id": rid("msgbatch_01"), "processing_status": "canceling", "created_at_ms": int((t + 400) * 1000),
             "request_counts": {"processing": 40, "succeeded": 25, "errored": 0, "canceled": 35, "expired": 0}},
        ]
        self._new_batch(t + 700, 480)

    def _new_batch(self, t, total):
        self.batches.insert(0, {"id": rid("msgbatch_01"), "processing_status": "in_progress", "created_at_ms": int(t * 1000),
                                "request_counts": {"processing": total, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}})
        del self.batches[5:]

    # --- simulation ---

    def _advance(self, until):
        while self.clock + 1 <= until:
            self.clock += 1
            self._second(self.clock)

    def _second(self, now):
        for m in self.models.values():
            if m.rate_limited_until is not None and now >= m.rate_limited_until:
                m.rate_limited_until = None
            m.breaker(now)
        if random.random() < 0.003:
            m = random.choice(list(self.models.values()))
            m.rate_limited_until = now + random.randint(5, 20)
            m.last_error = "429 rate_limit_error (" + rid("req_011C", 16) + ")"
        for route in self.routes:
            rate = max(0.2, route.base_rps * (1 + 0.35 * math.sin(2 * math.pi * now / route.period_s)))
            for _ in range(poisson(rate)):
                self._request(route, now + random.random())
        for b in self.batches:
            c = b["request_counts"]
            if b["processing_status"] == "in_progress" and c["processing"]:
                k = min(c["processing"], random.choice([0, 0, 1, 1, 2, 3]))
                c["processing"] -= k
                errs = sum(1 for _ in range(k) if random.random() < 0.03)
                c["succeeded"] += k - errs
                c["errored"] += errs
                if not c["processing"]:
                    b["processing_status"] = "ended"
            elif b["processing_status"] == "canceling" and c["processing"]:
                k = min(c["processing"], 1)
                c["processing"] -= k
                c["canceled"] += k
                if not c["processing"]:
                    b["processing_status"] = "ended"
        if not any(b["processing_status"] == "in_progress" for b in self.batches):
            self._new_batch(now, random.choice([120, 300, 640]))

    def _request(self, route, ts):
        bucket = int(ts // BUCKET_S)
        attempts, served, status, total_ms = [], None, 503, 0.0
        first = route.models[0]
        for name in route.models:
            m = self.models[name]
            if m.drained_by or m.breaker(ts) == "open" or m.rate_limited_until is not None:
                continue
            lat = m.latency_ms * random.lognormvariate(0, 0.38)
            roll = random.random()
            mb = m.buckets.setdefault(bucket, {"n": 0, "err": 0, "lat": []})
            mb["n"] += 1
            if roll < 0.012:
                code, kind = (529, "overloaded_error") if roll < 0.008 else (500, "api_error")
                lat = lat * 0.2
                total_ms += lat
                mb["err"] += 1
                m.consecutive_failures += 1
                m.last_error = "%d %s (%s)" % (code, kind, rid("req_011C", 16))
                attempts.append("%s: %s" % (name, m.last_error))
                continue
            m.consecutive_failures = 0
            mb["lat"].append(lat)
            total_ms += lat
            attempts.append("%s: 200" % name)
            served, status = name, 200
            break
        rb = route.buckets.setdefault(bucket, {"n": 0, "err": 0, "lat": [], "served": {}})
        rb["n"] += 1
        if served:
            rb["lat"].append(total_ms)
            rb["served"][served] = rb["served"].get(served, 0) + 1
        else:
            rb["err"] += 1
            if not attempts:
                attempts.append("no model available")
        self.decisions.appendleft({
            "ts_ms": int(ts * 1000), "request_id": rid("sy_01", 20), "route": route.name, "model": served,
            "downgraded": served is not None and served != first, "status": status,
            "outcome": "ok" if served else "all_models_failed", "attempts": attempts, "duration_ms": int(total_ms)})

    def _outage(self, name, seconds, now):
        m = self.models[name]
        # Three failed attempts open the breaker, as the router's default policy would.
        bucket = int(now // BUCKET_S)
        mb = m.buckets.setdefault(bucket, {"n": 0, "err": 0, "lat": []})
        for route in self.routes:
            if name in route.models:
                nxt = next((x for x in route.models if x != name), None)
                for _ in range(3 if route.models[0] == name else 1):
                    err_id = rid("req_011C", 16)
                    mb["n"] += 1
                    mb["err"] += 1
                    m.last_error = "500 api_error (%s)" % err_id
                    rb = route.buckets.setdefault(bucket, {"n": 0, "err": 0, "lat": [], "served": {}})
                    rb["n"] += 1
                    rb["lat"].append(1200)
                    if nxt:
                        rb["served"][nxt] = rb["served"].get(nxt, 0) + 1
                    self.decisions.appendleft({
                        "ts_ms": int(now * 1000), "request_id": rid("sy_01", 20), "route": route.name, "model": nxt,
                        "downgraded": route.models[0] == name, "status": 200, "outcome": "ok",
                        "attempts": ["%s: 500 api_error (%s)" % (name, err_id), "%s: 200" % nxt], "duration_ms": 1200})
        m.consecutive_failures = 3
        m.open_until = now + seconds

    # --- API ---

    def outage(self, name, seconds):
        with self.lock:
            if name not in self.models:
                return False
            now = time.time()
            self._advance(now)
            self._outage(name, seconds, now)
            return True

    def set_drained(self, name, drained, by):
        with self.lock:
            m = self.models.get(name)
            if not m:
                return None
            m.drained_by = by if drained else None
            return {"model": name, "drained": drained}

    def snapshot(self):
        with self.lock:
            now = time.time()
            self._advance(now)
            cur = int(now // BUCKET_S)
            idx = list(range(cur - BUCKETS + 1, cur + 1))
            partial = max(1.0, now - cur * BUCKET_S)
            span = lambda i: partial if i == cur else BUCKET_S  # noqa: E731
            window = idx[-6:]
            window_s = (len(window) - 1) * BUCKET_S + partial

            def series(buckets):
                empty = {"n": 0, "err": 0, "lat": []}
                bs = [buckets.get(i, empty) for i in idx]
                return {
                    "rps": [round(b["n"] / span(i), 3) for i, b in zip(idx, bs)],
                    "error_share": [round(b["err"] / b["n"], 4) if b["n"] else 0 for b in bs],
                    "p50_ms": [round(percentile(b["lat"], 0.5)) if b["lat"] else None for b in bs],
                    "p99_ms": [round(percentile(b["lat"], 0.99)) if b["lat"] else None for b in bs],
                }

            def current(buckets):
                n = sum(buckets.get(i, {}).get("n", 0) for i in window)
                err = sum(buckets.get(i, {}).get("err", 0) for i in window)
                lat = [x for i in window for x in buckets.get(i, {}).get("lat", [])]
                p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
                return {"rps": round(n / window_s, 3), "error_share": round(err / n, 4) if n else 0,
                        "p50_ms": round(p50) if p50 else None, "p99_ms": round(p99) if p99 else None}

            routes = []
            for r in self.routes:
                h = series(r.buckets)
                h["served"] = {name: [r.buckets.get(i, {}).get("served", {}).get(name, 0) for i in idx] for name in r.models}
                routes.append(dict(name=r.name, models=r.models, history=h, **current(r.buckets)))
            models = []
            for m in self.models.values():
                state = m.breaker(now)
                cur_m = current(m.buckets)
                models.append(dict(
                    name=m.name, provider=m.provider, platform=m.platform, upstream_model=m.upstream,
                    breaker=state, open_remaining_ms=int((m.open_until - now) * 1000) if state == "open" else None,
                    consecutive_failures=m.consecutive_failures, drained=m.drained_by is not None, drained_by=m.drained_by,
                    rate_limited_remaining_ms=int((m.rate_limited_until - now) * 1000) if m.rate_limited_until else None,
                    in_flight=poisson(cur_m["rps"] * m.latency_ms / 1000), last_error=m.last_error,
                    history=series(m.buckets), **cur_m))
            for store in [m.buckets for m in self.models.values()] + [r.buckets for r in self.routes]:
                for k in [k for k in store if k < idx[0]]:
                    del store[k]
            return {"now_ms": int(now * 1000), "bucket_ms": BUCKET_S * 1000, "routes": routes, "models": models,
                    "decisions": list(self.decisions)[:50], "batches": json.loads(json.dumps(self.batches))}


class Handler(BaseHTTPRequestHandler):
    server_version = "switchyard-mock-admin"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("mock_admin: " + fmt % args + "\n")

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, kind, message):
        self._json(status, {"type": "error", "error": {"type": kind, "message": message}})

    def _authorized(self):
        token = self.server.token
        if token is None:
            return True
        if self.headers.get("authorization") == "Bearer " + token:
            return True
        self._error(401, "authentication_error", "admin calls need Authorization: Bearer <token>"
                    if not self.headers.get("authorization") else "invalid admin token")
        return False

    def do_GET(self):
        path = urlparse(self.path).path
        if path in ("/admin", "/admin/"):
            try:
                page = (open(self.server.page_file, encoding="utf-8").read() if self.server.page_file
                        else page_from_swift(PAGE_SWIFT)).encode()
            except (OSError, StopIteration) as e:
                return self._error(500, "api_error", "cannot read the page: %s" % e)
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-security-policy", CSP)
            self.send_header("cache-control", "no-store")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif path == "/admin/events":
            if self._authorized():
                self._events()
        elif path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
        else:
            self._error(404, "not_found_error", "no endpoint GET %s" % path)

    def _events(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-store")
        self.end_headers()
        generation = self.server.stream_generation
        start = time.monotonic()
        sent = 0
        try:
            while generation == self.server.stream_generation and not self.server.stopping:
                body = json.dumps(self.server.sim.snapshot(), separators=(",", ":"))
                self.wfile.write(("event: snapshot\ndata: %s\n\n" % body).encode())
                self.wfile.flush()
                sent += 1
                while time.monotonic() < start + sent and generation == self.server.stream_generation:
                    time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        url = urlparse(self.path)
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        if url.path == "/mock/outage":
            q = parse_qs(url.query)
            name, seconds = q.get("model", [""])[0], float(q.get("seconds", ["10"])[0])
            if not self.server.sim.outage(name, seconds):
                return self._error(404, "not_found_error", "no model named '%s'" % name)
            return self._json(200, {"model": name, "breaker": "open", "seconds": seconds})
        if url.path == "/mock/drop-streams":
            self.server.stream_generation += 1
            return self._json(200, {"dropped": True})
        m = re.fullmatch(r"/admin/models/([^/]+)/(disable|enable)", url.path)
        if not m:
            return self._error(404, "not_found_error", "no endpoint POST %s" % url.path)
        if not self._authorized():
            return
        name = unquote(m.group(1))
        by = "SWITCHYARD_ADMIN_TOKEN" if self.server.token else "loopback"
        result = self.server.sim.set_drained(name, m.group(2) == "disable", by)
        if result is None:
            known = ", ".join(self.server.sim.models)
            return self._error(404, "not_found_error", "no model named '%s' (models: %s)" % (name, known))
        self._json(200, result)


def serve(host="127.0.0.1", port=0, token=None, page_file=None, verbose=False):
    """Starts the mock in a background thread; returns the server (server.server_address, server.shutdown())."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.token = token
    server.page_file = page_file
    server.verbose = verbose
    server.stopping = False
    server.stream_generation = 0
    server.sim = Sim()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8099, help="0 picks a free port (printed on start)")
    ap.add_argument("--token", help="admin token the /admin/* calls must carry; without it, none is asked for")
    ap.add_argument("--page-file", help="serve this HTML file instead of the page in DashboardPage.swift")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args()
    server = serve(args.host, args.port, args.token, args.page_file, args.verbose)
    host, port = server.server_address[:2]
    print("mock admin on http://%s:%d/admin (token %s)" % (host, port, "required" if args.token else "not required"), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stopping = True
        server.shutdown()


if __name__ == "__main__":
    main()
