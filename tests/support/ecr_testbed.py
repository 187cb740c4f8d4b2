"""An Amazon ECR stand-in for tests: moto for the control plane, a real docker-registry for the
data plane, and a thin layer for what moto lacks. Python stdlib plus moto and botocore.

    with EcrTestbed(quota=10) as bed:                     # every server on 127.0.0.1, free ports
        bed.create_repository("team/app", mutability="IMMUTABLE", lifecycle_policy=policy)
        bed.set_quota("team/app", 3)                      # this repository's image limit
        env = bed.env()                                   # what a tagwarden process needs
        bed.registry_host                                 # "<acct>.dkr.ecr.<region>.amazonaws.com:<port>"
        bed.data_url                                      # "http://127.0.0.1:<port>" (skopeo, curl)
        password = bed.login_password()                   # issued by GetAuthorizationToken (user "AWS")
        bed.describe_images("team/app")                   # what DescribeImages answers, all pages
        bed.requests(method="POST", path=r"/blobs/uploads/")   # the data plane's request log
        bed.api_calls(operation="PutImage")               # the control plane's request log
        bed.create_repository_creation_template("apps", lifecycle_policy=None)   # CREATE_ON_PUSH (gap 11)
        bed.created_on_push                               # [(repository, template prefix)] created by pushes
        bed.archive_image("team/app", digest, when)       # ARCHIVED with lastArchivedAt (gap 12)
        bed.errors                                        # internal failures (must stay empty)

What runs (``stop``/leaving the block ends all of it and removes every temporary file):

- moto's server (the WSGI app ``moto_server`` runs) in a child process. It is bound to port 0 by a
  four-line launcher rather than ``moto_server -p PORT``: a free port picked in advance can be taken
  by another session's moto before ours binds it, and then the tests talk to the wrong server.
  ``MOTO_ACCOUNT_ID`` pins the account (default moto's ``123456789012``), also for STS-issued keys.
- ``registry.Registry("plain")``: a real docker-registry (``bed.registry`` for storage inspection).
- the control-plane front (``bed.control_url``): every ECR, Service Quotas and STS request goes
  through it to moto. ``env()`` points AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_STS and
  AWS_ENDPOINT_URL_SERVICE_QUOTAS at it (the names tagwarden's src/aws/config.cpp reads:
  ``AWS_ENDPOINT_URL_<env_id>``, and botocore/awscli read the same ones).
- the data plane (``bed.data_url``): ECR's registry endpoint in front of the docker-registry.
  ``env()`` sets TAGWARDEN_RESOLVE so ``<acct>.dkr.ecr.<region>.amazonaws.com:<port>`` reaches it;
  tagwarden then needs ``--plain-http`` for that host.
- a blob host standing in for S3 (ECR answers blob GETs with a 307 to a pre-signed S3 URL).

Gaps in moto 5.2 that this layer fills (reference: ../shared/reference/ecr-api.md, "§n" below):

1. Signatures (§1): moto accepts any. The front verifies every request with botocore's SigV4Auth
   (ecr_sigv4.py): known access key, session token, credential scope date/region/service (the
   service must be the signing name ``ecr``, not ``api.ecr``; ``servicequotas``; ``sts``), the
   headers listed in SignedHeaders, X-Amz-Date within 5 minutes, x-amz-content-sha256 matching
   the body. Failures answer as AWS: 403 ``{"__type":"InvalidSignatureException","message":...}``
   (also UnrecognizedClientException, MissingAuthenticationTokenException,
   IncompleteSignatureException); STS errors in its XML with SignatureDoesNotMatch etc. Keys
   issued by STS through the front (AssumeRole*, GetSessionToken, ...) are learned from moto's
   answers and accepted with their session token. AssumeRoleWithWebIdentity/SAML are unsigned,
   as in AWS.
2. GetAuthorizationToken (§2): moto returns the constant ``AWS:<acct>-auth-token`` with
   ``expiresAt`` in 2015. The front issues a fresh random password per call (1-2 KB: "the size of
   the authorization token ... is not fixed"), ``expiresAt`` = now + 12 h (``token_ttl``), and
   ECR's ``proxyEndpoint`` (``https://<acct>.dkr.ecr.<region>.amazonaws.com``, no port). The data
   plane accepts any unexpired issued password; ``expire_tokens()`` expires them all.
3. Service Quotas (§3): moto knows only ``vpc`` quotas (GetServiceQuota for ecr answers
   NoSuchResourceException; GetAWSDefaultServiceQuota is a 500). The front answers both for
   ``ecr``/``L-03A36CE1`` (Images per repository): applied value ``service_quota`` (default: the
   bed's ``quota``), AWS default 100,000 (§3.1). ``deny_service_quotas()`` makes them answer
   AccessDeniedException, to test the documented-default fallback.
4. StartLifecyclePolicyPreview / GetLifecyclePolicyPreview (§2): missing in moto (500). The front
   evaluates the policy (ecr_lifecycle.py, checked against lifecycle-vectors.json) over the
   repository's images at the moment of the Start call; Start answers IN_PROGRESS, Get COMPLETE
   with previewResults (paginated, maxResults 1-100) and summary; Get before any Start answers
   LifecyclePolicyPreviewNotFoundException.
5. DescribeImages / ListImages (§2): moto ignores maxResults/nextToken and ``filter``. The front
   paginates (default 100, 1-1000, opaque nextToken) and filters by tagStatus; DescribeImages also
   gets ECR's push times (fractional epoch seconds, kept across the tag-move workaround in 8),
   imageSizeInBytes (moto reports the *config* size, nothing for an index; the bed reports the sum
   of the layer sizes, and for an index the largest child, as §2 says) and lastRecordedPullTime
   (set by a manifest GET on the data plane). ``set_pushed_at`` back-dates an image for
   lifecycle tests.
6. PutImage (§2): moto raises a bare Exception (HTTP 500) for an unknown repository and
   ImageAlreadyExistsException where ECR says ImageTagAlreadyExistsException (immutable tag), and
   checks neither layers nor the image quota. Control-plane PutImage goes through the same store
   as a manifest PUT on the data plane (below): RepositoryNotFoundException,
   ImageTagAlreadyExistsException, LimitExceededException at the quota, LayersNotFoundException
   when the registry lacks a blob, ImageAlreadyExistsException for an unchanged digest and tag;
   the manifest is written to the docker-registry too, so a retag with PutImage is pullable.
7. PutImage digests: without ``imageDigest`` moto invents one (sha256 of the concatenated layer
   digests; random for an index). The bed always passes ``imageDigest`` = sha256 of the manifest
   bytes and checks that moto echoes it. moto accepts OCI and Docker manifests and indexes
   (media type from the manifest or the Content-Type of the PUT): no workaround needed.
8. A tag moved in a mutable repository: moto deletes the image that loses its last tag; ECR keeps
   it, untagged (the "tag race" incident). The bed re-puts that manifest untagged with its digest
   and original push time.
9. BatchDeleteImage / DeleteRepository: moto only changes its own state; the front then removes
   the deleted tags and manifests (or the repository) from the docker-registry, so the data plane
   agrees with the control plane.
10. imageTagMutabilityExclusionFilters (§2 PutImageTagMutability): moto matches a filter with
   ``re.match`` (so ``*-dev`` crashes its PutImage with a 500, ``dev-*`` means "dev" plus dashes),
   and any untagged PutImage (an index child, the re-put of 8) in a repository with filters
   crashes on ``re.match(filter, None)``. The bed decides mutability itself with ECR's wildcards
   and, for the length of a mirror, sets such a repository to plain MUTABLE in moto and then back
   to its mode and filters (under the repository lock; a DescribeRepositories racing a push to that
   repository can see MUTABLE for those milliseconds).

11. Repository creation templates (moto 5.2 has none): Create/Describe/Delete/
   UpdateRepositoryCreationTemplate are answered by the front from the bed's own store (see
   ``_install_creation_templates``): ECR's field checks from the service model (prefix pattern or
   ``ROOT``, appliedFor from REPLICATION/PULL_THROUGH_CACHE/CREATE_ON_PUSH, lifecycle policy text that
   parses, at most 5 exclusion filters), TemplateAlreadyExistsException, TemplateNotFoundException,
   pages of DescribeRepositoryCreationTemplates (maxResults 1-1000, nextToken), createdAt/updatedAt.
   CREATE_ON_PUSH: a write (POST, PUT, PATCH) on the data plane to a repository that does not exist,
   when a CREATE_ON_PUSH template applies (the longest prefix P with the name under "P/", else ROOT),
   first creates the repository with the template's tag mutability, exclusion filters and lifecycle
   policy (an assumption: ECR's documentation does not say at which request of a push it creates the
   repository; reads of a missing repository stay 404 NAME_UNKNOWN). ``create_repository_creation_template``
   writes one directly.
12. Archived images (test hook, moto knows no storage classes): ``archive_image(repo, digest, when)``
   marks an image ARCHIVED with ``lastArchivedAt`` = ``when`` (``restore_image`` marks it ACTIVE again
   with ``lastActivatedAt``); DescribeImages then filters by ``imageStatus`` (ACTIVE by default,
   ARCHIVED, ANY) and reports ``imageStatus``, ``lastArchivedAt`` and ``lastActivatedAt``. Nothing
   else changes (the data plane still serves an archived image's manifest; ECR answers 404).

The data plane (ECR's registry endpoint, §4), in front of the docker-registry:

- HTTP Basic only: 401 with ``WWW-Authenticate: Basic realm="https://<acct>.dkr.ecr.<region>.
  amazonaws.com/",service="ecr.amazonaws.com"`` and ``{"errors":[{"code":"DENIED","message":
  "Not Authorized"}]}`` without or with wrong credentials (user ``AWS``, password from
  GetAuthorizationToken); an expired token answers 403 DENIED "Your authorization token has
  expired. Reauthenticate and try again." (observed text, status assumed).
- a repository moto does not know: 404 NAME_UNKNOWN "The repository with name '<repo>' does not
  exist in the registry with id '<acct>'" (docker-registry would create it).
- manifest PUT, under a per-repository lock (so two racing pushes of one tag are decided one after
  the other, as in ECR): a *new* digest when the repository already holds >= its quota images
  (DescribeImages, untagged and index children included) -> 403 DENIED "The repository with name
  '<repo>' in registry with id '<acct>' already has the maximum allowed number of images which is
  '<N>'"; a tag that exists on another digest and is immutable (IMMUTABLE; *_WITH_EXCLUSION with
  ECR's ``*`` wildcards) -> 400 TAG_INVALID "The image tag '<tag>' already exists in the '<repo>'
  repository and cannot be overwritten because the repository is immutable." ("... because the
  tag is immutable." for the exclusion modes). Otherwise the PUT goes to the docker-registry and,
  once it answered 201, is mirrored into moto with PutImage (same bytes, digest, media type, tag).
  Re-pushing a digest the repository holds never counts against the quota (an inference: ECR's
  text is about the image count).
- ``GET /v2/<repo>/tags/list?n=`` above 1000 -> 405 UNSUPPORTED (§4, observed).
- blob GET of an existing blob -> 307 to the blob host, a pre-signed URL on another host name
  (``localhost`` for clients that came by IP, ``prod-<region>-starport-layer-bucket.s3.<region>.
  amazonaws.com`` - pinned in TAGWARDEN_RESOLVE - for clients that came by the ECR name). The blob
  host answers 400 InvalidArgument "Only one auth mechanism allowed ..." when the request carries
  an Authorization header, as S3 does. ``blob_redirect=False`` turns this off.
- blob mount (``POST .../blobs/uploads/?mount=&from=``): ECR mounts only with the BLOB_MOUNTING
  account setting, off by default, so the bed drops ``mount``/``from`` and the registry answers
  202 with an upload session (``blob_mounting=True`` passes them through).
- manifest GET -> lastRecordedPullTime; manifest DELETE (202) -> mirrored into moto.
- everything else is forwarded to the docker-registry as is (bodies streamed both ways).

moto behaviours left as they are (tests must not rely on them):
- DescribeRepositories ignores maxResults/nextToken; repositories carry no ``createdAt`` fraction.
- A mirror moto refuses after the docker-registry accepted the manifest leaves the two apart; it
  answers 500 and is recorded in ``bed.errors`` (none is known to happen).
- A PutImage sent to moto directly (``via="moto"``) gets none of the fixes above.
- BatchGetImage ignores acceptedMediaTypes; ListImages knows no ARCHIVED images (DescribeImages only those
  ``archive_image`` marks).
- PutLifecyclePolicy (moto's schema) refuses archive rules (``storageClass``, ``sinceImageTransitioned``,
  ``transition``) that ECR accepts: give such a policy to tagwarden with ``--policy``.
- No throttling (unless ``throttle(operation, every)`` asks for it), no KMS, no scanning, no replication, no referrers (ListImageReferrers).
- STS: moto accepts any web identity token and role.
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

import ecr_lifecycle
import ecr_sigv4
from procs import stop_process_group
from registry import Registry

DEFAULT_ACCOUNT = "123456789012"  # moto's default account
DEFAULT_REGION = "eu-central-1"   # not us-east-1, so a hard-coded default region shows
ECR_DEFAULT_IMAGE_QUOTA = 100000  # ecr-api.md §3.1, "Images per repository", L-03A36CE1
IMAGE_QUOTA_CODE = "L-03A36CE1"
TOKEN_TTL = 12 * 3600.0           # "Authorization tokens are valid for 12 hours"

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921"
SQ_TARGET = "ServiceQuotasV20190624"
_SERVICE_BY_TARGET = {ECR_TARGET: "ecr", SQ_TARGET: "servicequotas"}
_UNSIGNED_STS_ACTIONS = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authenticate", "proxy-authorization", "expect"}
_CHUNK = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_V2_RE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/(?P<rest>.*)$")
_INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json"}
_MOTO_START_TIMEOUT = 60.0

# moto's WSGI app (what moto_server serves) on 127.0.0.1:0; the kernel picks the port, no race.
# It exits when the test process dies (it runs in its own session, so nothing else would stop it).
_MOTO_LAUNCHER = r"""
import os, signal, sys
import socket
from werkzeug.serving import WSGIRequestHandler, make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
app.debug = True
class Handler(WSGIRequestHandler):
    def setup(self):  # headers and body are two sends: without this the body waits for a delayed ACK
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Handler)
os.environ["MOTO_PORT"] = str(server.port)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
def orphaned(parent=os.getppid()):
    import time
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
import threading
threading.Thread(target=orphaned, daemon=True).start()
sys.stdout.write(f"{server.port}\n")
sys.stdout.flush()
os.dup2(2, 1)
server.serve_forever()
"""


class TestbedError(RuntimeError):
    pass


class _ClientGone(ConnectionError):
    """The client closed its connection (or sent a body the bed will not take)."""


class _MotoError(Exception):
    """An error answer from moto (``code`` is the AWS error name)."""

    def __init__(self, status, code, message):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class _ApiError(Exception):
    """An AWS JSON error the front answers itself."""

    def __init__(self, code, message, status=400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class DataPlaneRequest:
    """One request the data plane answered (``note`` says what the bed did with it)."""

    __slots__ = ("method", "uri", "path", "status", "note", "time")

    def __init__(self, method, uri, status, note):
        self.method = method
        self.uri = uri
        self.path = uri.split("?", 1)[0]
        self.status = status
        self.note = note
        self.time = time.monotonic()  # when it was answered and logged

    def __repr__(self):
        return f"DataPlaneRequest({self.method} {self.uri} -> {self.status}{' ' + self.note if self.note else ''})"


class ApiCall:
    """One control-plane request: service signing name, operation, status, AWS error name."""

    __slots__ = ("service", "operation", "status", "error", "access_key", "time")

    def __init__(self, service, operation, status, error, access_key):
        self.service = service
        self.operation = operation
        self.status = status
        self.error = error
        self.access_key = access_key
        self.time = time.monotonic()  # when it was answered and logged (comparable with DataPlaneRequest.time)

    def __repr__(self):
        return f"ApiCall({self.service}.{self.operation} -> {self.status}{' ' + self.error if self.error else ''})"


def _wildcard(pattern):
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def _amz_date(when=None):
    return (when or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def _epoch(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    return float(value)


def _manifest_size(manifest, child_size):
    """ECR's imageSizeInBytes: the layers of an image; the largest child of an index (§2)."""
    if isinstance(manifest.get("manifests"), list):
        sizes = [child_size(m.get("digest")) for m in manifest["manifests"]]
        sizes = [s for s in sizes if s is not None]
        return max(sizes) if sizes else None
    layers = manifest.get("layers")
    if isinstance(layers, list):
        return sum(int(layer.get("size") or 0) for layer in layers)
    return None


