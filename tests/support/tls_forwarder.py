"""A TLS-terminating TCP forwarder on 127.0.0.1 that records, per connection, whether the client resumed
a TLS session. It stands in front of a plain-HTTP registry so a test can see the client's TLS handshakes,
which docker-registry's own TLS does not show.

    with RelativeUrlRegistry() as reg, TlsForwarder(reg.host) as fwd:   # fwd makes its own CA
        push to fwd.host with --ca-file fwd.ca_file
        fwd.connections()     # [TlsConnection(#1 TLSv1.3 full), TlsConnection(#2 TLSv1.3 resumed), ...]

Each accepted connection gets a server-side TLS handshake (Python's ssl module, one SSLContext for the
forwarder's life, so its session tickets and session cache stay valid), then its bytes are copied both ways
to and from the upstream, unparsed. ``ssl_object.session_reused`` on the server side is True when the client
offered a session (a TLS 1.3 ticket or a TLS 1.2 session id/ticket) that the server accepted.

Because the bytes are not parsed, the upstream must not build absolute URLs from the request: it would
answer ``Location: http://...`` (docker-registry takes the scheme from ``X-Forwarded-Proto``, which this
forwarder does not add). ``RelativeUrlRegistry`` is a docker-registry with ``http.relativeurls: true``:
its Locations are paths, which the client resolves against the forwarder's https URL.

Timings recorded per connection (time.monotonic(), this process):
- ``accepted_at``: the TCP connection was accepted;
- ``hello_at``: OpenSSL parsed the ClientHello (the server-name callback, called with or without SNI);
- ``reply_at``: the first upstream bytes (a response) were written to the client;
- ``reread_at``: the first client bytes that arrived after a response had been written to it: the client
  had read that response (HTTP/1.1, no pipelining), and with it every TLS 1.3 session ticket sent before it.

``session_offered`` says whether the ClientHello (peeked before the handshake) carried a session at all
(a TLS 1.3 pre_shared_key or a TLS 1.2 session ticket): a full handshake without one is the client's doing.
"""

import asyncio
import os
import socket
import ssl
import threading
import time

from registry import Registry, make_tls_material

_CHUNK = 64 * 1024


class TlsConnection:
    __slots__ = ("index", "accepted_at", "hello_at", "handshake_at", "reply_at", "reread_at", "version",
                 "session_offered", "session_reused", "error", "bytes_in", "bytes_out", "closed_at")

    def __init__(self, index):
        self.index = index
        self.accepted_at = time.monotonic()
        self.hello_at = None
        self.handshake_at = None
        self.reply_at = None
        self.reread_at = None
        self.version = None
        self.session_offered = None  # the ClientHello carried a session (TLS 1.3 PSK, TLS 1.2 ticket); None: unread
        self.session_reused = None
        self.error = None  # the handshake's failure, if it failed
        self.bytes_in = 0
        self.bytes_out = 0
        self.closed_at = None

    @property
    def handshake_ok(self):
        return self.handshake_at is not None

    def __repr__(self):
        if not self.handshake_ok:
            return f"TlsConnection(#{self.index} handshake failed: {self.error})"
        kind = ("resumed" if self.session_reused else
                "full (a session was offered, the server refused it)" if self.session_offered else
                "full (no session offered)" if self.session_offered is False else "full")
        return f"TlsConnection(#{self.index} {self.version} {kind}, in {self.bytes_in} B, out {self.bytes_out} B)"


