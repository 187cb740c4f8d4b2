"""Signs requests with botocore's SigV4Auth at a fixed time; the oracle of test_sigv4_botocore.cpp.

Usage: botocore_sigv4.py CASES.json
CASES.json is a list of {"method", "url", "headers": [[name, value], ...], "body", "access_key",
"secret_key", "token", "region", "service", "timestamp": "YYYYMMDDTHHMMSSZ"}.
Prints {"botocore": version, "results": [{"authorization", "canonical_request", "string_to_sign",
"headers": [[name, value], ...]}, ...]}, one result per case, in order.
"""

import datetime
import json
import sys
import types
from unittest import mock

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def fixed_clock(timestamp):
    """Patches every clock SigV4Auth.add_auth reads: botocore >= 1.34 calls
    botocore.auth.get_current_datetime(), older releases datetime.datetime.utcnow()."""
    fixed = datetime.datetime.strptime(timestamp, botocore.auth.SIGV4_TIMESTAMP)

    class FixedDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

        @classmethod
        def now(cls, tz=None):
            return fixed.replace(tzinfo=tz) if tz is not None else fixed

    patches = [mock.patch.object(botocore.auth, "datetime", types.SimpleNamespace(datetime=FixedDatetime))]
    if hasattr(botocore.auth, "get_current_datetime"):
        patches.append(mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: fixed))
    return patches


def sign(case):
    request = AWSRequest(method=case["method"], url=case["url"], data=case["body"].encode("utf-8"))
    for name, value in case["headers"]:
        request.headers[name] = value  # HTTPHeaders appends: repeated names stay repeated
    credentials = Credentials(case["access_key"], case["secret_key"], case.get("token") or None)
    auth = botocore.auth.SigV4Auth(credentials, case["service"], case["region"])

    captured = {}
    canonical_request, string_to_sign = auth.canonical_request, auth.string_to_sign

    def capture_canonical_request(req):
        captured["canonical_request"] = canonical_request(req)
        return captured["canonical_request"]

    def capture_string_to_sign(req, creq):
        captured["string_to_sign"] = string_to_sign(req, creq)
        return captured["string_to_sign"]

    auth.canonical_request = capture_canonical_request
    auth.string_to_sign = capture_string_to_sign

    patches = fixed_clock(case["timestamp"])
    for p in patches:
        p.start()
    try:
        auth.add_auth(request)
    finally:
        for p in reversed(patches):
            p.stop()

    if request.headers.get("X-Amz-Date") != case["timestamp"]:
        raise SystemExit(
            f"botocore {botocore.__version__} signed at {request.headers.get('X-Amz-Date')}, "
            f"not {case['timestamp']}: its clock is read somewhere this script does not patch"
        )
    return {
        "authorization": request.headers["Authorization"],
        "canonical_request": captured["canonical_request"],
        "string_to_sign": captured["string_to_sign"],
        "headers": [[k, v] for k, v in request.headers.items()],
    }


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    json.dump({"botocore": botocore.__version__, "results": [sign(c) for c in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
