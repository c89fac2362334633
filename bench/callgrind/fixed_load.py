"""A fixed number of keep-alive POST /v1/messages requests (wrk runs for a time, not a count):
`fixed_load.py HOST PORT REQUESTS_PER_CONNECTION CONNECTIONS`. Exits 1 if any answer is not 200."""
import http.client
import sys
import threading

host, port, per_connection, connections = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
body = b'{"model":"claude-sonnet-4-20250514","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}'
headers = {
    "content-type": "application/json",
    "anthropic-version": "2023-06-01",
    "x-api-key": "sk-ant-bench-not-a-real-key",
    "authorization": "Bearer sk-ant-bench-not-a-real-key",
}
failures = []


def run():
    connection = http.client.HTTPConnection(host, port, timeout=120)
    for _ in range(per_connection):
        connection.request("POST", "/v1/messages", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            failures.append(response.status)


threads = [threading.Thread(target=run) for _ in range(connections)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(f"{per_connection * connections} requests, {len(failures)} not 200")
sys.exit(1 if failures else 0)