class TlsForwarder:
    """Serves TLS on 127.0.0.1:<port chosen by the kernel> from a background thread; a context manager.

    ``cert_file``/``key_file``: the server certificate (for 127.0.0.1); when omitted, a fresh CA and
    certificate are made in ``workdir`` (or a temporary directory) and ``ca_file`` names the CA.
    ``maximum_version``/``minimum_version``: ssl.TLSVersion limits (e.g. TLSv1_2 to see session-id resumption).
    """

    def __init__(self, upstream, cert_file=None, key_file=None, ca_file=None, workdir=None,
                 maximum_version=None, minimum_version=None):
        host, _, port_text = upstream.rpartition(":")
        self.upstream_host = host or "127.0.0.1"
        self.upstream_port = int(port_text)
        if self.upstream_host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the forwarder only forwards to 127.0.0.1, not {self.upstream_host}")
        self.cert_file = cert_file
        self.key_file = key_file
        self.ca_file = ca_file
        self.workdir = workdir
        self._own_workdir = False
        self.maximum_version = maximum_version
        self.minimum_version = minimum_version
        self.port = None
        self._connections = []
        self._lock = threading.Lock()
        self._listener = None
        self._accepter = None
        self._loop = None
        self._thread = None
        self._tasks = set()

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"https://{self.host}"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self):
        if self.cert_file is None:
            import tempfile
            if self.workdir is None:
                self.workdir = tempfile.mkdtemp(prefix="tw-tls-forwarder-")
                self._own_workdir = True
            self.ca_file, self.cert_file, self.key_file = make_tls_material(
                os.path.join(self.workdir, "tls"), "tagwarden test forwarder CA")
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.cert_file, self.key_file)
        if self.maximum_version is not None:
            self._context.maximum_version = self.maximum_version
        if self.minimum_version is not None:
            self._context.minimum_version = self.minimum_version
        self._context.sni_callback = self._on_client_hello
        self._hello_times = {}  # id(ssl object) -> time its ClientHello was parsed
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-forwarder", daemon=True)
        self._thread.start()
        self._accepter = asyncio.run_coroutine_threadsafe(self._accept_forever(), self._loop)
        return self

    def stop(self):
        """Closes the listener and every connection, then stops the thread. Safe to call twice."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            async def shutdown():
                self._accepter.cancel()
                for task in list(self._tasks):
                    task.cancel()
                if self._tasks:
                    await asyncio.wait(list(self._tasks), timeout=5)

            try:
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(15)
            except Exception:  # noqa: BLE001 (stopping anyway)
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        if self._listener is not None:
            self._listener.close()
        self._listener = None
        self._loop = None
        self._thread = None
        if self._own_workdir and self.workdir:
            import shutil
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._own_workdir = False

    # -- what was seen ---------------------------------------------------------------------------

    def connections(self):
        """Every connection accepted so far, in accept order (copies of the records)."""
        with self._lock:
            return list(self._connections)

    def handshakes(self):
        """The connections whose TLS handshake completed, in the order the handshakes completed."""
        return sorted((c for c in self.connections() if c.handshake_ok), key=lambda c: c.handshake_at)

    def wait_idle(self, timeout=5.0):
        """Waits until no connection is open (the client exited), at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.closed_at is not None for c in self.connections()):
                return True
            time.sleep(0.05)
        return False

    # -- serving ---------------------------------------------------------------------------------

    def _on_client_hello(self, ssl_object, _server_name, _context):
        self._hello_times[id(ssl_object)] = time.monotonic()
        return None

    async def _accept_forever(self):
        while True:
            sock, _address = await self._loop.sock_accept(self._listener)
            task = self._loop.create_task(self._serve(sock))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, sock):
        with self._lock:
            conn = TlsConnection(len(self._connections) + 1)
            self._connections.append(conn)
        writer = upstream_writer = None
        try:
            # The TLS transport takes the socket before a byte is read from it (a plain stream upgraded
            # with start_tls() could already have buffered the ClientHello and then wait forever).
            conn.session_offered = _offers_session(await self._peek_client_hello(sock))
            reader = asyncio.StreamReader(limit=_CHUNK)
            protocol = asyncio.StreamReaderProtocol(reader)
            try:
                transport, _ = await self._loop.connect_accepted_socket(
                    lambda: protocol, sock, ssl=self._context, ssl_handshake_timeout=30)
            except (OSError, ConnectionError, asyncio.TimeoutError) as error:  # ssl.SSLError is an OSError
                conn.error = f"{type(error).__name__}: {error}"
                sock.close()
                return
            writer = asyncio.StreamWriter(transport, protocol, reader, self._loop)
            ssl_object = writer.get_extra_info("ssl_object")
            conn.handshake_at = time.monotonic()
            conn.hello_at = self._hello_times.pop(id(ssl_object), None)
            conn.version = ssl_object.version()
            conn.session_reused = ssl_object.session_reused
            upstream_reader, upstream_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
            to_upstream = asyncio.ensure_future(self._pump(reader, upstream_writer, conn, from_client=True))
            to_client = asyncio.ensure_future(self._pump(upstream_reader, writer, conn, from_client=False))
            try:
                await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in (to_upstream, to_client):
                    pump.cancel()
                await asyncio.gather(to_upstream, to_client, return_exceptions=True)
        except (OSError, ConnectionError, ssl.SSLError):
            pass
        finally:
            conn.closed_at = time.monotonic()
            if writer is None:
                sock.close()  # cancelled (stop()) before the TLS transport took the socket
            for w in (upstream_writer, writer):
                if w is not None:
                    try:
                        w.close()
                    except Exception:  # noqa: BLE001
                        pass

    async def _peek_client_hello(self, sock, timeout=5.0):
        """The first TLS record the client sent (its ClientHello), read with MSG_PEEK: it stays in the socket
        for the handshake. Empty when it did not arrive whole within ``timeout``."""
        sock.setblocking(False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(_CHUNK, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                return b""
            if data == b"":
                return b""  # closed
            if data and len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[3:5], "big"):
                return data[:5 + int.from_bytes(data[3:5], "big")]
            await asyncio.sleep(0.002)
        return b""

    @staticmethod
    async def _pump(reader, writer, conn, from_client):
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    return
                now = time.monotonic()
                if from_client:
                    conn.bytes_in += len(data)
                    if conn.reply_at is not None and conn.reread_at is None:
                        conn.reread_at = now
                else:
                    conn.bytes_out += len(data)
                    if conn.reply_at is None:
                        conn.reply_at = now
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError, ssl.SSLError):
            return


