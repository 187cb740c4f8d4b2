"""A fault-injecting HTTP reverse proxy in front of a registry, on 127.0.0.1, for tests.

    with FaultProxy(registry.host) as proxy:           # a thread in this process
        proxy.host                                      # "127.0.0.1:PORT": push to it with --plain-http
        proxy.fail("PUT", tag_put_path(repo, "b"), status=500)          # every PUT of tag b -> 500
        proxy.fail("PUT", manifest_path(repo), status=500, nth=2, times=1)  # only the 2nd manifest PUT
        hold = proxy.hold("PUT", tag_put_path(repo, "b"))               # park a request ...
        hold.reached.wait(30)                                           # ... until it arrives
        hold.release()                                                  # ... then let it through
        proxy.delay("HEAD", manifest_path(repo), seconds=3)
        proxy.requests(method="POST")                                   # the request log

Every request is forwarded to the upstream registry (plain HTTP) with its headers, ``Host``
included, so the registry's ``Location`` headers point back at the proxy; request and response
bodies are streamed both ways (Content-Length or chunked). Rules are checked in the order they
were added; the first rule that matches a request decides what happens to it:

- ``status``: answer with that status and an OCI error body instead of forwarding (the request
  body is read first, so the connection stays usable);
- ``delay``: wait that many seconds, then forward;
- ``hold``: wait until the rule's ``release()`` (or its ``timeout``), then forward;
- ``drop``: close the connection without an answer.

``match`` (a predicate on method, path and headers) and ``body_match`` (a predicate on the request
body, which is then read into memory before the rule decides) narrow a rule further, e.g. "fail the
PUT of tag x only when it carries this manifest".

After a delay or hold the request is forwarded only if its client is still connected: a client
killed while its request was parked never reaches the registry, as if it had died before sending.

A rule applies from its ``nth`` match on, ``times`` times (None: forever). ``reached`` is a
threading.Event set when the rule first acts, ``count`` how often it acted. Rules can be added and
removed while requests flow. The log (``requests()``) holds every request with the rule that acted
on it and the status the client got.

CLI (for manual use): fault_proxy.py UPSTREAM_HOST:PORT [--port N] [--fail METHOD REGEX STATUS]...
"""

import http.client
import http.server
import itertools
import json
import re
import select
import socket
import socketserver
import threading
import time

from registry import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authenticate", "proxy-authorization", "expect"}

_CHUNK = 64 * 1024

DIGEST_REF = r"sha256:[0-9a-f]{64}"


def manifest_path(repo, reference=None):
    """Regex for /v2/<repo>/manifests/<reference> (any reference when None)."""
    ref = re.escape(reference) if reference else r"[^/]+"
    return rf"^/v2/{re.escape(repo)}/manifests/{ref}$"


def tag_put_path(repo, tag=None):
    """Regex for /v2/<repo>/manifests/<tag>: a tag reference, never a digest (any tag when None)."""
    ref = re.escape(tag) if tag else r"(?!sha256:)[^/]+"
    return rf"^/v2/{re.escape(repo)}/manifests/{ref}$"


def digest_ref_path(repo, digest=None):
    """Regex for /v2/<repo>/manifests/sha256:... (the given digest, or any)."""
    ref = re.escape(digest) if digest else DIGEST_REF
    return rf"^/v2/{re.escape(repo)}/manifests/{ref}$"


def blob_upload_path(repo=None):
    """Regex for POST /v2/<repo>/blobs/uploads/ (an upload session start)."""
    repo_re = re.escape(repo) if repo else ".+"
    return rf"^/v2/{repo_re}/blobs/uploads/?$"


