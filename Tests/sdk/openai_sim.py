"""The official openai SDK, unmodified, straight at `switchyard upstream-sim --platform openai`.

Checks that the sim speaks Chat Completions as the SDK reads it: create, streams with usage, a
tool round trip, an image by data URL, Azure's deployment path (AzureOpenAI), and the fault
script's errors as the SDK's own exception classes. Starts nothing: give it two running sims.

Usage: openai_sim.py SIM_URL FAULT_SIM_URL API_KEY
  (or $OPENAI_SIM_URL, $OPENAI_SIM_FAULT_URL, $OPENAI_SIM_KEY)
  SIM_URL        a sim started with --api-key API_KEY and no script
  FAULT_SIM_URL  a sim started with --script "$(openai_sim.py --fault-script)"; its steps are
                 taken in order, so run this once per start of that sim
"""
import base64
import json
import os
import struct
import sys
import zlib

# One step per request to the fault sim, in the order the checks below make them.
FAULT_SCRIPT = "429,500,529,context-length,quota,sse-error(3),cut(3),ok*"

if sys.argv[1:] == ["--fault-script"]:
    print(FAULT_SCRIPT)
    sys.exit(0)

import openai  # noqa: E402
from openai import AzureOpenAI, OpenAI  # noqa: E402

args = sys.argv[1:4]
sim_url = args[0] if len(args) > 0 else os.environ["OPENAI_SIM_URL"]
fault_url = args[1] if len(args) > 1 else os.environ["OPENAI_SIM_FAULT_URL"]
key = args[2] if len(args) > 2 else os.environ["OPENAI_SIM_KEY"]
passed = 0
failures = []


def check(condition, what):
    global passed
    print(("ok   " if condition else "FAIL ") + what)
    if condition:
        passed += 1
    else:
        failures.append(what)


def raises(call, exception, what, code=None):
    """`call` raises `exception` (with `code` in OpenAI's error body, when given)."""
    try:
        call()
    except exception as error:
        got = getattr(error, "code", None)
        check(code is None or got == code, what + ("" if code is None or got == code else f" (code {got!r})"))
        return error
    except Exception as other:  # noqa: BLE001
        check(False, f"{what} (raised {type(other).__name__}: {other})")
        return None
    check(False, f"{what} (nothing raised)")
    return None


