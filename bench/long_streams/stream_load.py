"""Open N streaming Messages requests at once and read each to its end.

usage: stream_load.py HOST PORT ROUTE N [RAMP_SECONDS]

Prints one JSON object: how many streams completed (a message_stop seen), how many failed and
how (status, error event, cut), the time to the response head (p50/p99/max), the served model
counts (x-switchyard-model), and how long the whole run took.
"""
import asyncio, json, sys, time, collections

host, port, route, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ramp = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
body = json.dumps({"model": route, "max_tokens": 1024, "stream": True,
                   "messages": [{"role": "user", "content": "Tell me a long story."}]}).encode()
request = (f"POST /v1/messages HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
           f"anthropic-version: 2023-06-01\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body

heads = []
failures = collections.Counter()
statuses = collections.Counter()
models = collections.Counter()
completed = 0

async def one(delay):
    global completed
    await asyncio.sleep(delay)
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(time.monotonic() - start)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        statuses[status] += 1
        for line in lines[1:]:
            if line.lower().startswith("x-switchyard-model:"):
                models[line.split(":", 1)[1].strip()] += 1
        rest = b""
        while True:
            data = await reader.read(65536)
            if not data:
                break
            rest += data
            if len(rest) > 1 << 20:
                rest = rest[-4096:]
        if status != 200:
            failures[f"status {status}"] += 1
        elif b"event: error" in rest:
            failures["event: error"] += 1
        elif b"message_stop" not in rest:
            failures["cut before message_stop"] += 1
        else:
            completed += 1
        writer.close()
    except Exception as error:
        failures[type(error).__name__] += 1

async def main():
    started = time.monotonic()
    await asyncio.gather(*(one(ramp * i / max(1, n)) for i in range(n)))
    heads.sort()
    pick = lambda q: round(heads[min(len(heads) - 1, int(q * len(heads)))] * 1000, 1) if heads else None
    print(json.dumps({
        "streams": n, "completed": completed, "failed": sum(failures.values()), "failures": dict(failures),
        "statuses": {str(k): v for k, v in statuses.items()}, "served_by": dict(models),
        "head_ms": {"p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)},
        "seconds": round(time.monotonic() - started, 1),
    }), flush=True)

asyncio.run(main())