class Rule:
    """What to do with matching requests; see the module docstring."""

    _ids = itertools.count(1)

    def __init__(self, method=None, path=None, status=None, delay=None, hold=False, drop=False, nth=1, times=None,
                 timeout=120.0, body=None, headers=None, name=None, match=None, body_match=None, lose=False,
                 rewrite=None):
        if sum(x is not None and x is not False
               for x in (status, delay, hold or None, drop or None, lose or None, rewrite)) != 1:
            raise ValueError("a rule does exactly one of: status, delay, hold, drop, lose, rewrite")
        self.lose = lose  # forward the request (the registry does the work), then drop the answer
        self.rewrite = rewrite  # forward the request to rewrite(uri) instead of its own URI
        self.id = next(self._ids)
        self.method = method.upper() if method else None
        self.path = re.compile(path) if isinstance(path, str) else path
        self.match = match  # optional predicate(method, path, headers) -> bool
        self.body_match = body_match  # optional predicate(request body bytes) -> bool (reads the body first)
        self.status = status
        self.delay = delay
        self.hold = hold
        self.drop = drop
        self.nth = max(1, nth)
        self.times = times
        self.timeout = timeout
        self.body = body
        self.headers = dict(headers or {})
        self.name = name or self._describe()
        self.matches = 0  # requests that matched (acted on or not)
        self.count = 0  # requests this rule acted on
        self.reached = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()

    def _describe(self):
        what = (f"status {self.status}" if self.status is not None else f"delay {self.delay}s" if self.delay is not None
                else "hold" if self.hold else "rewrite" if self.rewrite else "drop")
        return f"#{self.id} {self.method or '*'} {self.path.pattern if self.path else '*'} -> {what}"

    def __repr__(self):
        return f"Rule({self.name}, acted {self.count}x)"

    def release(self):
        """Lets every request this (hold) rule parked, and every later one, through."""
        self._released.set()

    @property
    def released(self):
        return self._released.is_set()

    def wait_released(self):
        return self._released.wait(self.timeout)

    def _claim(self, method, path, headers, load_body):
        """True if this rule acts on the request (and counts it)."""
        if self.method and method != self.method:
            return False
        if self.path and not self.path.search(path):
            return False
        if self.match and not self.match(method, path, headers):
            return False
        if self.body_match and not self.body_match(load_body()):
            return False
        with self._lock:
            self.matches += 1
            if self.matches < self.nth:
                return False
            if self.times is not None and self.count >= self.times:
                return False
            self.count += 1
        return True


