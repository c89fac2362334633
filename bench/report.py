"""Aggregates one bench/run.sh run into a Markdown table (medians over rounds)."""
import glob, json, os, re, statistics, sys

out, targets = sys.argv[1], sys.argv[2:]

def to_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

def parse(path):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"\s50%\s+([\d.]+(?:us|ms|s))", text)
    p99 = re.search(r"\s99%\s+([\d.]+(?:us|ms|s))", text)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if not (rps and p50 and p99):
        return None
    return float(rps.group(1)), to_ms(p50.group(1)), to_ms(p99.group(1)), int(errors.group(1)) if errors else 0

rows = {}
for path in glob.glob(os.path.join(out, "wrk-*-c*-r*.txt")):
    target, c = re.match(r"wrk-(\w+)-c(\d+)-r\d+\.txt", os.path.basename(path)).groups()
    parsed = parse(path)
    if parsed:
        rows.setdefault((target, int(c)), []).append(parsed)

def med(target, c, index):
    values = [r[index] for r in rows.get((target, c), [])]
    return statistics.median(values) if values else None

concurrencies = sorted({c for _, c in rows})
print("\n## Non-streaming POST /v1/messages (medians of %d rounds)\n" % max(len(v) for v in rows.values()))
print("| target | conc. | RPS | p50 ms | p99 ms | added p50 vs direct ms | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|")
for c in concurrencies:
    direct_p50 = med("direct", c, 1)
    for t in targets:
        rps, p50, p99 = med(t, c, 0), med(t, c, 1), med(t, c, 2)
        if rps is None:
            continue
        errors = sum(r[3] for r in rows[(t, c)])
        added = "" if t == "direct" else "%.3f" % (p50 - direct_p50)
        print("| %s | %d | %.0f | %.3f | %.3f | %s | %d |" % (t, c, rps, p50, p99, added, errors))

# The judged rows: what each concurrency must meet against nginx in the same run (the issue's
# section 10 targets, and c=1 for the idle-service path).
TARGETS = {
    1: {"added": 2.0, "cpu": 2.0},
    16: {"added": 2.0, "cpu": 3.0},
    64: {"rps": 0.5, "p99": 3.0, "cpu": 3.0},
}

def describe(target):
    names = {"rps": "RPS ≥ %.1f", "added": "added ≤ %g", "p99": "p99 ≤ %g"}
    return ", ".join(names[k] % v for k, v in target.items() if k in names)

def verdict(ok):
    return "PASS" if ok else "**FAIL**"

print("\n## Switchyard relative to nginx (same run)\n")
print("| conc. | RPS ratio | added-latency ratio | p99 ratio | target | judged |")
print("|---:|---:|---:|---:|---|---|")
for c in concurrencies:
    if med("nginx", c, 0) is None or med("switchyard", c, 0) is None:
        continue
    d = med("direct", c, 1)
    nginx_added = med("nginx", c, 1) - d
    sy_added = med("switchyard", c, 1) - d
    ratios = {
        "rps": med("switchyard", c, 0) / med("nginx", c, 0),
        "added": sy_added / nginx_added if nginx_added > 0 else float("inf"),
        "p99": med("switchyard", c, 2) / med("nginx", c, 2),
    }
    target = {k: v for k, v in TARGETS.get(c, {}).items() if k != "cpu"}
    if target:
        ok = all(ratios[k] >= v if k == "rps" else ratios[k] <= v for k, v in target.items())
        judged = (describe(target), verdict(ok))
    else:
        judged = ("—", "not judged")
    print("| %d | %.2f | %.2f | %.2f | %s | %s |" % (c, ratios["rps"], ratios["added"], ratios["p99"], *judged))
if "litellm" in targets and med("litellm", 64, 0):
    print("\nLiteLLM at c=64: %.0f RPS = %.4f of nginx's" % (med("litellm", 64, 0), med("litellm", 64, 0) / med("nginx", 64, 0)))

# CPU per proxied request: the router process's user+sys over a wrk run, divided by the requests
# wrk completed. nginx's worker serves the fake upstream too, so its proxy cost is its CPU during
# the nginx run minus what the upstream part costs (measured in the direct run, per request).
def requests_done(path):
    found = re.search(r"(\d+) requests in", open(path).read())
    return int(found.group(1)) if found else 0

def cpu_per_request(target, c):
    values = []
    for path in glob.glob(os.path.join(out, "cpu-%s-c%d-r*.json" % (target, c))):
        cpu = json.load(open(path))
        n = requests_done(path.replace("cpu-", "wrk-").replace(".json", ".txt"))
        if n:
            values.append((cpu["switchyard_ticks"] / cpu["clk_tck"] * 1e6 / n, cpu["nginx_ticks"] / cpu["clk_tck"] * 1e6 / n))
    if not values:
        return None
    return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)

