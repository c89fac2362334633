"""The official openai SDK, unmodified, against Switchyard's /v1/chat/completions; and the
official anthropic SDK against a route whose Claude model fails over to an OpenAI-compatible one.

Routes (openai_router.yaml): default = Claude; mixed = a failing Claude, then gpt-4o on an
OpenAI-mode sim; down = the failing Claude alone; broke = an OpenAI model out of quota, then Claude.
Prints CHAT n (the /v1/chat/completions requests made, each one audit line) and TRANSLATED n
(the answers an OpenAI-compatible model gave), which openai_router.sh checks against the audit log.

Usage: openai_router.py ROUTER_URL
"""
import base64
import json
import struct
import sys
import zlib

import anthropic
import openai

url = sys.argv[1]
client = openai.OpenAI(base_url=url + "/v1", api_key="caller-key", max_retries=0)
claude = anthropic.Anthropic(base_url=url, api_key="caller-key", max_retries=0)
passed = 0
failures = []
chat_requests = 0
translated = 0


def check(condition, what):
    global passed
    print(("ok   " if condition else "FAIL ") + what)
    if condition:
        passed += 1
    else:
        failures.append(what)


def png_data_url():
    """A 1x1 PNG as a data URL."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(raw).decode()


WEATHER = [{
    "type": "function",
    "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]

# 1. A completion over Claude.
raw = client.chat.completions.with_raw_response.create(model="default", messages=conversation, max_completion_tokens=50)
chat_requests += 1
completion = raw.parse()
check(completion.object == "chat.completion" and completion.model == "default", "create: a chat.completion for the route asked")
check(bool(completion.choices[0].message.content) and completion.choices[0].finish_reason == "stop", "create: text and finish_reason stop")
check(completion.usage.prompt_tokens > 0 and completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens,
      "create: usage in prompt/completion tokens")
check(raw.headers.get("x-switchyard-model") == "sonnet" and raw.headers.get("x-request-id"), "create: Switchyard's headers")

# 2. A stream with include_usage.
pieces, reasons, usage = [], [], None
for chunk in client.chat.completions.create(model="claude", messages=conversation, stream=True, stream_options={"include_usage": True}):
    if chunk.usage:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            reasons.append(choice.finish_reason)
chat_requests += 1
check(len(pieces) > 1 and reasons == ["stop"], "stream: content deltas and one finish_reason")
check(usage is not None and usage.completion_tokens > 0, "stream: the usage chunk of include_usage")

# 3. Failover to an OpenAI-compatible model, with a tool call.
raw = client.chat.completions.with_raw_response.create(
    model="mixed", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=WEATHER, tool_choice="required")
chat_requests += 1
translated += 1
completion = raw.parse()
call = (completion.choices[0].message.tool_calls or [None])[0]
check(call is not None and call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments), dict),
      "failover: a tool call with JSON arguments")
check(completion.choices[0].finish_reason == "tool_calls", "failover: finish_reason tool_calls")
check(raw.headers.get("x-switchyard-model") == "gpt-4o" and raw.headers.get("x-switchyard-translated") == "true",
      "failover: served by the OpenAI-compatible model, translated")

# 4. The tool's result, back in.
completion = client.chat.completions.create(model="mixed", messages=[
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": call.function.arguments}}]},
    {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
], tools=WEATHER)
chat_requests += 1
translated += 1
check('tool said: "sunny"' in (completion.choices[0].message.content or ""), "tool result: reaches the model as a tool message")

# 5. A streamed tool call: arguments in deltas.
arguments, names, reasons = "", [], []
for chunk in client.chat.completions.create(model="mixed", messages=[{"role": "user", "content": "Weather?"}], tools=WEATHER,
                                            tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True):
    for choice in chunk.choices:
        for delta in choice.delta.tool_calls or []:
            if delta.function and delta.function.name:
                names.append(delta.function.name)
            if delta.function and delta.function.arguments:
                arguments += delta.function.arguments
        if choice.finish_reason:
            reasons.append(choice.finish_reason)
chat_requests += 1
translated += 1
check(names == ["get_weather"] and isinstance(json.loads(arguments), dict) and reasons == ["tool_calls"], "stream: a tool call's arguments in deltas")

# 6. Images by data URL and by URL.
completion = client.chat.completions.create(model="mixed", messages=[{"role": "user", "content": [
    {"type": "text", "text": "What is this?"},
    {"type": "image_url", "image_url": {"url": png_data_url()}},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
]}])
chat_requests += 1
translated += 1
check("saw 2 images" in (completion.choices[0].message.content or ""), "images: a data URL and a URL reach the model")

# 7. Errors as the SDK's own exception classes, in OpenAI's envelope.
try:
    client.chat.completions.create(model="default", messages=conversation, n=2)
    check(False, "n=2 is refused")
except openai.BadRequestError as error:
    check(error.status_code == 400 and error.param == "n" and error.type == "invalid_request_error", "n=2: BadRequestError naming param n")
chat_requests += 1
try:
    client.chat.completions.create(model="no-such-route", messages=conversation)
    check(False, "an unknown model is refused")
except openai.NotFoundError as error:
    check(error.code == "model_not_found", "unknown model: NotFoundError, code model_not_found")
chat_requests += 1
try:
    client.chat.completions.create(model="down", messages=conversation)
    check(False, "a failing route fails")
except openai.InternalServerError as error:
    check(error.status_code >= 500 and error.type == "server_error", "failing route: InternalServerError, type server_error")
chat_requests += 1

# 8. An OpenAI model out of quota: Claude serves, at once.
raw = client.chat.completions.with_raw_response.create(model="broke", messages=conversation)
chat_requests += 1
check(raw.headers.get("x-switchyard-model") == "sonnet" and raw.headers.get("x-switchyard-attempts") == "2",
      "insufficient_quota: the next model at once")

# 9. models.list in OpenAI's shape.
ids = [model.id for model in client.models.list()]
check({"default", "claude", "mixed", "down", "broke"} <= set(ids), "models.list: routes and aliases")

# 10. The anthropic SDK on a route that falls over to an OpenAI-compatible model.
raw = claude.messages.with_raw_response.create(model="mixed", max_tokens=64, messages=[{"role": "user", "content": "Hello"}])
translated += 1
message = raw.parse()
check(message.type == "message" and message.content[0].type == "text" and message.stop_reason == "end_turn",
      "anthropic SDK: a translated Message")
check(raw.headers.get("x-switchyard-translated") == "true" and raw.headers.get("x-switchyard-model") == "gpt-4o",
      "anthropic SDK: x-switchyard-translated")
with claude.messages.stream(model="mixed", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
translated += 1
check(len(text) > 0 and final.stop_reason == "end_turn" and final.usage.output_tokens > 0, "anthropic SDK: a translated stream")
message = claude.messages.create(
    model="mixed", max_tokens=64, messages=[{"role": "user", "content": "Weather in Paris?"}],
    tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
    tool_choice={"type": "any"})
translated += 1
block = message.content[0]
check(block.type == "tool_use" and block.name == "get_weather" and isinstance(block.input, dict) and message.stop_reason == "tool_use",
      "anthropic SDK: a translated tool_use")

print(f"CHAT {chat_requests}")
print(f"TRANSLATED {translated}")
print(f"{passed} checks passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
