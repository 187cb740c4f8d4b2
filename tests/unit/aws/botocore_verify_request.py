"""Verifies a captured SigV4-signed HTTP request the way a server would, with botocore as the signer.

Usage: botocore_verify_request.py REQUEST.json
REQUEST.json: {"method", "target" (path and query as sent), "headers": [[name, value], ...] (as received),
"body", "access_key", "secret_key", "token", "region", "service"}.

The request is rebuilt from the headers named in its Authorization's SignedHeaders (what a server
canonicalises), then signed by botocore's SigV4Auth at the request's own X-Amz-Date with the given
credentials. Prints {"botocore": version, "match": bool, "expected": botocore's Authorization,
"received": the request's Authorization}. Exit status 0 either way; 2 on malformed input.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import botocore  # noqa: E402
import botocore.auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from botocore_sigv4 import fixed_clock  # noqa: E402

ADDED_BY_SIGNER = {"authorization", "x-amz-date", "x-amz-security-token"}


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        req = json.load(f)
    headers = {}
    for name, value in req["headers"]:
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    authorization = headers.get("authorization", [""])[0]
    if "SignedHeaders=" not in authorization or "x-amz-date" not in headers:
        print(json.dumps({"error": "no SigV4 Authorization or X-Amz-Date"}))
        sys.exit(2)
    signed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].strip().split(";")
    host = headers["host"][0]
    url = "http://" + host + req["target"]
    request = AWSRequest(method=req["method"], url=url, data=req["body"].encode("utf-8"))
    for name in signed:
        if name in ADDED_BY_SIGNER or name == "host":
            continue
        for value in headers.get(name, []):
            request.headers[name] = value
    credentials = Credentials(req["access_key"], req["secret_key"], req.get("token") or None)
    auth = botocore.auth.SigV4Auth(credentials, req["service"], req["region"])
    patches = fixed_clock(headers["x-amz-date"][0])
    for p in patches:
        p.start()
    try:
        auth.add_auth(request)
    finally:
        for p in reversed(patches):
            p.stop()
    expected = request.headers["Authorization"]
    print(json.dumps({"botocore": botocore.__version__, "match": expected == authorization,
                      "expected": expected, "received": authorization}))


if __name__ == "__main__":
    main()
