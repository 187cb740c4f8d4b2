"""A Docker token-auth front for a registry: the Bearer challenge flow of distribution's token spec.

    with TokenAuthFront(registry.host, username="u", password="p") as front:
        # push to front.host; tokens come from front.realm

Every /v2/ request needs `Authorization: Bearer <token>`; without one (or with an expired or used-up one)
the answer is 401 with `WWW-Authenticate: Bearer realm="http://HOST/token",service="tw-test",scope=...`.
GET /token?service=&scope= hands out tokens for Basic credentials (401 for wrong ones), as `token` or, with
`token_field="access_token"`, as OAuth2's `access_token`, with `expires_in`. `uses_per_token` makes a token
expire after that many registry requests, so a client's refresh on 401 is exercised without waiting. Valid
requests are forwarded to the registry with their Host header kept (so upload Locations point back here).
Credentials must never reach /v2/: the front records every Authorization header it sees per path kind.
"""

import base64
import http.client
import http.server
import json
import secrets
import threading
import urllib.parse

SERVICE = "tw-test"


class TokenAuthFront:
    def __init__(self, upstream, username, password, token_field="token", expires_in=300, uses_per_token=None):
        self.upstream = upstream
        self.username = username
        self.password = password
        self.token_field = token_field
        self.expires_in = expires_in
        self.uses_per_token = uses_per_token
        self.tokens = {}            # token -> remaining uses (None: unlimited)
        self.token_requests = []    # (scopes, had_valid_basic)
        self.registry_auth = []     # Authorization scheme seen on /v2/ requests ("Bearer", "Basic", None)
        self.challenges = 0
        self._lock = threading.Lock()
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body=b"", headers=(), length=None):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                # A HEAD answer carries the length the GET would have.
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _token(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization", "")
                ok = False
                if auth.startswith("Basic "):
                    user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                    ok = user == front.username and pw == front.password
                with front._lock:
                    front.token_requests.append((query.get("scope", []), ok))
                if not ok:
                    body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
                    return self._send(401, body.encode(), [("Content-Type", "application/json")])
                token = secrets.token_urlsafe(24)
                with front._lock:
                    front.tokens[token] = front.uses_per_token
                body = json.dumps({front.token_field: token, "expires_in": front.expires_in})
                self._send(200, body.encode(), [("Content-Type", "application/json")])

            def _authorized(self):
                auth = self.headers.get("Authorization")
                with front._lock:
                    front.registry_auth.append(auth.split(" ", 1)[0] if auth else None)
                    if not auth or not auth.startswith("Bearer "):
                        return False
                    token = auth[7:]
                    if token not in front.tokens:
                        return False
                    left = front.tokens[token]
                    if left is not None:
                        if left <= 0:
                            return False
                        front.tokens[token] = left - 1
                    return True

            def _challenge(self):
                path = urllib.parse.urlsplit(self.path).path
                parts = path.split("/")
                scope = ""
                for marker in ("blobs", "manifests", "tags"):
                    if marker in parts:
                        name = "/".join(parts[2:parts.index(marker)])
                        scope = f',scope="repository:{name}:pull,push"'
                with front._lock:
                    front.challenges += 1
                header = f'Bearer realm="http://{front.host}/token",service="{SERVICE}"{scope}'
                body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
                self._send(401, body.encode(), [("WWW-Authenticate", header), ("Content-Type", "application/json")])

            def _forward(self):
                body = self._body()
                if not self.path.startswith("/v2/"):
                    return self._send(404)
                if not self._authorized():
                    return self._challenge()
                conn = http.client.HTTPConnection(front.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "connection")}
                conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST", "PATCH") else None,
                             headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                hop = {"connection", "transfer-encoding", "keep-alive", "content-length"}
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self._send(resp.status, data, [(k, v) for k, v in resp.getheaders() if k.lower() not in hop],
                           length=length)
                conn.close()

            def do_GET(self):
                if self.path.startswith("/token"):
                    return self._token()
                self._forward()

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
