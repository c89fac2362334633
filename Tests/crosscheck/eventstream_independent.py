#!/usr/bin/env python3
"""The Python half of Switchyard's AWS event-stream cross-check (EventStreamTests.swift).

Written from the format description, not from the Swift code, with only struct/zlib/base64/json
for framing, so that the Swift codec is checked against code that is not its own:

  frame  = prelude + headers + payload + message_crc
  prelude = total_length (u32 BE) + headers_length (u32 BE) + crc32(first 8 bytes) (u32 BE)
  message_crc = crc32(every byte of the frame before it), zlib's CRC-32
  header = name_length (u8) + name (UTF-8) + type (u8) + value
  types: 0 true, 1 false, 2 int8, 3 int16, 4 int32, 5 int64, 6 bytes (u16 length),
         7 string (u16 length, UTF-8), 8 timestamp (int64 ms), 9 uuid (16 bytes)

Modes:
  frames [SEED]  Encode Bedrock-like frames with the encoder below; print JSON
                 {"stream": base64 of all frames, "messages": [expected message, ...]}.
                 The frames are first checked against botocore's EventStreamBuffer.
  decode [SEED]  Read frames (Switchyard's encoder output) on stdin; decode them with botocore's
                 EventStreamBuffer, fed in seeded random chunks, and with the parser below; print
                 JSON {"botocore": [...], "independent": [...]}.

A message in JSON: {"headers": [{"name", "type", "value"}], "payload": base64, ...}. Header values
are strings so that no JSON reader rounds an int64: decimal for integers and timestamps, "true" or
"false", base64 for bytes and uuid, the text itself for strings. Exit status 0 on success; on any
disagreement, 1 with the reason on stderr.
"""

import base64
import json
import random
import struct
import sys
import zlib

TYPE_CODES = {
    "byte": 2, "int16": 3, "int32": 4, "int64": 5,
    "bytes": 6, "string": 7, "timestamp": 8, "uuid": 9,
}
INT_FORMATS = {"byte": "!b", "int16": "!h", "int32": "!i", "int64": "!q", "timestamp": "!q"}


def crc32(data, seed=0):
    return zlib.crc32(data, seed) & 0xFFFFFFFF


def encode_header(name, kind, value):
    raw_name = name.encode("utf-8")
    out = struct.pack("!B", len(raw_name)) + raw_name
    if kind == "bool":
        return out + struct.pack("!B", 0 if value else 1)
    out += struct.pack("!B", TYPE_CODES[kind])
    if kind in INT_FORMATS:
        return out + struct.pack(INT_FORMATS[kind], value)
    if kind == "bytes":
        return out + struct.pack("!H", len(value)) + value
    if kind == "string":
        raw = value.encode("utf-8")
        return out + struct.pack("!H", len(raw)) + raw
    if kind == "uuid":
        assert len(value) == 16
        return out + value
    raise ValueError(kind)


def encode_frame(headers, payload):
    header_block = b"".join(encode_header(*header) for header in headers)
    total = 12 + len(header_block) + len(payload) + 4
    lengths = struct.pack("!II", total, len(header_block))
    head = lengths + struct.pack("!I", crc32(lengths)) + header_block + payload
    return head + struct.pack("!I", crc32(head))


def parse_frames(data):
    """The independent decoder: every frame in data, which must end on a frame boundary."""
    messages = []
    at = 0
    while at < len(data):
        if len(data) - at < 12:
            raise ValueError(f"{len(data) - at} bytes left after the last frame, less than a prelude")
        total, headers_length, prelude_crc = struct.unpack_from("!III", data, at)
        if crc32(data[at:at + 8]) != prelude_crc:
            raise ValueError(f"prelude CRC mismatch at offset {at}")
        if total < 16 or headers_length > total - 16 or at + total > len(data):
            raise ValueError(f"bad lengths at offset {at}: total {total}, headers {headers_length}")
        frame = data[at:at + total]
        (message_crc,) = struct.unpack_from("!I", frame, total - 4)
        if crc32(frame[:total - 4]) != message_crc:
            raise ValueError(f"message CRC mismatch at offset {at}")
        headers = parse_headers(frame[12:12 + headers_length])
        messages.append({"headers": headers, "payload": frame[12 + headers_length:total - 4], "crc": message_crc})
        at += total
    return messages