# -- HTTP plumbing ---------------------------------------------------------------------------------

class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, handler, bed, name):
        self.bed = bed
        self.name = name
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        self.bed._record_error(f"{self.name}: unhandled error\n{traceback.format_exc()}")


class _BaseHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # The handler writes a response's headers and its body in two sends: with Nagle's algorithm the
        # body then waits for the client's delayed ACK (40 ms on Linux), a cost no real endpoint has.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    @property
    def bed(self):
        return self.server.bed

    def _chunked(self):
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _iter_chunked(self):
        """Yields (raw framing bytes, data) of a chunked request body, trailers included."""
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise _ClientGone("client closed the connection mid-body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                raw = line
                while True:
                    trailer = self.rfile.readline(65537)
                    raw += trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                yield raw, b""
                return
            data = self.rfile.read(size)
            crlf = self.rfile.readline(65537)
            yield line + data + crlf, data

    def _read_body(self, limit=_MAX_BODY):
        if self._chunked():
            chunks = []
            total = 0
            for _raw, data in self._iter_chunked():
                total += len(data)
                if total > limit:
                    raise _ClientGone("request body too large for the test bed")
                chunks.append(data)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise _ClientGone("request body too large for the test bed")
        data = self.rfile.read(length) if length else b""
        if len(data) != length:
            raise _ClientGone("client closed the connection mid-body")
        return data

    def _send(self, status, body=b"", headers=(), content_type=None):
        self.send_response_only(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()

    def _relay(self, response, method):
        """Streams an upstream http.client response back to the client; returns its status."""
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        has_body = method != "HEAD" and response.status not in (204, 304) and not 100 <= response.status < 200
        for key, value in response.getheaders():
            if key.lower() in _HOP_BY_HOP:
                continue
            self.send_header(key, value)
        rechunk = has_body and length is None
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if has_body:
            while True:
                data = response.read(_CHUNK)
                if not data:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if rechunk else data)
            if rechunk:
                self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        return response.status


# -- the control-plane front -----------------------------------------------------------------------

class _FrontHandler(_BaseHandler):
    server_version = "tw-ecr-testbed-front"

    def _handle(self):
        bed = self.bed
        try:
            body = self._read_body()
        except ConnectionError:
            self.close_connection = True
            return
        target = self.headers.get("X-Amz-Target")
        if target:
            prefix, _, operation = target.partition(".")
            service = _SERVICE_BY_TARGET.get(prefix)
            protocol = "json"
        else:
            query = self.path.split("?", 1)[1] if "?" in self.path else ""
            form = urllib.parse.parse_qs(query)
            if "form-urlencoded" in self.headers.get("Content-Type", ""):
                form.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
            operation = (form.get("Action") or [""])[0]
            service = "sts"
            protocol = "query"
        access_key = None
        unsigned = protocol == "query" and operation in _UNSIGNED_STS_ACTIONS and not self.headers.get("Authorization")
        if not unsigned:
            regions = {bed.region, "us-east-1"} if service == "sts" else {bed.region}
            try:
                verified = ecr_sigv4.verify(self.command, self.path, self.headers.items(), body,
                                            bed._credential, expected_service=service, regions=regions)
                access_key = verified.access_key
            except ecr_sigv4.SignatureError as error:
                if protocol == "query":
                    self._query_error(error.status, error.query_code, error.message)
                else:
                    self._json_error(error.status, error.code, error.message, service)
                bed._log_api(service, operation, error.status, error.code, None)
                return
        if bed._throttled(service, operation, body):
            self._json_error(400, "ThrottlingException", "Rate exceeded", service)
            bed._log_api(service, operation, 400, "ThrottlingException", access_key)
            return
        handler = bed._front_ops.get((service, operation))
        if handler is not None:
            try:
                params = json.loads(body or b"{}")
                status, result = handler(params)
                self._json(status, result)
                bed._log_api(service, operation, status, None, access_key)
            except _ApiError as error:
                self._json_error(error.status, error.code, error.message, service)
                bed._log_api(service, operation, error.status, error.code, access_key)
            except _MotoError as error:
                self._json_error(error.status, error.code, error.message, service)
                bed._log_api(service, operation, error.status, error.code, access_key)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                self._json_error(400, "InvalidParameterException", f"Invalid request: {error}", service)
                bed._log_api(service, operation, 400, "InvalidParameterException", access_key)
            return
        status, headers, data = bed._moto_forward(self.command, self.path, self.headers.items(), body)
        error = None
        if status >= 400:
            error = headers.get("x-amzn-errortype", "").split(":")[0] or None
        elif service == "sts":
            bed._learn_sts_credentials(data, headers.get("content-type", ""))
        bed._after_forward(service, operation, status, body)
        self._send(status, data, [(k, v) for k, v in headers.items() if k not in ("content-length", "date", "server")])
        bed._log_api(service, operation, status, error, access_key)

    do_POST = do_GET = do_PUT = do_DELETE = _handle

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self._send(status, data, [("x-amzn-RequestId", str(uuid.uuid4()))], "application/x-amz-json-1.1")

    def _json_error(self, status, code, message, service):
        key = "Message" if service == "servicequotas" else "message"
        data = json.dumps({"__type": code, key: message}).encode()
        self._send(status, data, [("x-amzn-RequestId", str(uuid.uuid4())), ("X-Amzn-ErrorType", code)],
                   "application/x-amz-json-1.1")

    def _query_error(self, status, code, message):
        escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        request_id = str(uuid.uuid4())
        data = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
                "  <Error>\n    <Type>Sender</Type>\n"
                f"    <Code>{code}</Code>\n    <Message>{escaped}</Message>\n  </Error>\n"
                f"  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n").encode()
        self._send(status, data, [("x-amzn-RequestId", request_id)], "text/xml")


