"""A real single-member etcd (Debian package ``etcd-server``) started on 127.0.0.1 for tests.

    with Etcd() as etcd:
        etcd.url                 # "etcd://127.0.0.1:PORT", what tagwarden's --lock takes
        etcd.endpoint            # "http://127.0.0.1:PORT"
        etcd.call("kv/range", {"key": Etcd.b64("x")})   # the v3 JSON gateway, as tagwarden uses it
        etcd.keys("tagwarden/locks/")                   # {key: value} under a prefix (decoded)

Client and peer ports are free loopback ports; the data directory is a temporary directory that
``stop`` (or leaving the ``with`` block) removes after killing the process.
"""

import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import deps
from registry import free_port
from procs import die_with_parent, stop_process_group

ETCD_BIN = "/usr/bin/etcd"

deps.PACKAGES.setdefault("etcd", "etcd-server")


class EtcdError(RuntimeError):
    pass


class _PortInUse(EtcdError):
    pass


class Etcd:
    """One etcd process on 127.0.0.1:<free client port>; use as a context manager."""

    def __init__(self, start_timeout=30.0, name="tw-test"):
        self.start_timeout = start_timeout
        self.name = name
        self.client_port = None
        self.peer_port = None
        self.process = None
        self.workdir = None
        self.data_dir = None
        self.log_file = None
        self._log_handle = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def host(self):
        return f"127.0.0.1:{self.client_port}"

    @property
    def endpoint(self):
        return f"http://{self.host}"

    @property
    def url(self):
        """The lock URL tagwarden takes: etcd://127.0.0.1:PORT."""
        return f"etcd://{self.host}"

    def start(self):
        deps.require("etcd")
        self.workdir = tempfile.mkdtemp(prefix="tw-etcd-")
        self.log_file = os.path.join(self.workdir, "etcd.log")
        last_error = None
        for _attempt in range(6):
            self.client_port = free_port()
            self.peer_port = free_port()
            while self.peer_port == self.client_port:
                self.peer_port = free_port()
            self.data_dir = os.path.join(self.workdir, f"data-{self.client_port}")
            try:
                self._spawn()
                return self
            except _PortInUse as error:
                last_error = error
                continue
            except BaseException:
                self.stop()
                raise
        self.stop()
        raise EtcdError(f"could not start etcd on free ports: {last_error}")

    def _spawn(self):
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        args = [
            ETCD_BIN,
            "--name", self.name,
            "--data-dir", self.data_dir,
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{self.name}={peer}",
            "--initial-cluster-state", "new",
            "--initial-cluster-token", f"tw-{self.client_port}",
            # No metrics listener and no v2 API: nothing else binds a port.
            "--enable-v2=false",
        ]
        self._log_handle = open(self.log_file, "wb")
        # The environment must not configure etcd behind our back (ETCD_* variables are flags).
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log_handle,
                                        stderr=subprocess.STDOUT, start_new_session=True, env=env,
                                        preexec_fn=die_with_parent)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log_text()
                self._reap()
                if "address already in use" in log:
                    raise _PortInUse(f"port {self.client_port} or {self.peer_port} in use")
                raise EtcdError(f"etcd exited with {self.process.returncode}:\n{log[-6000:]}")
            if self.healthy():
                return
            time.sleep(0.1)
        log = self.log_text()
        self._reap()
        raise EtcdError(f"etcd did not become healthy on {self.host} in {self.start_timeout}s:\n{log[-6000:]}")

    def healthy(self):
        """True when /health says so and the v3 gateway answers a range request."""
        try:
            status, body = self._http("GET", "/health", None, timeout=2)
            if status != 200 or json.loads(body or b"{}").get("health") not in ("true", True):
                return False
            status, _body = self._http("POST", "/v3/kv/range", json.dumps({"key": self.b64("probe")}), timeout=2)
            return status == 200
        except (OSError, http.client.HTTPException, ValueError):
            return False

    def _reap(self):
        stop_process_group(self.process, grace=10)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def stop(self):
        self._reap()
        self.process = None
        if self.workdir and os.path.isdir(self.workdir) and not os.environ.get("TW_KEEP_ETCD"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    # -- the v3 JSON gateway -----------------------------------------------------------------------

    @staticmethod
    def b64(text):
        if isinstance(text, str):
            text = text.encode()
        return base64.b64encode(text).decode()

    @staticmethod
    def unb64(text):
        return base64.b64decode(text or "").decode("utf-8", "replace")

    def _http(self, method, path, body, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def call(self, path, body):
        """POST /v3/<path> with a JSON body; returns the decoded JSON answer (raises on non-200)."""
        status, data = self._http("POST", f"/v3/{path}", json.dumps(body))
        if status != 200:
            raise EtcdError(f"etcd {path}: HTTP {status}: {data[:500]!r}")
        return json.loads(data)

    def keys(self, prefix=""):
        """{key: value} of every key starting with ``prefix`` (both decoded as text)."""
        if prefix:
            end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            body = {"key": self.b64(prefix), "range_end": self.b64(end)}
        else:
            body = {"key": self.b64("\0"), "range_end": self.b64("\0")}
        answer = self.call("kv/range", body)
        return {self.unb64(kv["key"]): self.unb64(kv.get("value", "")) for kv in answer.get("kvs", [])}

    def kvs(self, prefix):
        """The raw kv records (key/value decoded, lease kept as etcd's string) under ``prefix``."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        answer = self.call("kv/range", {"key": self.b64(prefix), "range_end": self.b64(end)})
        out = []
        for kv in answer.get("kvs", []):
            out.append({"key": self.unb64(kv["key"]), "value": self.unb64(kv.get("value", "")),
                        "lease": kv.get("lease", "0")})
        return out

    def lease_ttl(self, lease_id):
        """Seconds left on a lease (-1 when it no longer exists)."""
        answer = self.call("lease/timetolive", {"ID": lease_id})
        return int(answer.get("TTL", "-1"))

    def put(self, key, value, lease=None):
        body = {"key": self.b64(key), "value": self.b64(value)}
        if lease:
            body["lease"] = lease
        return self.call("kv/put", body)

    def grant(self, ttl):
        """A new lease of ``ttl`` seconds; returns its ID (a string, as the gateway spells int64)."""
        return self.call("lease/grant", {"TTL": ttl})["ID"]


if __name__ == "__main__":
    with Etcd() as etcd:
        print(json.dumps({"url": etcd.url, "endpoint": etcd.endpoint, "pid": etcd.process.pid}), flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))
        while not stop and etcd.process.poll() is None:
            time.sleep(0.2)