_EXT_SESSION_TICKET = 35
_EXT_PRE_SHARED_KEY = 41


def _offers_session(record):
    """True when a ClientHello record offers a session to resume: a TLS 1.3 pre_shared_key extension or a
    non-empty TLS 1.2 session ticket. (The legacy session id is no sign: TLS 1.3 clients send a random one.)
    None when ``record`` is not a whole ClientHello."""
    try:
        if len(record) < 9 or record[0] != 22 or record[5] != 1:
            return None
        at = 9 + 2 + 32  # record header, handshake header, client_version, random
        at += 1 + record[at]  # session id
        at += 2 + int.from_bytes(record[at:at + 2], "big")  # cipher suites
        at += 1 + record[at]  # compression methods
        end = at + 2 + int.from_bytes(record[at:at + 2], "big")
        at += 2
        while at + 4 <= end:
            kind = int.from_bytes(record[at:at + 2], "big")
            size = int.from_bytes(record[at + 2:at + 4], "big")
            if kind == _EXT_PRE_SHARED_KEY or (kind == _EXT_SESSION_TICKET and size > 0):
                return True
            at += 4 + size
        return False
    except IndexError:
        return None


class RelativeUrlRegistry(Registry):
    """A plain-HTTP docker-registry whose Location and Link headers are paths (``http.relativeurls``),
    so a client reaching it through a TLS forwarder is sent back to the forwarder, over https."""

    def __init__(self, **kwargs):
        super().__init__("plain", **kwargs)

    def _config(self):
        lines = super()._config().splitlines()
        at = lines.index("http:")
        lines.insert(at + 1, "  relativeurls: true")
        return "\n".join(lines) + "\n"