class LoggedRequest:
    __slots__ = ("method", "uri", "path", "status", "rule", "time", "forwarded", "headers")

    def __init__(self, method, uri, status, rule, forwarded, headers=None):
        self.headers = headers or {}  # the request's headers, names lower-cased
        self.method = method
        self.uri = uri
        self.path = uri.split("?", 1)[0]
        self.status = status  # what the client got (None: connection dropped or client gone)
        self.rule = rule  # name of the rule that acted, or None
        self.time = time.monotonic()
        self.forwarded = forwarded

    def __repr__(self):
        return f"{self.method} {self.uri} -> {self.status}" + (f" [{self.rule}]" if self.rule else "")


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, handler, proxy):
        self.proxy = proxy
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # A client that dies mid-request (the tests SIGKILL pushes) is expected; anything else is shown.
        import sys
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tw-fault-proxy"

    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    def _proxy(self):
        proxy = self.server.proxy
        method = self.command
        uri = self.path
        path = uri.split("?", 1)[0]
        loaded = []

        def load_body():
            if not loaded:
                chunks = []
                self._read_body(sink=chunks.append)
                loaded.append(b"".join(chunks))
            return loaded[0]

        rule = proxy._rule_for(method, path, self.headers, load_body)

        if rule is not None and rule.drop:
            rule.reached.set()
            if not loaded:
                self._read_body(sink=None)
            proxy._log(LoggedRequest(method, uri, None, rule.name, False))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return

        if rule is not None and rule.lose:
            rule.reached.set()
            status = self._forward_and_lose(method, uri, load_body())
            proxy._log(LoggedRequest(method, uri, None, f"{rule.name} (upstream {status}, answer lost)", True))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return

        if rule is not None and rule.status is not None:
            rule.reached.set()
            if not loaded:
                self._read_body(sink=None)
            self._answer_error(rule)
            proxy._log(LoggedRequest(method, uri, rule.status, rule.name, False))
            return

        if rule is not None and rule.rewrite is not None:
            rule.reached.set()
            uri = rule.rewrite(uri)
            status = self._forward(method, uri, loaded[0] if loaded else None)
            proxy._log(LoggedRequest(method, uri, status, rule.name, True,
                                     {k.lower(): v for k, v in self.headers.items()}))
            return

        # Delayed and held requests are read in full first, then parked, then forwarded.
        body = loaded[0] if loaded else None
        if rule is not None:
            body = load_body()
            rule.reached.set()
            if rule.delay is not None:
                proxy._sleep(rule.delay)
            else:
                rule.wait_released()
            if proxy._stopping.is_set() or self._client_gone():
                proxy._log(LoggedRequest(method, uri, None, rule.name + " (client gone, not forwarded)", False))
                self.close_connection = True
                return
        status = self._forward(method, uri, body)
        proxy._log(LoggedRequest(method, uri, status, rule.name if rule else None, True,
                                 {k.lower(): v for k, v in self.headers.items()}))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _proxy

    # -- request bodies ------------------------------------------------------------------------

    def _chunked(self):
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _read_body(self, sink):
        """Reads the request body (decoding chunked framing) and hands the bytes to ``sink``."""
        if self._chunked():
            for _raw, data in self._iter_chunked():
                if sink and data:
                    sink(data)
            return
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            data = self.rfile.read(min(_CHUNK, length))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            length -= len(data)
            if sink:
                sink(data)

    def _iter_chunked(self):
        """Yields (raw framing bytes, decoded data) of a chunked request body, trailers included."""
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
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

    def _client_gone(self):
        """True when the client closed its end (it was killed while its request was parked)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # -- answers -------------------------------------------------------------------------------

    def _answer_error(self, rule):
        body = rule.body
        if body is None:
            body = json.dumps({"errors": [{"code": "UNKNOWN",
                                           "message": f"injected by the test fault proxy ({rule.name})"}]}).encode()
        self.send_response_only(rule.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in rule.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _forward_and_lose(self, method, uri, body):
        """Sends the request upstream and reads the answer, which the client never gets."""
        proxy = self.server.proxy
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"}
            conn.request(method, uri, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def _forward(self, method, uri, body):
        """Sends the request upstream and streams the answer back; returns the upstream status."""
        proxy = self.server.proxy
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout)
        try:
            conn.putrequest(method, uri, skip_host=True, skip_accept_encoding=True)
            chunked = self._chunked()
            for key, value in self.headers.items():
                if key.lower() in _HOP_BY_HOP:
                    continue
                if key.lower() == "content-length" and body is not None:
                    continue
                conn.putheader(key, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            elif chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            if body is not None:
                if body:
                    conn.send(body)
            elif chunked:
                for raw, _data in self._iter_chunked():
                    conn.send(raw)
            else:
                length = int(self.headers.get("Content-Length") or 0)
                while length > 0:
                    data = self.rfile.read(min(_CHUNK, length))
                    if not data:
                        raise ConnectionError("client closed the connection mid-body")
                    conn.send(data)
                    length -= len(data)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            message = json.dumps({"errors": [{"code": "UNKNOWN",
                                              "message": f"fault proxy: upstream failed: {error}"}]}).encode()
            self.send_response_only(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(message)
            self.close_connection = True
            return 502
        try:
            self.send_response_only(response.status, response.reason)
            length = response.getheader("Content-Length")
            has_body = method != "HEAD" and response.status not in (204, 304) and not 100 <= response.status < 200
            for key, value in response.getheaders():
                if key.lower() in _HOP_BY_HOP:
                    continue
                if key.lower() == "location" and proxy.rewrite_location:
                    value = proxy.rewrite_location(value)
                self.send_header(key, value)
            for pattern, headers in proxy.extra_response_headers:
                if pattern.search(uri.split("?", 1)[0]):
                    for key, value in headers.items():
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
                    if rechunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    else:
                        self.wfile.write(data)
                if rechunk:
                    self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return response.status
        finally:
            conn.close()


class FaultProxy:
    """The proxy, serving on 127.0.0.1:<free port> from a background thread; use as a context manager."""

    def __init__(self, upstream, port=None, upstream_timeout=120.0, bind="127.0.0.1"):
        # bind: another loopback address (127.0.0.2, ...) plays a second host. rewrite_location: a function
        # applied to every Location header the proxy passes back (e.g. to send uploads to a second host).
        self.bind = bind
        self.rewrite_location = None
        # [(compiled path regex, {header: value})]: headers added to forwarded answers of matching paths.
        self.extra_response_headers = []
        host, _, port_text = upstream.rpartition(":")
        self.upstream_host = host or "127.0.0.1"
        self.upstream_port = int(port_text)
        self.upstream_timeout = upstream_timeout
        self.port = port
        self._rules = []
        self._rules_lock = threading.Lock()
        self._log_entries = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None

    @property
    def host(self):
        return f"{self.bind}:{self.port}"

    @property
    def url(self):
        return f"http://{self.host}"

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        last_error = None
        for _attempt in range(6):
            port = self.port or (free_port() if self.bind == "127.0.0.1" else 0)
            try:
                self._server = _Server((self.bind, port), _Handler, self)
            except OSError as error:
                last_error = error
                if self.port:
                    raise
                continue
            self.port = self._server.server_address[1]
            break
        else:
            raise RuntimeError(f"fault proxy: no free port: {last_error}")
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving; parked requests are let go without being forwarded."""
        self._stopping.set()
        with self._rules_lock:
            for rule in self._rules:
                rule.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _sleep(self, seconds):
        self._stopping.wait(seconds)

    # -- rules -----------------------------------------------------------------------------------

    def add_rule(self, rule):
        with self._rules_lock:
            self._rules.append(rule)
        return rule

    def remove_rule(self, rule):
        """Removes a rule (a parked request of a hold rule is released and forwarded)."""
        with self._rules_lock:
            if rule in self._rules:
                self._rules.remove(rule)
        rule.release()

    def clear_rules(self):
        with self._rules_lock:
            rules, self._rules = self._rules, []
        for rule in rules:
            rule.release()

    def fail(self, method, path, status=500, nth=1, times=None, **kwargs):
        """Answers matching requests with ``status`` (from the ``nth`` match on, ``times`` times)."""
        return self.add_rule(Rule(method, path, status=status, nth=nth, times=times, **kwargs))

    def delay(self, method, path, seconds, nth=1, times=None, **kwargs):
        """Forwards matching requests ``seconds`` late."""
        return self.add_rule(Rule(method, path, delay=seconds, nth=nth, times=times, **kwargs))

    def hold(self, method, path, nth=1, times=1, timeout=120.0, **kwargs):
        """Parks matching requests until ``rule.release()``; ``rule.reached`` tells when one arrived."""
        return self.add_rule(Rule(method, path, hold=True, nth=nth, times=times, timeout=timeout, **kwargs))

    def lose(self, method, path, nth=1, times=None, **kwargs):
        """Forwards matching requests, then drops the connection instead of answering (the work is done)."""
        return self.add_rule(Rule(method, path, lose=True, nth=nth, times=times, **kwargs))

    def drop(self, method, path, nth=1, times=None, **kwargs):
        """Closes the connection of matching requests without an answer."""
        return self.add_rule(Rule(method, path, drop=True, nth=nth, times=times, **kwargs))

    def _rule_for(self, method, path, headers, load_body):
        with self._rules_lock:
            rules = list(self._rules)
        for rule in rules:
            if rule._claim(method, path, headers, load_body):
                return rule
        return None

    # -- the log ---------------------------------------------------------------------------------

    def _log(self, entry):
        with self._log_lock:
            self._log_entries.append(entry)

    def requests(self, method=None, path=None, since=0):
        """Logged requests (optionally filtered by method and path regex), oldest first."""
        pattern = re.compile(path) if isinstance(path, str) else path
        with self._log_lock:
            entries = list(self._log_entries[since:])
        return [e for e in entries
                if (method is None or e.method == method.upper()) and (pattern is None or pattern.search(e.path))]

    def mark(self):
        """The current length of the log (pass as ``since``)."""
        with self._log_lock:
            return len(self._log_entries)


if __name__ == "__main__":
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="Fault-injecting reverse proxy in front of a registry.")
    parser.add_argument("upstream", help="HOST:PORT of the plain-HTTP registry")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--fail", nargs=3, action="append", default=[], metavar=("METHOD", "REGEX", "STATUS"))
    parser.add_argument("--delay", nargs=3, action="append", default=[], metavar=("METHOD", "REGEX", "SECONDS"))
    args = parser.parse_args()
    with FaultProxy(args.upstream, port=args.port) as proxy:
        for method, regex, status in args.fail:
            proxy.fail(method, regex, int(status))
        for method, regex, seconds in args.delay:
            proxy.delay(method, regex, float(seconds))
        print(proxy.host, flush=True)
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        signal.signal(signal.SIGINT, lambda *_: stopped.set())
        while not stopped.wait(0.5):
            pass
        for entry in proxy.requests():
            print(entry)