def parse_headers(block):
    headers = []
    at = 0
    names = {code: kind for kind, code in TYPE_CODES.items()}
    while at < len(block):
        name_length = block[at]
        name = block[at + 1:at + 1 + name_length].decode("utf-8")
        at += 1 + name_length
        code = block[at]
        at += 1
        if code in (0, 1):
            headers.append((name, "bool", code == 0))
            continue
        kind = names[code]
        if kind in INT_FORMATS:
            size = struct.calcsize(INT_FORMATS[kind])
            (value,) = struct.unpack_from(INT_FORMATS[kind], block, at)
            at += size
        elif kind in ("bytes", "string"):
            (length,) = struct.unpack_from("!H", block, at)
            value = bytes(block[at + 2:at + 2 + length])
            if len(value) != length:
                raise ValueError(f"header {name} runs past the header block")
            at += 2 + length
            if kind == "string":
                value = value.decode("utf-8")
        else:
            value = bytes(block[at:at + 16])
            if len(value) != 16:
                raise ValueError(f"header {name} runs past the header block")
            at += 16
        headers.append((name, kind, value))
    return headers


def header_json(name, kind, value):
    if kind == "bool":
        text = "true" if value else "false"
    elif kind in ("bytes", "uuid"):
        text = base64.b64encode(value).decode("ascii")
    elif kind == "string":
        text = value
    else:
        text = str(value)
    return {"name": name, "type": kind, "value": text}


def message_json(headers, payload, **extra):
    return dict({"headers": [header_json(*header) for header in headers],
                 "payload": base64.b64encode(payload).decode("ascii")}, **extra)


# Bedrock's InvokeModelWithResponseStream, as observed: each Anthropic stream event is base64 in a
# JSON chunk, with a "p" field of padding whose length varies so that sizes do not leak the text.
PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
EVENT_HEADERS = [(":event-type", "string", "chunk"), (":content-type", "string", "application/json"),
                 (":message-type", "string", "event")]
