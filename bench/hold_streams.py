"""Hold N slow streams open through the router at once; report when all are streaming.

usage: hold_streams.py HOST PORT MODEL N SECONDS
"""
import asyncio, json, sys

host, port, model, n, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
body = json.dumps({"model": model, "max_tokens": 64, "stream": True,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
request = (f"POST /v1/messages HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
           f"content-length: {len(body)}\r\n\r\n").encode() + body
streaming = 0
done = 0
failed = 0

async def one():
    global streaming, done, failed
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        await writer.drain()
        seen = False
        while True:
            data = await reader.read(4096)
            if not data:
                break
            if not seen and b"content_block_delta" in data:
                seen = True
                streaming += 1
            if b"message_stop" in data:
                break
        done += 1
        writer.close()
    except Exception:
        failed += 1

async def main():
    tasks = [asyncio.create_task(one()) for _ in range(n)]
    for _ in range(int(seconds * 10)):
        await asyncio.sleep(0.1)
        if streaming >= n:
            break
    print(json.dumps({"streaming": streaming}), flush=True)
    sys.stdout.flush()
    await asyncio.gather(*tasks)
    print(json.dumps({"completed": done, "failed": failed}), flush=True)

asyncio.run(main())
