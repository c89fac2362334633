"""End-to-end check with the official anthropic Python SDK, unmodified, pointed at Switchyard.

Run by .ci/run against a router started on the example test config (Tests/sdk/routes.yaml)
with two upstream-sim servers behind it:
  sim a (primary of route `default`): healthy
  sim b: healthy
  sim c (primary of route `flaky`): answers 529 overloaded to every request
Usage: e2e.py BASE_URL
"""
import sys

import anthropic

base_url = sys.argv[1]
client = anthropic.Anthropic(base_url=base_url, api_key="sk-ant-caller-key-for-e2e", max_retries=2)
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


# 1. messages.create through an alias.
message = client.messages.create(
    model="claude-sonnet-4-0",
    max_tokens=64,
    messages=[{"role": "user", "content": "Say hello"}],
)
check(message.type == "message", "messages.create returns a Message")
check(message.model == "claude-sonnet-4-20250514", "the upstream model id is reported")
check(len(message.content) == 1 and message.content[0].text.startswith("chunk0"), "content is relayed")
check(message.usage.input_tokens == 12, "usage is relayed")
check((message._request_id or "").startswith("req_a_"), "_request_id is the upstream's request id")

# 2. The raw response carries Switchyard's headers.
raw = client.messages.with_raw_response.create(
    model="default", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
)
check(raw.headers.get("x-switchyard-route") == "default", "x-switchyard-route header")
check(raw.headers.get("x-switchyard-model") == "sonnet", "x-switchyard-model header")
check((raw.headers.get("x-request-id") or "").startswith("sy_"), "x-request-id header")

# 3. messages.stream: events and the accumulated final message.
with client.messages.stream(
    model="default", max_tokens=64, messages=[{"role": "user", "content": "Stream please"}]
) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
check(text == "chunk0 chunk1 chunk2 ", "messages.stream text_stream yields every delta in order")
check(final.stop_reason == "end_turn", "final message from the stream")
check(final.usage.output_tokens == 4, "stream usage from message_delta")

# 4. Raw streaming with stream=True.
events = [event.type for event in client.messages.create(
    model="default", max_tokens=16, stream=True, messages=[{"role": "user", "content": "hi"}]
)]
check(events[0] == "message_start" and events[-1] == "message_stop", "stream=True yields message_start .. message_stop")

# 5. Failover is invisible: the primary of `flaky` answers 529, the caller gets haiku's answer.
raw = client.messages.with_raw_response.create(
    model="flaky", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
)
check(raw.http_response.status_code == 200, "failover: 200 although the primary is overloaded")
check(raw.headers.get("x-switchyard-model") == "haiku", "failover: served by the second model")
with client.messages.stream(model="flaky", max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as stream:
    check("".join(stream.text_stream) == "chunk0 chunk1 chunk2 ", "failover: streams too")

# 6. Errors Switchyard makes itself raise the SDK's usual exception classes.
try:
    client.messages.create(model="no-such-route", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    check(False, "unknown route raises NotFoundError")
except anthropic.NotFoundError as error:
    check("default" in str(error), "unknown route raises NotFoundError listing the routes")

try:
    client.messages.create(model="default", max_tokens=8, messages="not a list")
    check(False, "bad request raises BadRequestError")
except anthropic.BadRequestError:
    check(True, "invalid messages raises BadRequestError")

# 7. count_tokens.
count = client.messages.count_tokens(model="default", messages=[{"role": "user", "content": "hi"}])
check(count.input_tokens == 42, "count_tokens is forwarded")

# 8. models.list shows routes and aliases.
ids = [model.id for model in client.models.list()]
check("default" in ids and "claude-sonnet-4-0" in ids, "models.list lists routes and aliases")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("anthropic SDK end-to-end: all checks passed")
