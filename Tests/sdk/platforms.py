"""The official anthropic SDK's platform clients against upstream-sim, and the router's platforms.

Part 1 checks that upstream-sim speaks the platforms' real protocols: the SDK's own
AnthropicBedrock (botocore signs with SigV4, botocore decodes the event stream) and
AnthropicVertex clients talk to the sims directly and get what they expect, errors included.
Part 2 reads streams the router relays from Bedrock and Vertex with anthropic.Anthropic.
Usage: platforms.py ROUTER_URL BEDROCK_SIM_URL VERTEX_SIM_URL AWS_KEY_ID AWS_SECRET VERTEX_TOKEN
"""
import sys

import anthropic
from anthropic import AnthropicBedrock, AnthropicVertex

router_url, bedrock_url, vertex_url, key_id, secret, vertex_token = sys.argv[1:7]
failures = []
routed = 0


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def raises(call, exception, what):
    try:
        call()
    except exception:
        check(True, what)
        return
    except Exception as other:  # noqa: BLE001
        check(False, f"{what} (raised {type(other).__name__}: {other})")
        return
    check(False, f"{what} (nothing raised)")


messages = [{"role": "user", "content": "Say hello"}]

# Part 1a: AnthropicBedrock against upstream-sim --platform bedrock (which checks the signature).
bedrock = AnthropicBedrock(aws_access_key=key_id, aws_secret_key=secret, aws_region="us-east-1", base_url=bedrock_url, max_retries=0)
message = bedrock.messages.create(model="us.anthropic.claude-sonnet-4-5-20250929-v1:0", max_tokens=64, messages=messages)
check(message.type == "message" and message.content[0].text.startswith("chunk0"), "AnthropicBedrock: create, signed by botocore, accepted")
with bedrock.messages.stream(model="us.anthropic.claude-sonnet-4-5-20250929-v1:0", max_tokens=64, messages=messages) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
check(text == "chunk0 chunk1 chunk2 ", "AnthropicBedrock: messages.stream() decodes the sim's event-stream frames")
check(final.usage.output_tokens == 4, "AnthropicBedrock: get_final_message() has the usage")
raises(
    lambda: bedrock.messages.create(
        model="m", max_tokens=8, messages=messages, extra_headers={"x-sim-fault": "error(ThrottlingException,429)"}
    ),
    anthropic.RateLimitError, "AnthropicBedrock: ThrottlingException is a RateLimitError",
)
raises(
    lambda: bedrock.messages.create(
        model="m", max_tokens=8, messages=messages, extra_headers={"x-sim-fault": "error(ValidationException,400)"}
    ),
    anthropic.BadRequestError, "AnthropicBedrock: ValidationException is a BadRequestError",
)


def stream_with_exception():
    with bedrock.messages.stream(
        model="m", max_tokens=8, messages=messages, extra_headers={"x-sim-fault": "exception(3,throttlingException)"}
    ) as failing:
        for _ in failing.text_stream:
            pass


raises(stream_with_exception, anthropic.APIError, "AnthropicBedrock: an exception frame mid-stream raises")
wrong = AnthropicBedrock(aws_access_key=key_id, aws_secret_key="not-the-secret", aws_region="us-east-1", base_url=bedrock_url, max_retries=0)
raises(lambda: wrong.messages.create(model="m", max_tokens=8, messages=messages), anthropic.PermissionDeniedError,
       "AnthropicBedrock: a wrong secret is refused (InvalidSignatureException, 403)")

# Part 1b: AnthropicVertex against upstream-sim --platform vertex (which checks the token).
vertex = AnthropicVertex(region="us-east5", project_id="sim-project", access_token=vertex_token, base_url=vertex_url + "/v1", max_retries=0)
message = vertex.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=64, messages=messages)
check(message.type == "message" and message.content[0].text.startswith("chunk0"), "AnthropicVertex: create on :rawPredict")
with vertex.messages.stream(model="claude-sonnet-4-5@20250929", max_tokens=64, messages=messages) as stream:
    check("".join(stream.text_stream) == "chunk0 chunk1 chunk2 ", "AnthropicVertex: messages.stream() on :streamRawPredict")
count = vertex.messages.count_tokens(model="claude-sonnet-4-5@20250929", messages=messages)
check(count.input_tokens == 42, "AnthropicVertex: count_tokens on count-tokens:rawPredict")
raises(
    lambda: vertex.messages.create(
        model="m", max_tokens=8, messages=messages, extra_headers={"x-sim-fault": "error(RESOURCE_EXHAUSTED,429)"}
    ),
    anthropic.RateLimitError, "AnthropicVertex: RESOURCE_EXHAUSTED is a RateLimitError",
)
bad_token = AnthropicVertex(region="us-east5", project_id="sim-project", access_token="wrong", base_url=vertex_url + "/v1", max_retries=0)
raises(lambda: bad_token.messages.create(model="m", max_tokens=8, messages=messages), anthropic.AuthenticationError,
       "AnthropicVertex: a wrong token is an AuthenticationError (UNAUTHENTICATED)")

# Part 2: the router relays Bedrock and Vertex streams as Anthropic SSE.
client = anthropic.Anthropic(base_url=router_url, api_key="sk-ant-caller-key-for-e2e", max_retries=0)
with client.messages.stream(model="bedrock", max_tokens=64, messages=messages) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
routed += 1
check(text == "chunk0 chunk1 chunk2 ", "router: a Bedrock stream read to the end by messages.stream()")
check(final.model == "us.anthropic.claude-sonnet-4-5-20250929-v1:0" and final.stop_reason == "end_turn", "router: get_final_message() of the Bedrock stream")
with client.messages.stream(model="vertex", max_tokens=64, messages=messages) as stream:
    final = stream.get_final_message()
routed += 1
check(final.content[0].text == "chunk0 chunk1 chunk2 ", "router: a Vertex stream read to the end")
raw = client.messages.with_raw_response.create(model="platforms", max_tokens=16, messages=messages)
routed += 1
check(raw.headers.get("x-switchyard-model") == "sonnet-bedrock", "router: the overloaded first platform fails over to Bedrock")
check((raw.headers.get("request-id") or "").startswith("req_bedrock_"), "router: request-id is Bedrock's x-amzn-requestid")
count = client.messages.count_tokens(model="vertex", messages=messages)
routed += 1
check(count.input_tokens == 42, "router: count_tokens through Vertex")

print(f"ROUTED {routed}")
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("platform clients and platform routes: all checks passed")
