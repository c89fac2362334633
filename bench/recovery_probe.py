"""Stream recovery: the added time to the next token when a stream is finished by a continuation.

Sends COUNT streams to ROUTE (whose first model's stream fails after some deltas sent PACE_MS
apart; the router splices in a continuation) and measures, at the caller, the gap between the
last delta before the failure and the first delta after it, against the normal gap between two
deltas (PACE_MS). Also checks every stream is one message (one message_start, one message_stop,
no error).
usage: recovery_probe.py URL ROUTE COUNT  -> JSON {gap_ms: [...], normal_gap_ms: [...], broken: N}
"""
import http.client, json, sys, time, urllib.parse

url, route, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
parts = urllib.parse.urlsplit(url)
body = json.dumps({"model": route, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
conn = http.client.HTTPConnection(parts.hostname, parts.port)
gaps, normal, broken = [], [], 0
for _ in range(count):
    conn.request("POST", "/v1/messages", body, headers)
    response = conn.getresponse()
    buffered = b""
    arrivals = []  # (time, text) of each content_block_delta, in order
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        now = time.perf_counter()
        buffered += chunk
        while b"\n\n" in buffered:
            event, buffered = buffered.split(b"\n\n", 1)
            if b"content_block_delta" in event:
                data = event.split(b"data: ", 1)[1]
                arrivals.append((now, json.loads(data)["delta"].get("text", "")))
            elif b"event: message_start" in event or b"event: message_stop" in event or b"event: error" in event:
                arrivals.append((now, event.split(b"\n", 1)[0].decode()))
    names = [text for _, text in arrivals if text.startswith("event:")]
    if names != ["event: message_start", "event: message_stop"]:
        broken += 1
        continue
    deltas = [(t, text) for t, text in arrivals if not text.startswith("event:")]
    # The continuation's deltas are the ones without "chunk".
    first_cont = next(i for i, (_, text) in enumerate(deltas) if "chunk" not in text)
    gaps.append((deltas[first_cont][0] - deltas[first_cont - 1][0]) * 1000)
    normal += [(deltas[i][0] - deltas[i - 1][0]) * 1000 for i in range(1, first_cont)]
print(json.dumps({"gap_ms": gaps, "normal_gap_ms": normal, "broken": broken}))