if glob.glob(os.path.join(out, "cpu-*.json")):
    print("\n## CPU time per proxied request (user+sys from /proc, medians of rounds)\n")
    print("| conc. | Switchyard µs/request | nginx worker as proxy µs/request | ratio | target | judged |")
    print("|---:|---:|---:|---:|---|---|")
    for c in concurrencies:
        sy, direct, ng = cpu_per_request("switchyard", c), cpu_per_request("direct", c), cpu_per_request("nginx", c)
        if not (sy and direct and ng):
            continue
        # upstream cost per request (nginx serving the canned answer) is the same in every run
        upstream = direct[1]
        nginx_proxy = ng[1] - upstream
        ratio = sy[0] / nginx_proxy if nginx_proxy > 0 else float("inf")
        limit = TARGETS.get(c, {}).get("cpu")
        judged = ("≤ %g" % limit, verdict(ratio <= limit)) if limit else ("—", "not judged")
        print("| %d | %.1f | %.1f | %.2f | %s | %s |" % (c, sy[0], nginx_proxy, ratio, *judged))

if "switchyard_chat" in targets and any(t == "switchyard_chat" for t, _ in rows):
    # The same conversation sent to /v1/chat/completions: translated to Messages on the way in and
    # to a chat.completion on the way out, routed and audited as the /v1/messages row is.
    print("\n## POST /v1/chat/completions through Switchyard, against its /v1/messages row (same run)\n")
    print("| conc. | chat RPS | chat p50 ms | chat p99 ms | chat CPU µs/request | RPS / messages' | added p50 / messages' | CPU / messages' |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in concurrencies:
        if med("switchyard_chat", c, 0) is None or med("switchyard", c, 0) is None:
            continue
        d = med("direct", c, 1)
        chat_cpu, msg_cpu = cpu_per_request("switchyard_chat", c), cpu_per_request("switchyard", c)
        added_ratio = (med("switchyard_chat", c, 1) - d) / (med("switchyard", c, 1) - d)
        print("| %d | %.0f | %.3f | %.3f | %s | %.2f | %.2f | %s |" % (
            c, med("switchyard_chat", c, 0), med("switchyard_chat", c, 1), med("switchyard_chat", c, 2),
            "%.1f" % chat_cpu[0] if chat_cpu else "—", med("switchyard_chat", c, 0) / med("switchyard", c, 0), added_ratio,
            "%.2f" % (chat_cpu[0] / msg_cpu[0]) if chat_cpu and msg_cpu else "—"))

print("\n## Streaming (20 content events 5 ms apart, 200 sequential streams)\n")
print("| path | first content event p50 ms | p99 ms | full stream p50 ms |")
print("|---|---:|---:|---:|")
stream = {}
for name in ["direct", "nginx", "switchyard"]:
    path = os.path.join(out, "stream-%s.json" % name)
    if not os.path.exists(path):
        continue
    data = json.load(open(path))
    ttfe = sorted(x for x in data["ttfe_ms"] if x is not None)
    total = sorted(data["total_ms"])
    stream[name] = statistics.median(ttfe)
    print("| %s | %.3f | %.3f | %.3f |" % (name, statistics.median(ttfe), ttfe[int(len(ttfe) * 0.99) - 1], statistics.median(total)))
if "direct" in stream and "switchyard" in stream:
    print("\nSwitchyard's first content event: %+.3f ms vs the upstream's (target: within 1 ms)" % (stream["switchyard"] - stream["direct"]))

relay = {}
for path in glob.glob(os.path.join(out, "relay-*-r*.json")):
    run = json.load(open(path))
    if run["result"]["streams"] > 0:
        relay.setdefault(run["target"], []).append((run["ticks"] / run["clk_tck"] * 1e6 / run["result"]["streams"], run["result"]))
if relay:
    print("\n## Streams relayed (100 content events 10 ms apart, %d concurrent; CPU user+sys of the proxy process)\n" % relay[next(iter(relay))][0][1].get("concurrent", 400))
    print("| proxy | streams per round | failed | CPU µs per stream | ratio | target | judged |")
    print("|---|---:|---:|---:|---:|---|---|")
    ng = statistics.median(r[0] for r in relay.get("nginx", [])) if "nginx" in relay else None
    for name in ("nginx", "switchyard"):
        if name not in relay:
            continue
        cpu = statistics.median(r[0] for r in relay[name])
        streams = statistics.median(r[1]["streams"] for r in relay[name])
        failed = sum(r[1]["failed"] for r in relay[name])
        if name == "switchyard" and ng:
            ratio = cpu / ng
            print("| %s | %d | %d | %.1f | %.2f | ≤ 1.5 | %s |" % (name, streams, failed, cpu, ratio, "PASS" if ratio <= 1.5 and failed == 0 else "**FAIL**"))
        else:
            print("| %s | %d | %d | %.1f | 1.00 | | |" % (name, streams, failed, cpu))

memory = json.load(open(os.path.join(out, "memory.json")))
print("\n## Memory\n")
print("| | RSS |")
print("|---|---:|")
print("| Switchyard idle | %.1f MB |" % (memory["idle_rss_kb"] / 1024))
print("| Switchyard with the concurrent slow streams held open | %.1f MB |" % (memory["streams_rss_kb"] / 1024))
print("| Switchyard peak during wrk | %.1f MB |" % (memory["switchyard_peak_kb"] / 1024))
print("| nginx worker peak | %.1f MB |" % (memory["nginx_worker_peak_kb"] / 1024))
log = os.path.join(out, "memory.json.log")
if os.path.exists(log):
    print("\nstreams: " + open(log).read().replace("\n", " "))
print("\nmachine: " + memory["machine"])