# -- the data plane (ECR's registry endpoint) ------------------------------------------------------

class _DataHandler(_BaseHandler):
    server_version = "tw-ecr-testbed-registry"

    def _handle(self):
        bed = self.bed
        uri = self.path
        path, _, query = uri.partition("?")
        try:
            status, note = self._dispatch(path, query)
        except ConnectionError:
            self.close_connection = True
            bed._log_request(self.command, uri, None, "client gone")
            return
        bed._log_request(self.command, uri, status, note)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _oci_error(self, status, code, message, headers=()):
        if not self._body_consumed:
            self._drain()
        data = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(status, data, [("Docker-Distribution-Api-Version", "registry/2.0"), *headers],
                   "application/json; charset=utf-8")
        return status

    def _drain(self):
        self._body_consumed = True
        if self._chunked():
            for _ in self._iter_chunked():
                pass
            return
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            data = self.rfile.read(min(_CHUNK, length))
            if not data:
                raise _ClientGone("client closed the connection mid-body")
            length -= len(data)

    def _dispatch(self, path, query):
        bed = self.bed
        self._body_consumed = False
        auth = bed._check_basic(self.headers.get("Authorization"))
        if auth != "ok":
            if auth == "expired":
                return self._oci_error(403, "DENIED", "Your authorization token has expired. "
                                                      "Reauthenticate and try again."), "expired token"
            return self._oci_error(401, "DENIED", "Not Authorized",
                                   [("WWW-Authenticate", bed._challenge)]), "no valid credentials"
        match = _V2_RE.match(path)
        if not match:
            return self._forward(self.command, self.path), None
        repo, kind, rest = match["name"], match["kind"], match["rest"]
        if bed._repository(repo) is None and self.command in ("POST", "PUT", "PATCH"):
            bed._create_on_push(repo)
        if bed._repository(repo) is None:
            return self._oci_error(404, "NAME_UNKNOWN", f"The repository with name '{repo}' does not exist in the "
                                                         f"registry with id '{bed.account}'"), "unknown repository"
        params = urllib.parse.parse_qs(query)
        if kind == "tags" and rest == "list":
            n = (params.get("n") or [None])[0]
            if n is not None and n.isdigit() and int(n) > 1000:
                return self._oci_error(405, "UNSUPPORTED", "Invalid parameter at 'maxResults' failed to satisfy "
                                                           "constraint: 'Member must have value less than or equal "
                                                           "to 1000'"), None
        if kind == "manifests" and self.command == "PUT":
            return self._put_manifest(repo, rest)
        if kind == "manifests" and self.command == "DELETE":
            status = self._forward(self.command, self.path)
            if status == 202:
                bed._mirror_manifest_delete(repo, rest)
            return status, None
        if kind == "manifests" and self.command == "GET":
            return self._forward(self.command, self.path, on_response=lambda r: bed._note_pull(repo, r)), None
        if kind == "blobs" and self.command == "GET" and _DIGEST_RE.match(rest) and bed.blob_redirect:
            status, _headers, _body = bed._registry_call("HEAD", f"/v2/{repo}/blobs/{rest}")
            if status == 200:
                location = bed._presign_blob(repo, rest, self.headers.get("Host", ""))
                self._send(307, b"", [("Location", location), ("Docker-Distribution-Api-Version", "registry/2.0")])
                return 307, "redirect to the blob host"
        if kind == "blobs" and self.command == "POST" and rest.rstrip("/") == "uploads" and "mount" in params \
                and not bed.blob_mounting:
            kept = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
                    if k not in ("mount", "from")]
            new_uri = path + ("?" + urllib.parse.urlencode(kept) if kept else "")
            return self._forward(self.command, new_uri), "mount dropped (BLOB_MOUNTING disabled)"
        return self._forward(self.command, self.path), None

    def _put_manifest(self, repo, reference):
        bed = self.bed
        body = self._read_body()
        self._body_consumed = True
        media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        outcome = bed._store_manifest(repo, reference, body, media_type, self._forward_headers())
        if outcome.error == "quota":
            return self._oci_error(403, "DENIED", outcome.message), "image quota"
        if outcome.error == "tag_invalid":
            return self._oci_error(400, "TAG_INVALID", outcome.message), "immutable tag"
        if outcome.error == "name_unknown":
            return self._oci_error(404, "NAME_UNKNOWN", outcome.message), "unknown repository"
        if outcome.error == "mirror":
            return self._oci_error(500, "UNKNOWN", outcome.message), "mirror into moto failed"
        status, headers, data = outcome.registry_response
        self._send(status, data, [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP | {"content-length"}])
        return status, outcome.note

    def _forward_headers(self):
        return [(k, v) for k, v in self.headers.items()
                if k.lower() not in _HOP_BY_HOP and k.lower() not in ("authorization", "content-length")]

    def _forward(self, method, uri, on_response=None):
        """Sends the request to the docker-registry (streaming the body) and relays the answer."""
        bed = self.bed
        conn = http.client.HTTPConnection("127.0.0.1", bed.registry.port, timeout=300)
        try:
            conn.putrequest(method, uri, skip_host=True, skip_accept_encoding=True)
            for key, value in self._forward_headers():
                conn.putheader(key, value)
            chunked = self._chunked()
            length = int(self.headers.get("Content-Length") or 0)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif length or method in ("PUT", "POST", "PATCH"):
                conn.putheader("Content-Length", str(length))
            conn.endheaders()
            if chunked:
                for raw, _data in self._iter_chunked():
                    conn.send(raw)
            else:
                while length > 0:
                    data = self.rfile.read(min(_CHUNK, length))
                    if not data:
                        raise _ClientGone("client closed the connection mid-body")
                    conn.send(data)
                    length -= len(data)
            self._body_consumed = True
            response = conn.getresponse()
        except _ClientGone:
            conn.close()
            raise
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            self._body_consumed = True
            self.close_connection = True
            return self._oci_error(502, "UNKNOWN", f"ecr testbed: docker-registry failed: {error}")
        try:
            if on_response is not None:
                on_response(response)
            return self._relay(response, method)
        finally:
            conn.close()


# -- the blob host (S3 stand-in) -------------------------------------------------------------------

class _BlobHandler(_BaseHandler):
    server_version = "AmazonS3"

    def _handle(self):
        bed = self.bed
        path, _, query = self.path.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        parts = path.strip("/").split("/")
        status, note = self._serve(parts, params)
        bed._log_blob(self.command, self.path, status, note)

    do_GET = do_HEAD = _handle

    def _s3_error(self, status, code, message):
        data = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>").encode()
        self._send(status, data, [], "application/xml")
        return status

    def _serve(self, parts, params):
        bed = self.bed
        if self.headers.get("Authorization"):
            return self._s3_error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                                  "query parameter, Signature query string parameter or the Authorization header "
                                  "should be specified"), "Authorization header sent to the blob host"
        if len(parts) < 2 or not _DIGEST_RE.match(parts[-1]):
            return self._s3_error(404, "NoSuchKey", "The specified key does not exist."), None
        repo, digest = "/".join(parts[:-1]), parts[-1]
        verdict = bed._check_presigned(repo, digest, params)
        if verdict != "ok":
            return self._s3_error(403, "AccessDenied" if verdict == "expired" else "SignatureDoesNotMatch",
                                  "Request has expired" if verdict == "expired" else
                                  "The request signature we calculated does not match the signature you "
                                  "provided."), verdict
        conn = http.client.HTTPConnection("127.0.0.1", bed.registry.port, timeout=300)
        try:
            headers = {"Host": f"127.0.0.1:{bed.registry.port}"}
            if self.headers.get("Range"):
                headers["Range"] = self.headers["Range"]
            conn.request(self.command, f"/v2/{repo}/blobs/{digest}", headers=headers)
            response = conn.getresponse()
            if response.status not in (200, 206):
                response.read()
                return self._s3_error(404, "NoSuchKey", "The specified key does not exist."), None
            self.send_response_only(response.status)
            for key in ("Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified"):
                if response.getheader(key):
                    self.send_header(key, response.getheader(key))
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("ETag", f'"{digest.split(":", 1)[1][:32]}"')
            self.end_headers()
            if self.command != "HEAD":
                while True:
                    data = response.read(_CHUNK)
                    if not data:
                        break
                    self.wfile.write(data)
            self.wfile.flush()
            return response.status, None
        finally:
            conn.close()


