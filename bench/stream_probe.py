"""Streaming latency: time to the first content event and to the end of the stream.

usage: stream_probe.py URL MODEL COUNT  -> prints JSON {ttfe_ms: [...], total_ms: [...]}
"""
import http.client, json, sys, time, urllib.parse

url, model, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
parts = urllib.parse.urlsplit(url)
body = json.dumps({"model": model, "max_tokens": 64, "stream": True,
                   "messages": [{"role": "user", "content": "Say hello."}]})
headers = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-bench"}
conn = http.client.HTTPConnection(parts.hostname, parts.port)
ttfe, total = [], []
for _ in range(count):
    start = time.perf_counter()
    conn.request("POST", "/v1/messages", body, headers)
    response = conn.getresponse()
    first = None
    buffered = b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        if first is None:
            buffered += chunk
            if b"content_block_delta" in buffered:
                first = time.perf_counter()
    end = time.perf_counter()
    ttfe.append((first - start) * 1000 if first else None)
    total.append((end - start) * 1000)
print(json.dumps({"ttfe_ms": ttfe, "total_ms": total}))
