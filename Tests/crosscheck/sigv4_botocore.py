#!/usr/bin/env python3
"""botocore's SigV4 signer, the independent half of SigV4BotocoreTests.

Reads one JSON request per stdin line:
  {"id", "method", "url", "headers": [[name, value], ...], "body_hex",
   "access_key", "secret_key", "token" (or null), "region", "service", "amz_date"}
and writes one JSON answer per line:
  {"id", "canonical_request", "string_to_sign", "authorization",
   "added": [[name, value], ...]}        (the headers botocore added, in its order)
or {"id", "error"} when botocore raised.

The signing time is fixed by patching `botocore.auth.get_current_datetime`, the one clock
`SigV4Auth.add_auth` reads (botocore 1.3x-1.4x); the answer's X-Amz-Date proves it took.
"""

import datetime
import json
import sys
from unittest import mock

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class RecordingSigV4Auth(SigV4Auth):
    """SigV4Auth that keeps the canonical request and string to sign it computed."""

    def string_to_sign(self, request, canonical_request):
        self.recorded_canonical_request = canonical_request
        self.recorded_string_to_sign = super().string_to_sign(request, canonical_request)
        return self.recorded_string_to_sign


def sign(case):
    request = AWSRequest(method=case["method"], url=case["url"], data=bytes.fromhex(case["body_hex"]))
    # HTTPHeaders appends on assignment, so repeated names stay repeated, in order.
    for name, value in case["headers"]:
        request.headers[name] = value
    before = list(request.headers.items())
    moment = datetime.datetime.strptime(case["amz_date"], "%Y%m%dT%H%M%SZ")
    credentials = Credentials(case["access_key"], case["secret_key"], case.get("token"))
    auth = RecordingSigV4Auth(credentials, case["service"], case["region"])
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=moment):
        auth.add_auth(request)
    added = list(request.headers.items())
    for item in before:
        added.remove(item)
    return {
        "id": case["id"],
        "canonical_request": auth.recorded_canonical_request,
        "string_to_sign": auth.recorded_string_to_sign,
        "authorization": request.headers["Authorization"],
        "added": [[name, value] for name, value in added],
    }


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        try:
            answer = sign(case)
        except Exception as error:  # reported per case, so one bad case does not hide the rest
            answer = {"id": case.get("id"), "error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