class _Stored:
    """What the image store decided for one manifest write."""

    __slots__ = ("error", "message", "registry_response", "digest", "unchanged", "note")

    def __init__(self, error=None, message=None, registry_response=None, digest=None, unchanged=False, note=None):
        self.error = error
        self.message = message
        self.registry_response = registry_response
        self.digest = digest
        self.unchanged = unchanged
        self.note = note


# -- the test bed ----------------------------------------------------------------------------------

class EcrTestbed:
    """moto + docker-registry + the ECR layer; use as a context manager (see the module docstring).

    ``quota``: the default image limit of every repository (``set_quota`` overrides one) and the
    applied value Service Quotas reports unless ``service_quota`` is given. ``listing_cache``: keep
    moto's image list of a repository until moto's ECR state changes through the bed (moto serializes
    every image on each DescribeImages, about 0.3 ms per image, and the bed lists them for every page and
    every manifest PUT); for benchmarks of thousands of images. Writes sent to moto around the bed
    (``client(via="moto")``) are not seen by it. ``access_key_id`` /
    ``secret_access_key``: the only long-term credentials the front accepts (random by default).
    """

    def __init__(self, region=DEFAULT_REGION, account=DEFAULT_ACCOUNT, quota=ECR_DEFAULT_IMAGE_QUOTA,
                 service_quota=None, access_key_id=None, secret_access_key=None, token_ttl=TOKEN_TTL,
                 blob_redirect=True, blob_mounting=False, start_timeout=_MOTO_START_TIMEOUT, listing_cache=False):
        self.region = region
        self.account = account
        self.default_quota = int(quota)
        self.service_quota = service_quota
        self.access_key_id = access_key_id or "AKIA" + secrets.token_hex(8).upper()
        self.secret_access_key = secret_access_key or secrets.token_urlsafe(30)
        self.token_ttl = token_ttl
        self.blob_redirect = blob_redirect
        self.blob_mounting = blob_mounting
        self.start_timeout = start_timeout
        self.listing_cache = listing_cache
        self._moto_generation = 0  # bumped after every ECR write the bed sends or forwards to moto
        self._listings = {}        # name -> (generation, moto's imageDetails), with listing_cache
        self.registry = None
        self.moto_port = None
        self.workdir = None
        self._moto = None
        self._moto_log = None
        self._servers = {}
        self._threads = []
        self._lock = threading.RLock()
        self._repo_locks = {}
        self._credentials = {self.access_key_id: ecr_sigv4.Credential(self.access_key_id, self.secret_access_key)}
        self._tokens = {}
        self._quotas = {}
        self._meta = {}
        self._previews = {}
        self._clients = {}
        self._deny_service_quotas = False
        self._refuse_image_status = False
        self._requests = []
        self._blob_requests = []
        self._api_calls = []
        self._errors = []
        self._presign_key = secrets.token_bytes(32)
        self._front_ops = {
            ("ecr", "GetAuthorizationToken"): self._op_get_authorization_token,
            ("ecr", "DescribeImages"): self._op_describe_images,
            ("ecr", "ListImages"): self._op_list_images,
            ("ecr", "PutImage"): self._op_put_image,
            ("ecr", "BatchDeleteImage"): self._op_batch_delete_image,
            ("ecr", "StartLifecyclePolicyPreview"): self._op_start_lifecycle_policy_preview,
            ("ecr", "GetLifecyclePolicyPreview"): self._op_get_lifecycle_policy_preview,
            ("servicequotas", "GetServiceQuota"): self._op_get_service_quota,
            ("servicequotas", "GetAWSDefaultServiceQuota"): self._op_get_default_service_quota,
        }
        self._install_creation_templates()

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.workdir = tempfile.mkdtemp(prefix="tw-ecr-testbed-")
        try:
            self._spawn_moto()
            self.registry = Registry("plain").start()
            for name, handler in (("front", _FrontHandler), ("data", _DataHandler), ("blobs", _BlobHandler)):
                server = _Server(handler, self, name)
                thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                          name=f"ecr-testbed-{name}-{server.server_address[1]}", daemon=True)
                thread.start()
                self._servers[name] = server
                self._threads.append(thread)
            self._wait_for_moto()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn_moto(self):
        env = dict(os.environ)
        env["MOTO_ACCOUNT_ID"] = self.account
        env.pop("MOTO_PORT", None)
        self._moto_log = os.path.join(self.workdir, "moto.log")
        with open(self._moto_log, "wb") as log:
            self._moto = subprocess.Popen([sys.executable, "-c", _MOTO_LAUNCHER], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True)

    def _wait_for_moto(self):
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self._moto.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self._moto.stdout.fileno(), 64)
                if not chunk:
                    break
                line += chunk
            elif self._moto.poll() is not None:
                break
        if not line.strip().isdigit():
            raise TestbedError(f"moto did not start (python {sys.executable} needs moto[server]):\n{self._moto_text()}")
        self.moto_port = int(line.strip())
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=5)
                conn.request("GET", "/tw-ecr-testbed-ping", headers={"Host": f"127.0.0.1:{self.moto_port}"})
                conn.getresponse().read()
                conn.close()
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
        raise TestbedError(f"moto did not answer on 127.0.0.1:{self.moto_port}:\n{self._moto_text()}")

    def _moto_text(self):
        try:
            with open(self._moto_log, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except (OSError, TypeError):
            return ""

    def stop(self):
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        self._servers = {}
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        if self._moto is not None:
            stop_process_group(self._moto)
            if self._moto.stdout:
                self._moto.stdout.close()
            self._moto = None
        if self.registry is not None:
            self.registry.stop()
            self.registry = None
        if self.workdir and os.path.isdir(self.workdir) and not os.environ.get("TW_KEEP_REGISTRY"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- addresses and environment -----------------------------------------------------------------

    def _port(self, name):
        return self._servers[name].server_address[1]

    @property
    def control_url(self):
        """The control-plane front (ECR, Service Quotas and STS endpoint)."""
        return f"http://127.0.0.1:{self._port('front')}"

    @property
    def moto_url(self):
        """moto itself: no signature check, none of the bed's fixes."""
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def data_port(self):
        return self._port("data")

    @property
    def data_url(self):
        return f"http://127.0.0.1:{self.data_port}"

    @property
    def registry_hostname(self):
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com"

    @property
    def registry_host(self):
        """``<acct>.dkr.ecr.<region>.amazonaws.com:<data port>``: an image reference's registry part."""
        return f"{self.registry_hostname}:{self.data_port}"

    @property
    def blob_hostname(self):
        return f"prod-{self.region}-starport-layer-bucket.s3.{self.region}.amazonaws.com"

    @property
    def resolve(self):
        """TAGWARDEN_RESOLVE: curl --resolve entries pinning the ECR and blob host names to loopback."""
        return (f"{self.registry_hostname}:{self.data_port}:127.0.0.1,"
                f"{self.blob_hostname}:{self._port('blobs')}:127.0.0.1")

    @property
    def _challenge(self):
        return f'Basic realm="https://{self.registry_hostname}/",service="ecr.amazonaws.com"'

    def env(self):
        """The environment variables a tagwarden (or aws CLI) process needs to use the bed."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_ECR": self.control_url,
            "AWS_ENDPOINT_URL_STS": self.control_url,
            "AWS_ENDPOINT_URL_SERVICE_QUOTAS": self.control_url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "TAGWARDEN_RESOLVE": self.resolve,
        }

    # -- clients -----------------------------------------------------------------------------------

    def client(self, service, via="front", access_key_id=None, secret_access_key=None, session_token=None):
        """A botocore client for ``service`` ("ecr", "service-quotas", "sts") against the front or moto."""
        import botocore.config
        import botocore.session
        key = (service, via, access_key_id, secret_access_key, session_token)
        with self._lock:
            cached = self._clients.get(key)
        if cached is not None:
            return cached
        session = botocore.session.Session()
        client = session.create_client(
            service, region_name=self.region,
            endpoint_url=self.control_url if via == "front" else self.moto_url,
            aws_access_key_id=access_key_id or self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
            aws_session_token=session_token,
            config=botocore.config.Config(retries={"total_max_attempts": 1}))
        with self._lock:
            return self._clients.setdefault(key, client)

    def _moto_ecr(self):
        return self.client("ecr", via="moto")

    # -- repositories (botocore straight to moto) --------------------------------------------------

    def create_repository(self, name, mutability="MUTABLE", lifecycle_policy=None, exclusion_filters=None):
        """Creates ``name`` in moto (tag mutability, optional lifecycle policy); returns the repository."""
        params = {"repositoryName": name, "imageTagMutability": mutability}
        if exclusion_filters:
            params["imageTagMutabilityExclusionFilters"] = [{"filterType": "WILDCARD", "filter": f}
                                                            for f in exclusion_filters]
        repository = self._moto_ecr().create_repository(**params)["repository"]
        if lifecycle_policy is not None:
            self.put_lifecycle_policy(name, lifecycle_policy)
        return repository

    def put_lifecycle_policy(self, name, policy):
        text = policy if isinstance(policy, str) else json.dumps(policy)
        return self._moto_ecr().put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=text)

    def delete_lifecycle_policy(self, name):
        return self._moto_ecr().delete_lifecycle_policy(repositoryName=name)

    def set_quota(self, name, n):
        """The image limit of repository ``name`` on the data plane and PutImage (ECR's is per account)."""
        with self._lock:
            self._quotas[name] = int(n)

    def quota(self, name):
        with self._lock:
            return self._quotas.get(name, self.default_quota)

    def set_service_quota(self, value):
        """The applied value GetServiceQuota reports for L-03A36CE1 (None: the bed's ``quota``)."""
        with self._lock:
            self.service_quota = value

    def deny_service_quotas(self, deny=True):
        """Service Quotas answers AccessDeniedException while set (the documented-default fallback)."""
        with self._lock:
            self._deny_service_quotas = deny

    def refuse_image_status_filter(self, refuse=True):
        """DescribeImages answers InvalidParameterException to a ``filter.imageStatus`` while set (as
        endpoints and emulators that predate archived images do)."""
        with self._lock:
            self._refuse_image_status = refuse

    def describe_images(self, name):
        """Every image of ``name`` as DescribeImages reports it through the front (botocore-parsed)."""
        client = self.client("ecr")
        details = []
        for page in client.get_paginator("describe_images").paginate(repositoryName=name):
            details.extend(page["imageDetails"])
        return details

    def image_count(self, name):
        return len(self._moto_images(name))

    def set_pushed_at(self, name, digest, when):
        """Back-dates an image: DescribeImages and the lifecycle preview report ``when`` (datetime or epoch)."""
        with self._lock:
            self._meta.setdefault((name, digest), {})["pushed_at"] = _epoch(when)

    def login_password(self):
        """A password for user ``AWS``, from GetAuthorizationToken through the front (signed)."""
        data = self.client("ecr").get_authorization_token()["authorizationData"][0]
        return base64.b64decode(data["authorizationToken"]).decode().split(":", 1)[1]

    def expire_tokens(self):
        """Every password issued so far stops working (the data plane answers 'token has expired')."""
        with self._lock:
            for password in self._tokens:
                self._tokens[password] = 0.0

    # -- logs --------------------------------------------------------------------------------------

    def _record_error(self, text):
        with self._lock:
            self._errors.append(text)

    @property
    def errors(self):
        """Internal failures of the bed (a mirror moto refused, a handler crash); tests assert it is empty."""
        with self._lock:
            return list(self._errors)

    def _log_request(self, method, uri, status, note):
        with self._lock:
            self._requests.append(DataPlaneRequest(method, uri, status, note))

    def _log_blob(self, method, uri, status, note):
        with self._lock:
            self._blob_requests.append(DataPlaneRequest(method, uri, status, note))

    def _log_api(self, service, operation, status, error, access_key):
        with self._lock:
            self._api_calls.append(ApiCall(service, operation, status, error, access_key))

    def mark(self):
        """The current length of the data-plane log (pass as ``since``)."""
        with self._lock:
            return len(self._requests)

    def requests(self, method=None, path=None, status=None, since=0):
        """Data-plane requests (optionally filtered by method, path regex, status), oldest first."""
        pattern = re.compile(path) if isinstance(path, str) else path
        with self._lock:
            entries = list(self._requests[since:])
        return [e for e in entries if (method is None or e.method == method.upper())
                and (pattern is None or pattern.search(e.path)) and (status is None or e.status == status)]

    def blob_requests(self):
        """Requests the blob host (S3 stand-in) received."""
        with self._lock:
            return list(self._blob_requests)

    def api_calls(self, operation=None, service=None):
        with self._lock:
            entries = list(self._api_calls)
        return [c for c in entries if (operation is None or c.operation == operation)
                and (service is None or c.service == service)]

    # -- credentials and tokens ----------------------------------------------------------------------

    def _credential(self, access_key):
        with self._lock:
            return self._credentials.get(access_key)

    def _learn_sts_credentials(self, data, content_type):
        """Remembers the temporary keys in an STS answer (XML; JSON for SDKs that speak it to STS)."""
        text = data.decode("utf-8", "replace")
        found = []
        for block in re.findall(r"<Credentials>(.*?)</Credentials>", text, re.S):
            found.append(dict(re.findall(r"<(AccessKeyId|SecretAccessKey|SessionToken)>([^<]*)<", block)))
        if "json" in content_type:
            try:
                document = json.loads(text)
                found.extend(v["Credentials"] for v in [document, *document.values()]
                             if isinstance(v, dict) and isinstance(v.get("Credentials"), dict))
            except (ValueError, AttributeError):
                pass
        with self._lock:
            for creds in found:
                if creds.get("AccessKeyId") and creds.get("SecretAccessKey"):
                    self._credentials[creds["AccessKeyId"]] = ecr_sigv4.Credential(
                        creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken"))

    def _check_basic(self, header):
        if not header or not header.lower().startswith("basic "):
            return "missing"
        try:
            user, _, password = base64.b64decode(header.split(None, 1)[1], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "bad"
        with self._lock:
            expires = self._tokens.get(password) if user == "AWS" else None
        if expires is None:
            return "bad"
        return "ok" if expires > time.time() else "expired"

    def _presign_blob(self, repo, digest, host_header):
        now = _amz_date()
        signature = hmac.new(self._presign_key, f"{repo}\n{digest}\n{now}".encode(), hashlib.sha256).hexdigest()
        host = host_header.rsplit(":", 1)[0] if host_header else ""
        if host.endswith(".amazonaws.com"):
            blob_host = f"{self.blob_hostname}:{self._port('blobs')}"
        else:
            blob_host = f"localhost:{self._port('blobs')}"
        query = urllib.parse.urlencode({
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"ASIA{secrets.token_hex(8).upper()}/{now[:8]}/{self.region}/s3/aws4_request",
            "X-Amz-Date": now, "X-Amz-Expires": "3600", "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": signature})
        return f"http://{blob_host}/{repo}/{digest}?{query}"

    def _check_presigned(self, repo, digest, params):
        date = params.get("X-Amz-Date", "")
        expected = hmac.new(self._presign_key, f"{repo}\n{digest}\n{date}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
            return "bad signature"
        try:
            signed_at = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            return "bad signature"
        if signed_at.timestamp() + int(params.get("X-Amz-Expires", "0")) < time.time():
            return "expired"
        return "ok"

    # -- moto, raw ---------------------------------------------------------------------------------

    def _moto_forward(self, method, target, headers, body):
        """Sends a verified request to moto as received; returns (status, {lower header: value}, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=120)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for key, value in headers:
                if key.lower() in _HOP_BY_HOP or key.lower() == "content-length":
                    continue
                conn.putheader(key, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()
                                     if k.lower() not in _HOP_BY_HOP}, data
        finally:
            conn.close()

    def _moto_json(self, target_prefix, signing_name, operation, params):
        """One AWS JSON call to moto (it reads the service from the credential scope); returns the result."""
        now = _amz_date()
        headers = [("Host", f"127.0.0.1:{self.moto_port}"), ("Content-Type", "application/x-amz-json-1.1"),
                   ("X-Amz-Target", f"{target_prefix}.{operation}"), ("X-Amz-Date", now),
                   ("Authorization", f"AWS4-HMAC-SHA256 Credential={self.access_key_id}/{now[:8]}/{self.region}/"
                                     f"{signing_name}/aws4_request, SignedHeaders=host;x-amz-date, "
                                     f"Signature={'0' * 64}")]
        status, response_headers, data = self._moto_forward("POST", "/", headers, json.dumps(params).encode())
        if status >= 400:
            code, message = response_headers.get("x-amzn-errortype", "").split(":")[0], None
            try:
                parsed = json.loads(data)
                code = (parsed.get("__type") or code or "").split("#")[-1]
                message = parsed.get("message") or parsed.get("Message")
            except ValueError:
                pass
            raise _MotoError(status, code or "ServerException",
                             message or data.decode("utf-8", "replace")[:500])
        return json.loads(data or b"{}")

    def _ecr(self, operation, **params):
        try:
            return self._moto_json(ECR_TARGET, "ecr", operation, params)
        finally:
            if not operation.startswith(("Describe", "List", "Get", "BatchGet")):
                self._moto_changed()

    def _moto_changed(self):
        with self._lock:
            self._moto_generation += 1

    def _repository(self, name):
        try:
            return self._ecr("DescribeRepositories", repositoryNames=[name])["repositories"][0]
        except _MotoError as error:
            if error.code == "RepositoryNotFoundException":
                return None
            raise

    def _moto_images(self, name):
        """moto's DescribeImages for ``name`` (every image, raw wire dicts), [] for an unknown repository."""
        with self._lock:
            generation = self._moto_generation  # before the read: a write during it makes it stale
            cached = self._listings.get(name) if self.listing_cache else None
        if cached is not None and cached[0] == generation:
            return [dict(image) for image in cached[1]]
        try:
            images = list(self._ecr("DescribeImages", repositoryName=name).get("imageDetails") or [])
            if self.listing_cache:
                with self._lock:
                    self._listings[name] = (generation, images)
                return [dict(image) for image in images]
            return images
        except _MotoError as error:
            if error.code == "RepositoryNotFoundException":
                return []
            raise

    def _images(self, name):
        """DescribeImages as ECR answers it: moto's images with the bed's push/pull times and sizes."""
        images = self._moto_images(name)
        with self._lock:
            for image in images:
                meta = self._meta.get((name, image["imageDigest"]), {})
                if "pushed_at" in meta:
                    image["imagePushedAt"] = round(meta["pushed_at"], 3)
                if meta.get("size") is not None:
                    image["imageSizeInBytes"] = meta["size"]
                if "pulled_at" in meta:
                    image["lastRecordedPullTime"] = round(meta["pulled_at"], 3)
                image.setdefault("imageStatus", "ACTIVE")
                self._apply_storage_class(image, meta)
        return images

    def _repo_lock(self, name):
        with self._lock:
            return self._repo_locks.setdefault(name, threading.Lock())

    # -- the docker-registry -----------------------------------------------------------------------

    def _registry_call(self, method, path, headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.registry.port, timeout=60)
        try:
            all_headers = {"Host": f"127.0.0.1:{self.registry.port}"}
            all_headers.update(headers or {})
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            conn.close()

    def _registry_repo_dir(self, name):
        return os.path.join(self.registry.storage_dir, "docker", "registry", "v2", "repositories", name)

    def _reconcile_registry(self, name):
        """Makes the docker-registry hold what moto holds for ``name`` (after control-plane deletes)."""
        images = self._moto_images(name)
        moto_tags = {tag: image["imageDigest"] for image in images for tag in image.get("imageTags") or []}
        digests = {image["imageDigest"] for image in images}
        for tag, digest in self.registry.tags(name).items():
            if moto_tags.get(tag) != digest:
                shutil.rmtree(os.path.join(self._registry_repo_dir(name), "_manifests", "tags", tag),
                              ignore_errors=True)
        for digest in self.registry.manifest_digests(name):
            if digest not in digests:
                status, _headers, data = self._registry_call("DELETE", f"/v2/{name}/manifests/{digest}")
                if status not in (202, 404):
                    self._record_error(f"reconcile {name}: DELETE {digest}: {status} {data[:200]!r}")
        with self._lock:
            for key in [k for k in self._meta if k[0] == name and k[1] not in digests]:
                del self._meta[key]

    # -- the image store (data-plane manifest PUT and control-plane PutImage) ------------------------

    def _tag_immutable(self, repository, tag):
        mode = repository.get("imageTagMutability") or "MUTABLE"
        filters = [f.get("filter", "") for f in repository.get("imageTagMutabilityExclusionFilters") or []]
        excluded = any(_wildcard(f).match(tag) for f in filters)
        if mode == "IMMUTABLE":
            return True
        if mode == "IMMUTABLE_WITH_EXCLUSION":
            return not excluded
        if mode == "MUTABLE_WITH_EXCLUSION":
            return excluded
        return False

    def _store_manifest(self, name, reference, body, media_type, forward_headers=None, write_unchanged=True):
        """Checks quota and tag immutability, writes the manifest to the registry, mirrors it into moto."""
        with self._repo_lock(name):
            repository = self._repository(name)
            if repository is None:
                return _Stored("name_unknown", f"The repository with name '{name}' does not exist in the registry "
                                               f"with id '{self.account}'")
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            is_digest_ref = bool(_DIGEST_RE.match(reference))
            tag = None if is_digest_ref else reference
            if is_digest_ref and reference != digest:
                return _Stored(registry_response=self._registry_put(name, reference, body, media_type, forward_headers))
            images = self._moto_images(name)
            by_digest = {image["imageDigest"]: image for image in images}
            holder = next((image for image in images if tag and tag in (image.get("imageTags") or [])), None)
            existing = digest in by_digest
            limit = self.quota(name)
            if not existing and len(images) >= limit:
                return _Stored("quota", f"The repository with name '{name}' in registry with id '{self.account}' "
                                        f"already has the maximum allowed number of images which is '{limit}'")
            moving = holder is not None and holder["imageDigest"] != digest
            if moving and self._tag_immutable(repository, tag):
                mode = repository.get("imageTagMutability") or "MUTABLE"
                why = "the repository is immutable" if mode == "IMMUTABLE" else "the tag is immutable"
                return _Stored("tag_invalid", f"The image tag '{tag}' already exists in the '{name}' repository and "
                                              f"cannot be overwritten because {why}.")
            unchanged = (holder is not None and not moving) or (tag is None and existing)
            if unchanged and not write_unchanged:
                return _Stored(digest=digest, unchanged=True)
            response = self._registry_put(name, reference, body, media_type, forward_headers)
            if response[0] != 201:
                return _Stored(registry_response=response, digest=digest)
            if unchanged:
                return _Stored(registry_response=response, digest=digest, unchanged=True, note="unchanged")
            try:
                self._mirror(repository, tag, body, media_type, digest, existing, holder if moving else None)
            except (_MotoError, OSError, ValueError, http.client.HTTPException) as error:
                message = f"ecr testbed: PutImage mirror of {name}@{digest} ({tag}) into moto failed: {error}"
                self._record_error(message)
                return _Stored("mirror", message)
            return _Stored(registry_response=response, digest=digest, note="mirrored into moto")

    def _registry_put(self, name, reference, body, media_type, forward_headers):
        headers = dict(forward_headers or [])
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        headers["Content-Type"] = media_type or "application/vnd.oci.image.manifest.v1+json"
        conn = http.client.HTTPConnection("127.0.0.1", self.registry.port, timeout=60)
        try:
            conn.putrequest("PUT", f"/v2/{name}/manifests/{reference}", skip_host=True, skip_accept_encoding=True)
            if not any(k.lower() == "host" for k in headers):
                headers["Host"] = f"127.0.0.1:{self.registry.port}"
            for key, value in headers.items():
                conn.putheader(key, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _mirror(self, repository, tag, body, media_type, digest, existing, old_holder):
        """PutImage into moto, the bed's checks having passed (caller holds the repository lock).

        moto applies exclusion filters with re.match, and crashes on an untagged PutImage in a
        repository that has any: while mirroring, such a repository is made plain MUTABLE in moto
        and then given back its mode and filters.
        """
        name = repository["repositoryName"]
        filters = repository.get("imageTagMutabilityExclusionFilters")
        if not filters:
            return self._mirror_put(name, tag, body, media_type, digest, existing, old_holder)
        self._ecr("PutImageTagMutability", repositoryName=name, imageTagMutability="MUTABLE")
        try:
            return self._mirror_put(name, tag, body, media_type, digest, existing, old_holder)
        finally:
            self._ecr("PutImageTagMutability", repositoryName=name,
                      imageTagMutability=repository["imageTagMutability"], imageTagMutabilityExclusionFilters=filters)

    def _mirror_put(self, name, tag, body, media_type, digest, existing, old_holder):
        manifest_text = body.decode("utf-8")
        manifest = json.loads(manifest_text)
        media_type = media_type or manifest.get("mediaType")
        old = None
        if old_holder is not None and (old_holder.get("imageTags") or []) == [tag]:
            # moto deletes an image that loses its last tag; ECR keeps it untagged (re-put below).
            fetched = self._ecr("BatchGetImage", repositoryName=name,
                                imageIds=[{"imageDigest": old_holder["imageDigest"]}]).get("images") or []
            if fetched:
                old = fetched[0]
                with self._lock:
                    meta = self._meta.setdefault((name, old_holder["imageDigest"]), {})
                    meta.setdefault("pushed_at", float(old_holder.get("imagePushedAt") or time.time()))
        params = {"repositoryName": name, "imageManifest": manifest_text, "imageDigest": digest}
        if media_type:
            params["imageManifestMediaType"] = media_type
        if tag is not None:
            params["imageTag"] = tag
        try:
            result = self._ecr("PutImage", **params)
            echoed = result["image"]["imageId"]["imageDigest"]
            if echoed != digest:
                raise ValueError(f"moto stored digest {echoed}, the manifest's is {digest}")
        except _MotoError as error:
            if error.code != "ImageAlreadyExistsException":
                raise
        if old is not None and old["imageId"]["imageDigest"] not in {i["imageDigest"] for i in self._moto_images(name)}:
            params = {"repositoryName": name, "imageManifest": old["imageManifest"],
                      "imageDigest": old["imageId"]["imageDigest"]}
            if old.get("imageManifestMediaType"):
                params["imageManifestMediaType"] = old["imageManifestMediaType"]
            self._ecr("PutImage", **params)
        if not existing:
            def child_size(child_digest):
                with self._lock:
                    return self._meta.get((name, child_digest), {}).get("size")
            with self._lock:
                meta = self._meta.setdefault((name, digest), {})
                meta.setdefault("pushed_at", time.time())
                meta["size"] = _manifest_size(manifest, child_size)

    def _mirror_manifest_delete(self, name, reference):
        image_id = {"imageDigest": reference} if _DIGEST_RE.match(reference) else {"imageTag": reference}
        try:
            self._ecr("BatchDeleteImage", repositoryName=name, imageIds=[image_id])
        except _MotoError as error:
            self._record_error(f"mirror of DELETE {name}:{reference} into moto failed: {error}")

    def _note_pull(self, name, response):
        if response.status != 200:
            return
        digest = response.getheader("Docker-Content-Digest")
        if digest:
            with self._lock:
                self._meta.setdefault((name, digest), {})["pulled_at"] = time.time()

    def _after_forward(self, service, operation, status, body):
        if service == "ecr" and not operation.startswith(("Describe", "List", "Get", "BatchGet")):
            self._moto_changed()
        if service != "ecr" or status >= 400:
            return
        if operation == "DeleteRepository":
            try:
                name = json.loads(body or b"{}").get("repositoryName")
            except ValueError:
                return
            if name:
                shutil.rmtree(self._registry_repo_dir(name), ignore_errors=True)
                with self._lock:
                    for key in [k for k in self._meta if k[0] == name]:
                        del self._meta[key]
                    self._previews.pop(name, None)

    # -- front operations (the gaps) ---------------------------------------------------------------

    def _op_get_authorization_token(self, params):
        registry_ids = params.get("registryIds") or [self.account]
        data = []
        for registry_id in registry_ids:
            password = "eyJwYXlsb2FkIjoi" + secrets.token_urlsafe(random.randint(900, 1500))
            expires = time.time() + self.token_ttl
            with self._lock:
                self._tokens[password] = expires
            data.append({"authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
                         "expiresAt": round(expires, 3),
                         "proxyEndpoint": f"https://{registry_id}.dkr.ecr.{self.region}.amazonaws.com"})
        return 200, {"authorizationData": data}

    @staticmethod
    def _page(items, params, result_key, default=100, maximum=1000, extra=None):
        max_results = params.get("maxResults")
        if max_results is not None and not 1 <= int(max_results) <= maximum:
            raise _ApiError("InvalidParameterException", f"Invalid parameter at 'maxResults' failed to satisfy "
                                                         "constraint: 'Member must have value less than or "
                                                         f"equal to {maximum}'")
        size = int(max_results or default)
        start = 0
        if params.get("nextToken"):
            try:
                start = int(json.loads(base64.b64decode(params["nextToken"]))["offset"])
            except (ValueError, KeyError, TypeError):
                raise _ApiError("InvalidParameterException", "Invalid parameter at 'nextToken': the token is not valid")
        result = dict(extra or {})
        result[result_key] = items[start:start + size]
        if start + size < len(items):
            result["nextToken"] = base64.b64encode(json.dumps({"offset": start + size,
                                                               "n": secrets.token_hex(4)}).encode()).decode()
        return result

    @staticmethod
    def _tag_status_filter(params):
        status = ((params.get("filter") or {}).get("tagStatus") or "ANY").upper()
        if status not in ("TAGGED", "UNTAGGED", "ANY"):
            raise _ApiError("InvalidParameterException", f"Invalid parameter at 'filter.tagStatus': '{status}'")
        return status

    def _op_describe_images(self, params):
        name = params["repositoryName"]
        with self._lock:
            refuse_image_status = self._refuse_image_status
        if refuse_image_status and "imageStatus" in (params.get("filter") or {}):
            raise _ApiError("InvalidParameterException", "Invalid parameter at 'filter' failed to satisfy constraint: "
                                                         "unknown member 'imageStatus'")
        if params.get("imageIds") and (params.get("maxResults") or params.get("nextToken")):
            raise _ApiError("InvalidParameterException",
                            "Invalid parameter: maxResults and nextToken cannot be used with imageIds")
        if params.get("imageIds"):
            result = self._ecr("DescribeImages", repositoryName=name, imageIds=params["imageIds"])
            wanted = {d["imageDigest"] for d in result.get("imageDetails") or []}
            images = [image for image in self._images(name) if image["imageDigest"] in wanted]
        else:
            if self._repository(name) is None:
                raise _ApiError("RepositoryNotFoundException", f"The repository with name '{name}' does not exist "
                                                               f"in the registry with id '{self.account}'")
            images = self._images(name)
        status = self._tag_status_filter(params)
        image_status = ((params.get("filter") or {}).get("imageStatus") or "ACTIVE").upper()
        images = [i for i in images if status == "ANY" or bool(i.get("imageTags")) == (status == "TAGGED")]
        images = self._filter_image_status(images, image_status)
        return 200, self._page(images, params, "imageDetails")

    def _op_list_images(self, params):
        name = params["repositoryName"]
        if self._repository(name) is None:
            raise _ApiError("RepositoryNotFoundException", f"The repository with name '{name}' does not exist "
                                                           f"in the registry with id '{self.account}'")
        status = self._tag_status_filter(params)
        ids = []
        for image in self._moto_images(name):
            tags = image.get("imageTags") or []
            if tags and status in ("ANY", "TAGGED"):
                ids.extend({"imageDigest": image["imageDigest"], "imageTag": tag} for tag in tags)
            if not tags and status in ("ANY", "UNTAGGED"):
                ids.append({"imageDigest": image["imageDigest"]})
        return 200, self._page(ids, params, "imageIds")

    def _op_put_image(self, params):
        name = params["repositoryName"]
        text = params["imageManifest"]
        tag = params.get("imageTag")
        try:
            manifest = json.loads(text)
        except ValueError:
            raise _ApiError("InvalidParameterException",
                            "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'")
        media_type = params.get("imageManifestMediaType") or manifest.get("mediaType")
        if not media_type:
            raise _ApiError("InvalidParameterException",
                            "image manifest mediatype not provided in manifest or parameter")
        body = text.encode("utf-8")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if params.get("imageDigest") and params["imageDigest"] != digest:
            raise _ApiError("ImageDigestDoesNotMatchException",
                            f"The specified image digest '{params['imageDigest']}' does not match the digest "
                            f"'{digest}' of the image manifest.")
        outcome = self._store_manifest(name, tag or digest, body, media_type, write_unchanged=False)
        if outcome.error == "name_unknown":
            raise _ApiError("RepositoryNotFoundException", outcome.message)
        if outcome.error == "quota":
            raise _ApiError("LimitExceededException", "The operation did not succeed because it would have exceeded "
                                                       f"a service limit for your account. {outcome.message}")
        if outcome.error == "tag_invalid":
            raise _ApiError("ImageTagAlreadyExistsException", outcome.message)
        if outcome.error == "mirror":
            raise _ApiError("ServerException", outcome.message, 500)
        if outcome.unchanged:
            what = f"and tag '{tag}' " if tag else ""
            raise _ApiError("ImageAlreadyExistsException",
                            f"Image with digest '{digest}' {what}already exists in the repository with name "
                            f"'{name}' in registry with id '{self.account}'")
        status, _headers, data = outcome.registry_response
        if status != 201:
            try:
                errors = json.loads(data).get("errors") or [{}]
            except ValueError:
                errors = [{}]
            code = errors[0].get("code", "")
            if code in ("MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"):
                raise _ApiError("LayersNotFoundException",
                                f"The image contains layers that do not exist in the repository: "
                                f"{errors[0].get('detail') or errors[0].get('message')}")
            if code in ("MANIFEST_UNKNOWN",):
                raise _ApiError("ReferencedImagesNotFoundException",
                                "The manifest list is referencing an image that does not exist.")
            raise _ApiError("InvalidParameterException", f"Invalid parameter at 'imageManifest': {code} "
                                                         f"{errors[0].get('message', '')}".strip())
        image_id = {"imageDigest": digest}
        if tag:
            image_id["imageTag"] = tag
        return 200, {"image": {"registryId": self.account, "repositoryName": name, "imageId": image_id,
                               "imageManifest": text, "imageManifestMediaType": media_type}}

    def _op_batch_delete_image(self, params):
        name = params.get("repositoryName")
        with self._repo_lock(name):
            result = self._ecr("BatchDeleteImage", **params)
            self._reconcile_registry(name)
        return 200, result

    def _op_start_lifecycle_policy_preview(self, params):
        name = params["repositoryName"]
        text = params.get("lifecyclePolicyText")
        if not text:
            text = self._ecr("GetLifecyclePolicy", repositoryName=name)["lifecyclePolicyText"]
        elif self._repository(name) is None:
            raise _ApiError("RepositoryNotFoundException", f"The repository with name '{name}' does not exist "
                                                           f"in the registry with id '{self.account}'")
        images = self._images(name)
        referenced = set()
        indexes = [i["imageDigest"] for i in images if i.get("imageManifestMediaType") in _INDEX_TYPES]
        if indexes:
            for image in self._ecr("BatchGetImage", repositoryName=name,
                                   imageIds=[{"imageDigest": d} for d in indexes]).get("images") or []:
                try:
                    referenced.update(m["digest"] for m in json.loads(image["imageManifest"]).get("manifests") or [])
                except (ValueError, KeyError, TypeError):
                    pass
        try:
            results = ecr_lifecycle.evaluate(text, images, time.time(), referenced)
        except ecr_lifecycle.PolicyError as error:
            raise _ApiError("InvalidParameterException", str(error))
        with self._lock:
            self._previews[name] = {"text": text, "results": results}
        return 200, {"registryId": self.account, "repositoryName": name, "lifecyclePolicyText": text,
                     "status": "IN_PROGRESS"}

    def _op_get_lifecycle_policy_preview(self, params):
        name = params["repositoryName"]
        if self._repository(name) is None:
            raise _ApiError("RepositoryNotFoundException", f"The repository with name '{name}' does not exist "
                                                           f"in the registry with id '{self.account}'")
        with self._lock:
            preview = self._previews.get(name)
        if preview is None:
            raise _ApiError("LifecyclePolicyPreviewNotFoundException", "There is no dry run for this repository.")
        results = preview["results"]
        status = self._tag_status_filter(params)
        results = [r for r in results if status == "ANY" or bool(r.get("imageTags")) == (status == "TAGGED")]
        if params.get("imageIds"):
            wanted = params["imageIds"]
            results = [r for r in results if any(w.get("imageDigest") == r["imageDigest"]
                                                 or w.get("imageTag") in (r.get("imageTags") or []) for w in wanted)]
        extra = {"registryId": self.account, "repositoryName": name, "lifecyclePolicyText": preview["text"],
                 "status": "COMPLETE",
                 "summary": {"expiringImageTotalCount": sum(1 for r in preview["results"]
                                                            if r["action"]["type"] == "EXPIRE")}}
        return 200, self._page(results, params, "previewResults", maximum=100, extra=extra)

    def _quota_document(self, params, applied):
        service_code = params.get("ServiceCode")
        quota_code = params.get("QuotaCode")
        with self._lock:
            denied = self._deny_service_quotas
            value = self.service_quota if self.service_quota is not None else self.default_quota
        if denied:
            raise _ApiError("AccessDeniedException", "You do not have sufficient access to perform this action.")
        if service_code != "ecr" or quota_code != IMAGE_QUOTA_CODE:
            return None
        quota = {"ServiceCode": "ecr", "ServiceName": "Amazon Elastic Container Registry (ECR)",
                 "QuotaArn": f"arn:aws:servicequotas:{self.region}:{self.account if applied else ''}:"
                             f"ecr/{IMAGE_QUOTA_CODE}",
                 "QuotaCode": IMAGE_QUOTA_CODE, "QuotaName": "Images per repository",
                 "Value": float(value if applied else ECR_DEFAULT_IMAGE_QUOTA), "Unit": "None",
                 "Adjustable": True, "GlobalQuota": False,
                 "Description": "The maximum number of images per repository."}
        if applied:
            quota["QuotaAppliedAtLevel"] = "ACCOUNT"
        return {"Quota": quota}

    def _op_get_service_quota(self, params):
        document = self._quota_document(params, applied=True)
        if document is None:
            return 200, self._moto_json(SQ_TARGET, "servicequotas", "GetServiceQuota", params)
        return 200, document

    def _op_get_default_service_quota(self, params):
        document = self._quota_document(params, applied=False)
        if document is None:
            raise _ApiError("NoSuchResourceException",
                            "The request failed because the specified service does not exist.")
        return 200, document


    # -- repository creation templates (gap 11) -----------------------------------------------------

    _TEMPLATE_PREFIX_RE = re.compile(r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$")
    _APPLIED_FOR = ("REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH")
    _MUTABILITIES = ("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")

    def _install_creation_templates(self):
        self._templates = {}  # prefix -> the template as DescribeRepositoryCreationTemplates answers it
        self._created_on_push = []  # (repository, template prefix)
        self._throttle = {}  # (service, operation) -> [every, calls seen]
        self._front_ops.update({
            ("ecr", "CreateRepositoryCreationTemplate"): self._op_create_repository_creation_template,
            ("ecr", "DescribeRepositoryCreationTemplates"): self._op_describe_repository_creation_templates,
            ("ecr", "UpdateRepositoryCreationTemplate"): self._op_update_repository_creation_template,
            ("ecr", "DeleteRepositoryCreationTemplate"): self._op_delete_repository_creation_template,
        })

    def create_repository_creation_template(self, prefix, applied_for=("CREATE_ON_PUSH",), lifecycle_policy=None,
                                            mutability=None, exclusion_filters=None, description=None):
        """Creates a repository creation template (as CreateRepositoryCreationTemplate); returns it."""
        params = {"prefix": prefix, "appliedFor": list(applied_for)}
        if lifecycle_policy is not None:
            params["lifecyclePolicy"] = (lifecycle_policy if isinstance(lifecycle_policy, str)
                                         else json.dumps(lifecycle_policy))
        if mutability:
            params["imageTagMutability"] = mutability
        if exclusion_filters:
            params["imageTagMutabilityExclusionFilters"] = [{"filterType": "WILDCARD", "filter": f}
                                                            for f in exclusion_filters]
        if description:
            params["description"] = description
        return self._op_create_repository_creation_template(params)[1]["repositoryCreationTemplate"]

    def _check_template_fields(self, params, template):
        """Applies the settable fields of ``params`` to ``template`` with the service model's checks."""
        if "appliedFor" in params:
            applied = params["appliedFor"]
            if not isinstance(applied, list) or not applied or any(a not in self._APPLIED_FOR for a in applied):
                raise _ApiError("InvalidParameterException",
                                f"Invalid parameter at 'appliedFor': each value must be one of "
                                f"{', '.join(self._APPLIED_FOR)}")
            template["appliedFor"] = list(dict.fromkeys(applied))
        if "description" in params:
            if len(params["description"] or "") > 256:
                raise _ApiError("ValidationException", "Invalid parameter at 'description': length must be <= 256")
            template["description"] = params["description"]
        if "imageTagMutability" in params:
            if params["imageTagMutability"] not in self._MUTABILITIES:
                raise _ApiError("ValidationException", f"Invalid parameter at 'imageTagMutability': "
                                                       f"'{params['imageTagMutability']}'")
            template["imageTagMutability"] = params["imageTagMutability"]
        if "imageTagMutabilityExclusionFilters" in params:
            filters = params["imageTagMutabilityExclusionFilters"] or []
            if not 1 <= len(filters) <= 5 or any(
                    f.get("filterType") != "WILDCARD" or not re.match(r"^[0-9a-zA-Z._*-]{1,128}$", f.get("filter", ""))
                    for f in filters):
                raise _ApiError("InvalidParameterException",
                                "Invalid parameter at 'imageTagMutabilityExclusionFilters': 1 to 5 WILDCARD filters "
                                "matching ^[0-9a-zA-Z._*-]{1,128}$")
            template["imageTagMutabilityExclusionFilters"] = [{"filterType": "WILDCARD", "filter": f["filter"]}
                                                              for f in filters]
        if "lifecyclePolicy" in params:
            text = params["lifecyclePolicy"] or ""
            if len(text) > 30720:
                raise _ApiError("InvalidParameterException", "Invalid parameter at 'lifecyclePolicy': length must "
                                                             "be <= 30720")
            if text:
                try:
                    ecr_lifecycle.parse_policy(text)
                except ecr_lifecycle.PolicyError as error:
                    raise _ApiError("InvalidParameterException", str(error))
                template["lifecyclePolicy"] = text
            else:
                template.pop("lifecyclePolicy", None)
        for key in ("repositoryPolicy", "customRoleArn", "resourceTags", "encryptionConfiguration"):
            if key in params:
                template[key] = params[key]
        mode = template.get("imageTagMutability", "MUTABLE")
        if mode.endswith("_WITH_EXCLUSION") and not template.get("imageTagMutabilityExclusionFilters"):
            raise _ApiError("InvalidParameterException", f"imageTagMutabilityExclusionFilters are required with {mode}")

    def _op_create_repository_creation_template(self, params):
        prefix = params.get("prefix") or ""
        if not self._TEMPLATE_PREFIX_RE.match(prefix) or len(prefix) > 256:
            raise _ApiError("InvalidParameterException", f"Invalid parameter at 'prefix' failed to satisfy "
                                                         f"constraint: 'Member must satisfy regular expression "
                                                         f"pattern: {self._TEMPLATE_PREFIX_RE.pattern}'")
        if "appliedFor" not in params:
            raise _ApiError("ValidationException", "1 validation error detected: Value null at 'appliedFor' failed "
                                                   "to satisfy constraint: Member must not be null")
        now = round(time.time(), 3)
        template = {"prefix": prefix, "imageTagMutability": "MUTABLE",
                    "encryptionConfiguration": {"encryptionType": "AES256"}, "resourceTags": [],
                    "createdAt": now, "updatedAt": now}
        self._check_template_fields(params, template)
        with self._lock:
            if prefix in self._templates:
                raise _ApiError("TemplateAlreadyExistsException",
                                f"The repository creation template with prefix '{prefix}' already exists in the "
                                f"registry with id '{self.account}'")
            self._templates[prefix] = template
        return 200, {"registryId": self.account, "repositoryCreationTemplate": dict(template)}

    def _op_describe_repository_creation_templates(self, params):
        with self._lock:
            templates = [dict(t) for _prefix, t in sorted(self._templates.items())]
        wanted = params.get("prefixes")
        if wanted:
            templates = [t for t in templates if t["prefix"] in wanted]
        return 200, self._page(templates, params, "repositoryCreationTemplates", extra={"registryId": self.account})

    def _template_or_not_found(self, prefix):
        template = self._templates.get(prefix)
        if template is None:
            raise _ApiError("TemplateNotFoundException",
                            f"The repository creation template with prefix '{prefix}' does not exist in the registry "
                            f"with id '{self.account}'")
        return template

    def _op_update_repository_creation_template(self, params):
        prefix = params.get("prefix") or ""
        with self._lock:
            template = dict(self._template_or_not_found(prefix))
            self._check_template_fields(params, template)
            template["updatedAt"] = round(time.time(), 3)
            self._templates[prefix] = template
        return 200, {"registryId": self.account, "repositoryCreationTemplate": dict(template)}

    def _op_delete_repository_creation_template(self, params):
        prefix = params.get("prefix") or ""
        with self._lock:
            template = self._template_or_not_found(prefix)
            del self._templates[prefix]
        return 200, {"registryId": self.account, "repositoryCreationTemplate": dict(template)}

    def _create_on_push_template(self, name):
        """The CREATE_ON_PUSH template for a new repository ``name``: longest prefix, else ROOT, else None."""
        with self._lock:
            templates = [t for t in self._templates.values() if "CREATE_ON_PUSH" in t.get("appliedFor", [])]
        best = None
        for t in templates:
            prefix = t["prefix"].rstrip("/")
            if t["prefix"] != "ROOT" and name.startswith(prefix + "/") and (
                    best is None or len(prefix) > len(best["prefix"].rstrip("/"))):
                best = t
        return best or next((t for t in templates if t["prefix"] == "ROOT"), None)

    def _create_on_push(self, name):
        """A write to the missing repository ``name``: creates it from its CREATE_ON_PUSH template, if any."""
        template = self._create_on_push_template(name)
        if template is None:
            return False
        with self._repo_lock(name):
            if self._repository(name) is not None:
                return True
            params = {"repositoryName": name, "imageTagMutability": template.get("imageTagMutability", "MUTABLE")}
            if template.get("imageTagMutabilityExclusionFilters"):
                params["imageTagMutabilityExclusionFilters"] = template["imageTagMutabilityExclusionFilters"]
            try:
                self._ecr("CreateRepository", **params)
                if template.get("lifecyclePolicy"):
                    self._ecr("PutLifecyclePolicy", repositoryName=name, lifecyclePolicyText=template["lifecyclePolicy"])
            except _MotoError as error:
                if error.code != "RepositoryAlreadyExistsException":
                    self._record_error(f"create on push of {name} from template {template['prefix']}: {error}")
                    return False
        with self._lock:
            self._created_on_push.append((name, template["prefix"]))
        return True

    @property
    def created_on_push(self):
        """[(repository, template prefix)] the data plane created on push, in order."""
        with self._lock:
            return list(self._created_on_push)

    # -- throttling (a test hook) ----------------------------------------------------------------------

    def throttle(self, operation, every=2, service="ecr"):
        """Answers every ``every``-th call of ``operation`` with 400 ThrottlingException "Rate exceeded" (as
        AWS throttles: botocore retries it); ``every=0`` stops. A request whose previous send was throttled
        (the same body: a client's retry) is not throttled again, so a retry always gets through: with
        concurrent callers sharing one counter, a shared counter alone could throttle one request five times
        running and exhaust any client's retries."""
        with self._lock:
            if every:
                self._throttle[(service, operation)] = [every, 0, set()]
            else:
                self._throttle.pop((service, operation), None)

    def _throttled(self, service, operation, body=b""):
        with self._lock:
            entry = self._throttle.get((service, operation))
            if entry is None:
                return False
            key = hashlib.sha256(body or b"").hexdigest()
            if key in entry[2]:  # a retry of a throttled request
                entry[2].discard(key)
                return False
            entry[1] += 1
            if entry[1] % entry[0] == 0:
                entry[2].add(key)
                return True
            return False

    # -- archived images (gap 12, a test hook) -------------------------------------------------------

    def archive_image(self, name, digest, when=None):
        """Marks an image ARCHIVED, moved to archive at ``when`` (datetime or epoch; default now)."""
        with self._lock:
            meta = self._meta.setdefault((name, digest), {})
            meta["status"] = "ARCHIVED"
            meta["archived_at"] = _epoch(when) if when is not None else time.time()

    def restore_image(self, name, digest, when=None):
        """Marks an archived image ACTIVE again, restored at ``when`` (lastActivatedAt)."""
        with self._lock:
            meta = self._meta.setdefault((name, digest), {})
            meta["status"] = "ACTIVE"
            meta["activated_at"] = _epoch(when) if when is not None else time.time()

    @staticmethod
    def _apply_storage_class(image, meta):
        if "status" in meta:
            image["imageStatus"] = meta["status"]
        if "archived_at" in meta:
            image["lastArchivedAt"] = round(meta["archived_at"], 3)
        if "activated_at" in meta:
            image["lastActivatedAt"] = round(meta["activated_at"], 3)

    @staticmethod
    def _filter_image_status(images, image_status):
        if image_status not in ("ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"):
            raise _ApiError("InvalidParameterException", f"Invalid parameter at 'filter.imageStatus': '{image_status}'")
        if image_status == "ANY":
            return images
        return [i for i in images if i.get("imageStatus", "ACTIVE") == image_status]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run the ECR test bed until interrupted; prints its env.")
    parser.add_argument("--quota", type=int, default=ECR_DEFAULT_IMAGE_QUOTA)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--repository", action="append", default=[], help="create NAME (repeatable)")
    args = parser.parse_args()
    with EcrTestbed(region=args.region, quota=args.quota) as bed:
        for repo in args.repository:
            bed.create_repository(repo)
        for key, value in bed.env().items():
            print(f"export {key}={value}", flush=True)
        print(f"# data plane {bed.data_url}  registry host {bed.registry_host}", flush=True)
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        signal.signal(signal.SIGINT, lambda *_: stopped.set())
        while not stopped.wait(0.5):
            pass
