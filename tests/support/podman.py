"""podman's Docker Engine API on a private unix socket, for the docker-daemon: tests.

    with PodmanService() as daemon:
        daemon.load("/tmp/app.tar")               # a docker-archive or oci-archive, e.g. from skopeo copy
        env = {"DOCKER_HOST": daemon.docker_host}  # unix:///tmp/tw-podman-XXXX/podman.sock
        daemon.podman("images", "--format", "json")

Everything the service and the podman commands touch lives in one private directory (removed on
exit): the image store (`--root`, vfs driver: no overlay mounts, so it works in a container without
privileges for mounting), podman's run state (`--runroot`), libpod's state and lock files (`--tmpdir`;
by default /run/libpod, which two services on one machine would share), image copies (TMPDIR, else
/var/tmp) and XDG_RUNTIME_DIR. `--events-backend=file` because there is no journald in a CI container
(the file goes under --tmpdir); `--cgroup-manager=cgroupfs` because there is no systemd to ask for
cgroups. The service and every `podman(...)` command use the same flags, so they see the same images.

A missing podman is a failure (deps.MissingComponent), never a skip.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import deps
from procs import die_with_parent, stop_process_group

# sockaddr_un.sun_path is 108 bytes, the terminating NUL included.
_MAX_SOCKET_PATH = 107
# podman refuses a runroot longer than 50 characters (it holds sockets of its own).
_MAX_RUNROOT = 50


class PodmanError(RuntimeError):
    pass


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (the Engine API's transport)."""

    def __init__(self, socket_path, timeout=10.0):
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


def engine_get(socket_path, path, timeout=10.0):
    """GET `path` from the Engine API at `socket_path`; returns (status, body bytes)."""
    conn = UnixHTTPConnection(socket_path, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class PodmanService:
    """podman's Docker Engine API on a private unix socket, with private storage (vfs), stopped on exit."""

    # How long the service may take to answer GET /_ping (a loaded CI machine takes a few seconds).
    START_TIMEOUT = 60.0

    def __init__(self, workdir=None):
        self._podman = deps.find_program("podman")
        self._parent = workdir
        self._start_timeout = self.START_TIMEOUT
        self._dir = None
        self._process = None
        self._log_path = None
        self._socket_dir = None
        self._runroot = None
        self.docker_host = None
        self.socket_path = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> "PodmanService":
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc):
        self._stop()
        return False

    def _start(self):
        self._dir = tempfile.mkdtemp(prefix="tw-podman-", dir=self._parent)
        short_dir = self._dir
        if len(os.path.join(self._dir, "runroot")) > _MAX_RUNROOT or \
                len(os.path.join(self._dir, "podman.sock")) > _MAX_SOCKET_PATH:
            # A deep workdir: the runroot and the socket go into a short directory of their own.
            short_dir = self._socket_dir = tempfile.mkdtemp(prefix="tw-pm-", dir="/tmp")
        self._runroot = os.path.join(short_dir, "runroot")
        for path in (os.path.join(self._dir, name) for name in ("root", "tmp", "imgtmp", "xdg")):
            os.makedirs(path, mode=0o700, exist_ok=True)
        os.makedirs(self._runroot, mode=0o700, exist_ok=True)
        self.socket_path = os.path.join(short_dir, "podman.sock")
        self.docker_host = "unix://" + self.socket_path
        self._log_path = os.path.join(self._dir, "service.log")
        with open(self._log_path, "wb") as log:
            # --time=0: the service never exits on idle; _stop ends it.
            self._process = subprocess.Popen(
                [self._podman, *self._global_flags(), "system", "service", "--time=0", self.docker_host],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self._env(),
                start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.monotonic() + self._start_timeout
        last_error = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PodmanError(f"podman system service exited with {self._process.returncode}:\n{self._log()}")
            if os.path.exists(self.socket_path):
                try:
                    status, body = engine_get(self.socket_path, "/_ping", timeout=2.0)
                    if status == 200 and body.strip() == b"OK":
                        return
                    last_error = f"/_ping answered {status} {body[:200]!r}"
                except OSError as error:
                    last_error = str(error)
            time.sleep(0.1)
        raise PodmanError(f"podman system service did not answer GET /_ping on {self.socket_path} within "
                          f"{self._start_timeout:.0f}s (last: {last_error}):\n{self._log()}")

    def _stop(self):
        stop_process_group(self._process, grace=10.0)
        self._process = None
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- commands against the same storage ---------------------------------------------------------

    def _global_flags(self):
        return ["--storage-driver", "vfs",
                "--root", os.path.join(self._dir, "root"),
                "--runroot", self._runroot,
                "--tmpdir", os.path.join(self._dir, "tmp"),
                "--events-backend=file",
                "--cgroup-manager=cgroupfs"]

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "CONTAINER_", "CONTAINERS_"))}
        env["TMPDIR"] = os.path.join(self._dir, "imgtmp")
        env["XDG_RUNTIME_DIR"] = os.path.join(self._dir, "xdg")
        return env

    def podman(self, *args) -> subprocess.CompletedProcess:
        """Runs `podman ARGS` against the service's storage; returns the CompletedProcess (text, not checked)."""
        if self._dir is None:
            raise PodmanError("PodmanService is not started (use it as a context manager)")
        return subprocess.run([self._podman, *self._global_flags(), *[str(a) for a in args]],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=self._env(), timeout=600)

    def load(self, archive_path: str) -> None:
        """`podman load -i ARCHIVE` (docker-archive or oci-archive); raises PodmanError when it fails."""
        proc = self.podman("load", "-i", archive_path)
        if proc.returncode != 0:
            raise PodmanError(f"podman load -i {archive_path} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")

    def _log(self):
        try:
            with open(self._log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""
