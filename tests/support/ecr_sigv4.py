"""SigV4 verification for the ECR test bed's control-plane front (see ecr_testbed.py).

moto accepts any signature; AWS recomputes it. ``verify`` does what AWS does with a signed request:
it parses the ``Authorization`` header, looks the access key up, checks the credential scope
(date, region, service) and the clock skew, and recomputes the signature with botocore's own
``SigV4Auth`` over exactly the headers the client listed in ``SignedHeaders``, with the request's
``X-Amz-Date`` as the timestamp. A mismatch raises ``SignatureError`` carrying the error AWS would
return (JSON services: ``{"__type": ..., "message": ...}``; STS speaks XML, see ``query_code``).

    creds = {"AKID": Credential("AKID", "secret")}
    verify("POST", "/", headers, body, creds.get, expected_service="ecr", regions={"eu-central-1"})

The messages follow AWS's wording (IAM/STS and the JSON services share them); an
InvalidSignatureException also carries the canonical request and string to sign the server
computed, as AWS does, so a signer bug in tagwarden shows what differs.
"""

import datetime
import hashlib
import hmac
import re

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = datetime.timedelta(minutes=5)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

# JSON-protocol error name -> the Query-protocol (STS) code for the same failure.
_QUERY_CODES = {
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "IncompleteSignatureException": "IncompleteSignature",
}

_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
             "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
_BAD_TOKEN = "The security token included in the request is invalid."


class Credential:
    """A key pair the bed knows (``session_token`` set for temporary credentials issued by STS)."""

    __slots__ = ("access_key", "secret_key", "session_token")

    def __init__(self, access_key, secret_key, session_token=None):
        self.access_key = access_key
        self.secret_key = secret_key
        self.session_token = session_token


class SignatureError(Exception):
    """An authentication failure, as AWS reports it."""

    def __init__(self, code, message, status=403):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    @property
    def query_code(self):
        """The code STS (Query protocol) uses for the same failure."""
        return _QUERY_CODES.get(self.code, self.code)


class Verified:
    """What a valid signature established."""

    __slots__ = ("access_key", "region", "service", "credential")

    def __init__(self, access_key, region, service, credential):
        self.access_key = access_key
        self.region = region
        self.service = service
        self.credential = credential


_AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(?P<params>.+)$", re.S)


def parse_authorization(value):
    """{'Credential': ..., 'SignedHeaders': ..., 'Signature': ...} of a SigV4 Authorization header."""
    match = _AUTH_RE.match(value.strip())
    if not match:
        raise SignatureError("IncompleteSignatureException",
                             f"Authorization header requires the '{ALGORITHM}' algorithm. "
                             f"Authorization={value[:40]}...")
    params = {}
    for part in match["params"].split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            params[key.strip()] = val.strip()
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not params.get(name)]
    if missing:
        raise SignatureError("IncompleteSignatureException",
                             " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
                             + f" Authorization={value[:40]}...")
    return params


class _Recompute(SigV4Auth):
    """botocore's signer, restricted to the headers the client signed."""

    def __init__(self, credentials, service, region, signed_names):
        super().__init__(credentials, service, region)
        self._signed_names = signed_names

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name in self._signed_names:
            for value in request.headers.get_all(name) or []:
                header_map[name] = value
        return header_map


def _header(headers, name):
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def verify(method, target, headers, body, lookup, expected_service=None, regions=None, now=None):
    """Checks the SigV4 signature of one request; returns Verified or raises SignatureError.

    ``target`` is the request-target as received (path and query), ``headers`` the received
    headers as (name, value) pairs (duplicates kept), ``body`` the raw body bytes, ``lookup``
    maps an access key to a Credential (None when unknown). ``expected_service`` (the signing
    name the endpoint serves, e.g. "ecr", not "api.ecr") and ``regions`` (accepted scope regions)
    are checked when given.
    """
    authorization = _header(headers, "authorization")
    if not authorization:
        raise SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token")
    params = parse_authorization(authorization)

    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureError("IncompleteSignatureException",
                             f"Credential must have exactly 5 slash-delimited elements, e.g. "
                             f"keyid/date/region/service/term, got '{params['Credential']}'")
    access_key, scope_date, region, service, _term = scope

    amz_date = _header(headers, "x-amz-date")
    if not amz_date:
        raise SignatureError("IncompleteSignatureException",
                             "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                             f"Authorization={authorization[:40]}...")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise SignatureError("IncompleteSignatureException",
                             f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                             "See http://en.wikipedia.org/wiki/ISO_8601")

    credential = lookup(access_key)
    if credential is None:
        raise SignatureError("UnrecognizedClientException", _BAD_TOKEN)
    token = _header(headers, "x-amz-security-token")
    if (credential.session_token or None) != (token or None):
        raise SignatureError("UnrecognizedClientException", _BAD_TOKEN)

    signed_names = [name.strip().lower() for name in params["SignedHeaders"].split(";") if name.strip()]
    if "host" not in signed_names:
        raise SignatureError("InvalidSignatureException",
                             "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if "x-amz-date" not in signed_names:
        raise SignatureError("InvalidSignatureException",
                             "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
    for name in signed_names:
        if _header(headers, name) is None:
            raise SignatureError("InvalidSignatureException",
                                 f"The header '{name}' is listed in SignedHeaders but absent from the request.")
    if scope_date != amz_date[:8]:
        raise SignatureError("InvalidSignatureException",
                             "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                             "from HTTP: "
                             f"'{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.")
    if regions is not None and region not in regions:
        raise SignatureError("InvalidSignatureException",
                             f"Credential should be scoped to a valid region. (got '{region}', this endpoint serves "
                             f"{', '.join(sorted(regions))})")
    if expected_service is not None and service != expected_service:
        raise SignatureError("InvalidSignatureException",
                             f"Credential should be scoped to correct service: '{expected_service}'. ")

    now = now or datetime.datetime.now(datetime.timezone.utc)

    def stamp(moment):
        return moment.strftime("%Y%m%dT%H%M%SZ")
    if when < now - MAX_SKEW:
        raise SignatureError("InvalidSignatureException",
                             f"Signature expired: {amz_date} is now earlier than "
                             f"{stamp(now - MAX_SKEW)} ({stamp(now)} - 5 min.)")
    if when > now + MAX_SKEW:
        raise SignatureError("InvalidSignatureException",
                             f"Signature not yet current: {amz_date} is still later than "
                             f"{stamp(now + MAX_SKEW)} ({stamp(now)} + 5 min.)")

    content_sha = _header(headers, "x-amz-content-sha256")
    if content_sha is not None and content_sha != UNSIGNED_PAYLOAD \
            and content_sha != hashlib.sha256(body or b"").hexdigest():
        raise SignatureError("InvalidSignatureException",
                             "The provided 'x-amz-content-sha256' header does not match what was computed.", 400)

    host = _header(headers, "host")
    request_headers = HTTPHeaders()
    for key, value in headers:
        request_headers[key] = value
    request = AWSRequest(method=method, url=f"http://{host}{target}", data=body or b"", headers=request_headers)
    request.context["timestamp"] = amz_date
    signer = _Recompute(Credentials(credential.access_key, credential.secret_key, credential.session_token),
                        service, region, signed_names)
    canonical_request = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical_request)
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected, params["Signature"]):
        raise SignatureError("InvalidSignatureException",
                             f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n"
                             f"'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n")
    return Verified(access_key, region, service, credential)