def tiny_png():
    """A real 1x1 PNG, made here so the check needs no file."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")


client = OpenAI(base_url=f"{sim_url}/v1", api_key=key, max_retries=0)
hello = [{"role": "user", "content": "Say hello"}]
weather = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

# 1. create: a chat.completion the SDK parses, with OpenAI's request id header.
completion = client.chat.completions.create(model="gpt-4o", messages=hello)
choice = completion.choices[0]
check(completion.object == "chat.completion" and completion.id.startswith("chatcmpl-"), "create: a chat.completion")
check(completion.model == "gpt-4o" and choice.message.content == "chunk0 chunk1 chunk2 " and choice.finish_reason == "stop",
      "create: the model echoed, the text, finish_reason stop")
check(completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens, "create: usage adds up")
check((completion._request_id or "").startswith("req_"), "create: _request_id from x-request-id")

# 2. A stream with include_usage, paced by the step the request names.
chunks = list(client.chat.completions.create(
    model="gpt-4o", messages=hello, stream=True, stream_options={"include_usage": True},
    extra_headers={"x-sim-fault": "ok(events=6,interval=5ms)"},
))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check(chunks[0].choices[0].delta.role == "assistant", "stream: the first chunk carries the role")
check(text == "".join(f"chunk{i} " for i in range(6)), "stream: six content deltas, in order")
check([c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop", "stream: finish_reason stop")
check(chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7,
      "stream: the last chunk is the usage, with no choices")

# 3. A tool round trip: the call (streamed, through the SDK's accumulating helper), then the result.
messages = [{"role": "user", "content": "Weather in Paris?"}]
with client.chat.completions.stream(model="gpt-4o", messages=messages, tools=[weather]) as stream:
    final = stream.get_final_completion()
message = final.choices[0].message
call = (message.tool_calls or [None])[0]
check(final.choices[0].finish_reason == "tool_calls" and call is not None and call.function.name == "get_weather",
      "tools: a streamed call to the first tool, assembled by the SDK")
check(call is not None and json.loads(call.function.arguments) == {"city": "sim"}, "tools: its arguments are JSON that fits the schema")
messages += [message, {"role": "tool", "tool_call_id": call.id if call else "", "content": "21 degrees and sunny"}]
answer = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[weather])
check('tool said: "21 degrees and sunny"' in (answer.choices[0].message.content or ""), "tools: the result arrived and is quoted")
raises(lambda: client.chat.completions.create(model="gpt-4o", messages=messages[:2] + hello, tools=[weather]),
       openai.BadRequestError, "tools: a call left unanswered is a BadRequestError")

# 4. An image by data URL.
data_url = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
seen = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
    {"type": "text", "text": "What is in this image?"}, {"type": "image_url", "image_url": {"url": data_url}},
]}])
check((seen.choices[0].message.content or "").startswith("saw 1 image."), "image: a data URL is received and counted")

# 5. models.list, and keys.
check("gpt-4o" in [model.id for model in client.models.list()], "models.list: OpenAI's list shape")
raises(lambda: OpenAI(base_url=f"{sim_url}/v1", api_key="sk-wrong-key-0000", max_retries=0).chat.completions.create(
    model="gpt-4o", messages=hello), openai.AuthenticationError, "a wrong key is an AuthenticationError", code="invalid_api_key")

# 6. Azure OpenAI: the deployment path, api-version and the api-key header.
azure = AzureOpenAI(azure_endpoint=sim_url, api_key=key, api_version="2024-10-21", max_retries=0)
deployed = azure.chat.completions.create(model="gpt4o-east", messages=hello)
check(deployed.model == "gpt4o-east" and deployed.choices[0].message.content == "chunk0 chunk1 chunk2 ",
      "AzureOpenAI: /openai/deployments/{deployment}/chat/completions with api-key")
azure_text = "".join(c.choices[0].delta.content or "" for c in azure.chat.completions.create(
    model="gpt4o-east", messages=hello, stream=True) if c.choices)
check(azure_text == "chunk0 chunk1 chunk2 ", "AzureOpenAI: a stream")

# 7. The fault sim's script, one step per request, as the SDK's exception classes.
faulty = OpenAI(base_url=f"{fault_url}/v1", api_key="sk-any", max_retries=0)


def ask():
    return faulty.chat.completions.create(model="gpt-4o", messages=hello)


limited = raises(ask, openai.RateLimitError, "429: RateLimitError", code="rate_limit_exceeded")
check(limited is not None and limited.response.headers.get("x-ratelimit-remaining-requests") == "0", "429: x-ratelimit headers")
raises(ask, openai.InternalServerError, "500: InternalServerError", code="server_error")
overloaded = raises(ask, openai.InternalServerError, "529: InternalServerError", code="service_unavailable")
check(overloaded is not None and overloaded.status_code == 503, "529: answered as OpenAI's 503")
raises(ask, openai.BadRequestError, "context-length: BadRequestError", code="context_length_exceeded")
raises(ask, openai.RateLimitError, "quota: RateLimitError", code="insufficient_quota")
received = []


def read_stream():
    for c in faulty.chat.completions.create(model="gpt-4o", messages=hello, stream=True):
        received.append(c)


raises(read_stream, openai.APIError, "sse-error(3): the error chunk raises APIError", code="service_unavailable")
check(len(received) == 3, f"sse-error(3): three chunks before it (got {len(received)})")
received.clear()
raises(read_stream, openai.APIConnectionError, "cut(3): the cut stream raises APIConnectionError")
check(len(received) == 3, f"cut(3): three chunks before it (got {len(received)})")
check(ask().choices[0].message.content == "chunk0 chunk1 chunk2 ", "after the script: ok")

print(f"openai SDK against upstream-sim: {passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
