"""Relays streams through a proxy at a fixed concurrency: CONNECTIONS keep-alive connections,
each asking for WAVES streams one after the other and reading each to its end.

usage: relay_streams.py HOST PORT MODEL CONNECTIONS WAVES
Prints {"streams": completed, "failed": n, "events": content events seen}.
"""
import asyncio, json, sys

host, port, model, connections, waves = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
body = json.dumps({"model": model, "max_tokens": 256, "stream": True,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
request = (f"POST /v1/messages HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
           f"content-length: {len(body)}\r\n\r\n").encode() + body
completed = failed = events = 0


async def one_connection():
    global completed, failed, events
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        failed += waves
        return
    for _ in range(waves):
        try:
            writer.write(request)
            await writer.drain()
            seen = b""
            # Both proxies answer a stream with chunked framing: its last chunk ends the answer.
            while not seen.endswith(b"\r\n0\r\n\r\n"):
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("closed mid-stream")
                seen += data
            if not seen.startswith(b"HTTP/1.1 200") or b"message_stop" not in seen:
                raise ConnectionError("not a whole stream")
            events += seen.count(b"event: content_block_delta")
            completed += 1
        except (OSError, ConnectionError):
            failed += 1
            break
    writer.close()


async def main():
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    print(json.dumps({"streams": completed, "failed": failed, "events": events, "concurrent": connections}))


asyncio.run(main())