ANTHROPIC_EVENTS = [
    {"type": "message_start", "message": {
        "id": "msg_bdrk_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 14, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ", wörld 👋 \"quoted\"\n"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
     "usage": {"output_tokens": 9}},
    {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": 14, "outputTokenCount": 9, "invocationLatency": 612, "firstByteLatency": 301}},
]


def bedrock_frames(rng):
    """(headers, payload, extra expected fields) for each frame the Swift decoder must read."""
    frames = []
    for event in ANTHROPIC_EVENTS:
        event_json = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        chunk = {"bytes": base64.b64encode(event_json.encode("utf-8")).decode("ascii"),
                 "p": PADDING[:rng.randrange(1, len(PADDING))]}
        frames.append((EVENT_HEADERS, json.dumps(chunk, separators=(",", ":")).encode(), {"anthropicEvent": event_json}))
    frames.append(([(":exception-type", "string", "throttlingException"), (":content-type", "string", "application/json"),
                    (":message-type", "string", "exception")],
                   b'{"message":"Too many requests, please wait before trying again."}', {}))
    frames.append(([(":exception-type", "string", "modelStreamErrorException"),
                    (":content-type", "string", "application/json"), (":message-type", "string", "exception")],
                   b'{"message":"Model stream error","originalStatusCode":500,"originalMessage":"overloaded"}', {}))
    frames.append(([(":message-type", "string", "error"), (":error-code", "string", "InternalFailure"),
                    (":error-message", "string", "An internal error occurred.")], b"", {}))
    frames.append(([
        ("true", "bool", True), ("false", "bool", False),
        ("byte", "byte", -128), ("byte max", "byte", 127),
        ("int16", "int16", -32768), ("int32", "int32", 2147483647), ("int32 min", "int32", -2147483648),
        ("int64", "int64", -9223372036854775808), ("int64 max", "int64", 9223372036854775807),
        ("bytes", "bytes", bytes(range(256))), ("no bytes", "bytes", b""),
        ("string", "string", "héllo ☃ 🎉 \u0000 end"), ("empty string", "string", ""),
        ("timestamp", "timestamp", 1732543200123), ("before 1970", "timestamp", -1),
        ("uuid", "uuid", bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")),
        ("ünïcödé name", "int32", 7),
    ], b"\x00\xff\x7f\x80 binary", {}))
    frames.append(([], b"", {}))
    frames.append(([(":message-type", "string", "event")], b"", {}))
    frames.append(([], b"payload without headers", {}))
    frames.append(([("n" * 255, "string", "x" * 65533 + "é")], b"", {}))
    frames.append(([("largest bytes", "bytes", bytes(rng.randrange(256) for _ in range(65535)))], b"{}", {}))
    frames.append((EVENT_HEADERS, rng.randbytes(1 << 20), {}))
    return frames


def botocore_messages(stream, rng):
    from botocore.eventstream import EventStreamBuffer
    parser = EventStreamBuffer()
    messages = []
    at = 0
    while at < len(stream):
        size = rng.choice([1, 2, 3, 7, 12, 13, 100, 4096, 70000])
        parser.add_data(stream[at:at + size])
        at += size
        messages.extend(parser)
    return messages


def python_type(value):
    # botocore gives plain Python values: the wire type is lost, only its kind is left.
    for kind, cls in (("bool", bool), ("int", int), ("bytes", bytes), ("string", str)):
        if isinstance(value, cls):
            return kind
    raise TypeError(type(value))


def botocore_json(message):
    headers = []
    for name, value in message.headers.items():
        kind = python_type(value)
        entry = header_json(name, {"int": "int64", "bytes": "bytes"}.get(kind, kind), value)
        entry["type"] = kind
        headers.append(entry)
    return {"headers": headers, "payload": base64.b64encode(message.payload).decode("ascii"), "crc": message.crc}


def same_header(kind, expected, actual):
    if kind == "bool":
        return actual is expected
    return type(actual) is not bool and actual == expected


def mode_frames(seed):
    rng = random.Random(seed)
    frames = bedrock_frames(rng)
    stream = b"".join(encode_frame(headers, payload) for headers, payload, _ in frames)
    decoded = botocore_messages(stream, rng)
    if len(decoded) != len(frames):
        fail(f"botocore read {len(decoded)} frames of the {len(frames)} encoded")
    for index, ((headers, payload, _), message) in enumerate(zip(frames, decoded)):
        names = [name for name, _, _ in headers]
        if list(message.headers) != names or message.payload != payload or not all(
                same_header(kind, value, message.headers[name]) for name, kind, value in headers):
            fail(f"botocore disagrees with this script's encoder on frame {index}")
    print(json.dumps({"stream": base64.b64encode(stream).decode("ascii"),
                      "messages": [message_json(headers, payload, **extra) for headers, payload, extra in frames]}))


def mode_decode(seed):
    stream = sys.stdin.buffer.read()
    try:
        independent = parse_frames(stream)
    except (ValueError, UnicodeDecodeError, KeyError, IndexError, struct.error) as error:
        fail(f"the independent parser rejects the stream: {error}")
    botocore = [botocore_json(message) for message in botocore_messages(stream, random.Random(seed))]
    print(json.dumps({"botocore": botocore,
                      "independent": [message_json(m["headers"], m["payload"], crc=m["crc"]) for m in independent]}))


def fail(reason):
    print(reason, file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20261125
    if mode == "frames":
        mode_frames(seed)
    elif mode == "decode":
        mode_decode(seed)
    else:
        fail("usage: eventstream_independent.py frames|decode [SEED]")
