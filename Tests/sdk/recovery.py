"""Stream recovery read by the official anthropic SDK: route `recovering` starts on a sim whose
streams fail after two text deltas (event: error, overloaded_error); the router splices in a
continuation from the next model. The SDK's messages.stream() and get_final_message() must see
one well-formed message.
Usage: recovery.py ROUTER_URL
"""
import sys

import anthropic

client = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-ant-caller-key-for-e2e", max_retries=0)
failures = []
routed = 0


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


with client.messages.stream(model="recovering", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
routed += 1
check(text == "chunk0 chunk1 cont0 cont1 cont2", f"messages.stream(): the partial text and its continuation as one text ({text!r})")
check(len(final.content) == 1 and final.content[0].text == text, "get_final_message(): one text block holding all of it")
check(final.stop_reason == "end_turn", "get_final_message(): the continuation's stop reason")
check(final.usage.output_tokens == 5, "get_final_message(): output tokens, the sum of both parts (1 reported by the failed stream, 4 by the continuation)")

events = []
with client.messages.create(model="recovering", max_tokens=64, stream=True, messages=[{"role": "user", "content": "hi"}]) as raw:
    events = [event.type for event in raw]
routed += 1
check(events.count("message_start") == 1 and events.count("message_stop") == 1 and "error" not in events,
      "stream=True: one message_start, one message_stop, no error")

print(f"ROUTED {routed}")
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("stream recovery with the anthropic SDK: all checks passed")
