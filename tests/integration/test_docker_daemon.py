"""docker-daemon:NAME[:TAG] (issue 11): the image comes out of the Docker Engine API (GET /images/{name}/get,
what `docker save` uses) and is streamed into the push.

The daemon is podman's Docker-compatible service on a private unix socket (tests/support/podman.py), with an
image built by make_image.py, converted by skopeo to a docker-archive and loaded with `podman load`. What the
registry holds afterwards is read with skopeo: the config digest is the image ID the daemon reports and the
layers' diff_ids are the ones that were built. The failures a real daemon cannot be made to produce on demand
(an export cut off, an error appended to the stream, a stream that stalls, TLS with client certificates) come
from a small fake Engine API in this file that serves the same archive.
"""

import gzip
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
import unittest

import deps
import interop
import make_image
import tw
from podman import PodmanService, engine_get
from registry import Registry, free_port, make_tls_material

IMAGE = "app:1"
REPO = "demo/app"
DEFAULT_SOCKET = "/var/run/docker.sock"

_fixture = {}


def setUpModule():
    deps.require("skopeo", "podman", "openssl", "setpriv")
    work = tempfile.mkdtemp(prefix="tw-daemon-test-")
    # unittest skips tearDownModule when setUpModule fails: clean up here then.
    try:
        _set_up(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _set_up(work):
    layout = os.path.join(work, "layout")
    info = make_image.make_image(layout, layers=3, layer_size=256 * 1024, seed=41, ref_name="v1")
    archive = os.path.join(work, "app.tar")
    interop.skopeo("copy", "--insecure-policy", f"oci:{layout}:v1", f"docker-archive:{archive}:{IMAGE}")
    with open(os.path.join(layout, "blobs", *info.config.digest.split(":")), "rb") as f:
        config = json.load(f)
    daemon = PodmanService()
    daemon.__enter__()
    try:
        daemon.load(archive)
        inspected = daemon.podman("image", "inspect", IMAGE)
        if inspected.returncode != 0:
            raise AssertionError(f"podman image inspect {IMAGE}: {inspected.stderr}")
        image_id = json.loads(inspected.stdout)[0]["Id"]
    except BaseException:
        daemon.__exit__(None, None, None)
        raise
    _fixture.update(work=work, archive=archive, daemon=daemon, diff_ids=config["rootfs"]["diff_ids"],
                    image_id=image_id if image_id.startswith("sha256:") else "sha256:" + image_id)


def tearDownModule():
    daemon = _fixture.pop("daemon", None)
    if daemon:
        daemon.__exit__(None, None, None)
    shutil.rmtree(_fixture.get("work", ""), ignore_errors=True)


class FakeEngine:
    """A Docker Engine API stand-in on a unix socket (or TCP, optionally TLS) that serves `archive` as the
    export of IMAGE, in one of these modes:
      full      the whole archive, chunked, as Docker sends it
      half      half the archive, then the connection closes without the last chunk (the daemon died)
      appended  part of the archive, then the JSON error line Docker appends when a save fails mid-way
      stall     half the archive, then nothing (the connection stays open until the engine stops)
    `exporting` is set once the export has started sending; `requests` lists the paths asked for."""

    def __init__(self, archive, mode="full", tls=None):
        self.archive = archive
        self.mode = mode
        self.requests = []
        self.exporting = threading.Event()
        self.stopping = threading.Event()
        self.dir = tempfile.mkdtemp(prefix="tw-fake-engine-")
        engine = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def address_string(self):
                return "engine-client"

            def do_GET(self):
                engine.requests.append(self.path)
                if self.path == "/_ping":
                    return self.answer(200, b"OK", "text/plain")
                if self.path == f"/images/{IMAGE}/json":
                    return self.answer(200, json.dumps({"Id": "sha256:" + "0" * 64, "RepoTags": [IMAGE]}).encode())
                if self.path == f"/images/{IMAGE}/get":
                    return self.export()
                return self.answer(404, json.dumps({"message": f"No such image: {self.path}"}).encode())

            def answer(self, status, body, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def chunk(self, data):
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

            def export(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/x-tar")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                with open(engine.archive, "rb") as f:
                    data = f.read()
                cut = len(data) if engine.mode == "full" else len(data) // 2
                for at in range(0, cut, 32 * 1024):
                    self.chunk(data[at:min(cut, at + 32 * 1024)])
                    engine.exporting.set()
                self.wfile.flush()
                if engine.mode == "half":
                    self.close_connection = True
                    return
                if engine.mode == "stall":
                    engine.stopping.wait(120)
                    self.close_connection = True
                    return
                if engine.mode == "appended":
                    self.chunk(b'{"errorDetail":{"message":"open /var/lib/docker/overlay2/3f1c/diff: no such file '
                               b'or directory"},"error":"open /var/lib/docker/overlay2/3f1c/diff: no such file or '
                               b'directory"}\r\n')
                self.wfile.write(b"0\r\n\r\n")

        if tls is None:
            self.socket_path = os.path.join(self.dir, "docker.sock")
            self.docker_host = "unix://" + self.socket_path

            class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
                daemon_threads = True

            self.server = Server(self.socket_path, Handler)
        else:
            port = free_port()
            self.docker_host = f"tcp://127.0.0.1:{port}"

            class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
                daemon_threads = True

                def get_request(self):
                    sock, address = super().get_request()
                    return tls.wrap_socket(sock, server_side=True), address

            self.server = Server(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


class DockerDaemonCase(unittest.TestCase):

    def setUp(self):
        self.daemon = _fixture["daemon"]
        self.registry = Registry("plain")
        self.registry.__enter__()
        self.addCleanup(self.registry.__exit__, None, None, None)
        self.target = f"{self.registry.host}/{REPO}"

    def push(self, source, env, *extra):
        return tw.run_tagwarden("push", source, self.target, "--version", "1", "--env", "dev", *extra, env=env)

    def assert_nothing_written(self, proc):
        self.assertEqual(self.registry.tags(REPO), {}, "no tag is written" + tw.describe(proc))
        self.assertEqual(self.registry.manifest_digests(REPO), set(), "no manifest is written" + tw.describe(proc))

    def assert_pushed_image(self, proc, tag="1-dev"):
        tw.assert_exit(self, proc, tw.EXIT_OK)
        config = json.loads(interop.skopeo("inspect", "--config", "--tls-verify=false",
                                           f"docker://{self.registry.host}/{REPO}:{tag}").stdout)
        manifest = json.loads(interop.inspect(self.registry, f"{REPO}:{tag}", raw=True))
        self.assertEqual(manifest["config"]["digest"], _fixture["image_id"],
                         "the config digest is the image ID the daemon reports" + tw.describe(proc))
        self.assertEqual(config["rootfs"]["diff_ids"], _fixture["diff_ids"], "the layers' diff_ids are unchanged")
        self.assertEqual(len(manifest["layers"]), len(_fixture["diff_ids"]))
        # Each pushed layer, uncompressed, is the layer that was built: its sha256 is its diff_id.
        for layer, diff_id in zip(manifest["layers"], _fixture["diff_ids"]):
            status, _headers, blob = self.registry.request("GET", f"/v2/{REPO}/blobs/{layer['digest']}")
            self.assertEqual(status, 200)
            self.assertEqual("sha256:" + hashlib.sha256(blob).hexdigest(), layer["digest"])
            self.assertEqual("sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest(), diff_id)
        digest = tw.stdout_digest_line(self, proc, self.target)
        self.assertEqual(self.registry.tags(REPO).get(tag), digest)
        return digest


class PushFromPodman(DockerDaemonCase):

    def test_push_from_the_engine_api_named_by_DOCKER_HOST(self):
        proc = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": self.daemon.docker_host})
        digest = self.assert_pushed_image(proc)
        self.assertIn(self.daemon.socket_path, proc.stderr, "the log says where the image came from" + tw.describe(proc))
        # The same export again is the same image (the layers compress to the same bytes): nothing changes.
        again = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": self.daemon.docker_host}, "--output", "json")
        tw.assert_exit(self, again, tw.EXIT_OK)
        report = tw.parse_json(self, again)
        self.assertEqual(report["digest"], digest, "a rerun gives the same digest" + tw.describe(again))
        self.assertEqual(report["tags"], [{"tag": "1-dev", "status": "unchanged"}])
        self.assertEqual(report["source"]["transport"], "docker-daemon")
        self.assertEqual(report["source"]["compression"], "gzip")

    def test_name_without_tag_means_latest_and_image_id_or_digest_work(self):
        tagged = self.daemon.podman("tag", IMAGE, "app:latest")
        self.assertEqual(tagged.returncode, 0, tagged.stderr)
        self.addCleanup(self.daemon.podman, "untag", _fixture["image_id"], "app:latest")
        self.assert_pushed_image(self.push("docker-daemon:app", {"DOCKER_HOST": self.daemon.docker_host}))
        by_id = self.push(f"docker-daemon:{_fixture['image_id']}", {"DOCKER_HOST": self.daemon.docker_host},
                          "--tag", "by-id")
        self.assert_pushed_image(by_id, tag="by-id")
        # By digest (RepoDigests): the export names no tag either.
        inspected = json.loads(self.daemon.podman("image", "inspect", IMAGE).stdout)[0]
        repo_digest = next(d for d in inspected["RepoDigests"] if "@sha256:" in d)
        by_digest = self.push(f"docker-daemon:app@{repo_digest.split('@')[1]}", {"DOCKER_HOST": self.daemon.docker_host},
                              "--tag", "by-digest")
        self.assert_pushed_image(by_digest, tag="by-digest")

    def test_tcp_docker_host(self):
        # podman's service on a TCP address: DOCKER_HOST=tcp://HOST:PORT without TLS.
        port = free_port()
        service = subprocess.Popen(
            [deps.find_program("podman"), *self.daemon._global_flags(), "system", "service", "--time=0",
             f"tcp://127.0.0.1:{port}"], env=self.daemon._env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(lambda: (os.killpg(service.pid, signal.SIGTERM), service.wait(10)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        self.assert_pushed_image(self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}))


class DaemonErrors(DockerDaemonCase):

    def test_default_socket_is_named_when_DOCKER_HOST_is_unset(self):
        proc = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": None})
        self.assertIn(DEFAULT_SOCKET, proc.stderr, "the error names the default socket" + tw.describe(proc))
        self.assertIn("DOCKER_HOST", proc.stderr, tw.describe(proc))
        if not os.path.exists(DEFAULT_SOCKET):
            tw.assert_exit(self, proc, tw.EXIT_NETWORK)
            self.assertIn(f"no Docker daemon: {DEFAULT_SOCKET} does not exist", proc.stderr, tw.describe(proc))
        self.assert_nothing_written(proc)

    def test_no_daemon_at_DOCKER_HOST(self):
        missing = tempfile.mkdtemp(prefix="tw-nodaemon-")
        self.addCleanup(shutil.rmtree, missing, True)
        socket_path = os.path.join(missing, "docker.sock")
        proc = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": "unix://" + socket_path})
        tw.assert_exit(self, proc, tw.EXIT_NETWORK)
        self.assertIn(f"no Docker daemon: {socket_path} does not exist", proc.stderr, tw.describe(proc))
        self.assertIn(f"DOCKER_HOST=unix://{socket_path}", proc.stderr, tw.describe(proc))
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, "one error line" + tw.describe(proc))
        self.assert_nothing_written(proc)

    def test_no_such_image(self):
        proc = self.push("docker-daemon:missing:9", {"DOCKER_HOST": self.daemon.docker_host})
        tw.assert_exit(self, proc, tw.EXIT_USAGE)
        self.assertIn("no such image in the Docker daemon: missing:9", proc.stderr, tw.describe(proc))
        self.assertIn("docker images", proc.stderr, tw.describe(proc))
        self.assert_nothing_written(proc)

    def test_bad_name_and_unusable_DOCKER_HOST(self):
        bad_name = self.push("docker-daemon:App:1", {"DOCKER_HOST": self.daemon.docker_host})
        tw.assert_exit(self, bad_name, tw.EXIT_USAGE)
        self.assertIn("docker-daemon:App:1", bad_name.stderr, tw.describe(bad_name))
        source_tag = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": self.daemon.docker_host}, "--source-tag", "x:1")
        tw.assert_exit(self, source_tag, tw.EXIT_USAGE)
        self.assertIn("drop --source-tag", source_tag.stderr, tw.describe(source_tag))
        ssh = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": "ssh://me@build-host"})
        tw.assert_exit(self, ssh, tw.EXIT_USAGE)
        self.assertIn("ssh:// is not supported", ssh.stderr, tw.describe(ssh))

    def test_permission_denied_on_the_socket(self):
        # root opens any socket whatever its mode: the push runs as nobody against a 0600 root socket.
        with FakeEngine(_fixture["archive"]) as engine:
            os.chmod(engine.dir, 0o755)
            os.chmod(engine.socket_path, 0o600)
            cwd = tempfile.mkdtemp(prefix="tw-nobody-")
            os.chmod(cwd, 0o777)
            self.addCleanup(shutil.rmtree, cwd, True)
            env = tw.clean_env({"DOCKER_HOST": engine.docker_host, "TMPDIR": cwd, "HOME": cwd})
            os.chmod(env["DOCKER_CONFIG"], 0o755)
            binary = deps.tagwarden_bin()
            self.assertTrue(os.access(binary, os.X_OK))
            proc = subprocess.run(
                ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", binary, "push",
                 f"docker-daemon:{IMAGE}", self.target, "--version", "1", "--env", "dev"],
                env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
            tw.assert_exit(self, proc, tw.EXIT_AUTH)
            self.assertIn(f"permission denied on the Docker daemon socket {engine.socket_path}", proc.stderr,
                          tw.describe(proc))
            self.assertIn("docker group", proc.stderr, tw.describe(proc))
            self.assertEqual(engine.requests, [], "nothing reached the daemon")
        self.assert_nothing_written(proc)

    def test_daemon_dies_mid_stream(self):
        with FakeEngine(_fixture["archive"], mode="half") as engine:
            proc = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": engine.docker_host})
            self.assertEqual(engine.requests, ["/_ping", f"/images/{IMAGE}/json", f"/images/{IMAGE}/get"])
        tw.assert_exit(self, proc, tw.EXIT_NETWORK)
        self.assertIn("before the archive was complete", proc.stderr, tw.describe(proc))
        self.assertIn(engine.socket_path, proc.stderr, tw.describe(proc))
        self.assert_nothing_written(proc)
        self.assertEqual(self.registry.upload_posts(), 0, "no blob upload started" + tw.describe(proc))

    def test_error_appended_to_the_stream(self):
        with FakeEngine(_fixture["archive"], mode="appended") as engine:
            proc = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": engine.docker_host})
        tw.assert_exit(self, proc, tw.EXIT_NETWORK)
        self.assertIn("the Docker daemon failed in the middle of the export of app:1", proc.stderr, tw.describe(proc))
        self.assertIn("no such file or directory", proc.stderr, tw.describe(proc))
        self.assert_nothing_written(proc)

    def test_sigterm_while_streaming(self):
        tmp = tempfile.mkdtemp(prefix="tw-daemon-tmp-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with FakeEngine(_fixture["archive"], mode="stall") as engine:
            env = tw.clean_env({"DOCKER_HOST": engine.docker_host, "TMPDIR": tmp})
            proc = subprocess.Popen(
                [deps.tagwarden_bin(), "push", f"docker-daemon:{IMAGE}", self.target, "--version", "1", "--env", "dev"],
                env=env, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                self.assertTrue(engine.exporting.wait(60), "the export started")
                time.sleep(1.0)  # the archive reader is spooling what came
                self.assertIsNone(proc.poll(), "the push waits for the rest of the export")
                signalled = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                stdout, stderr = proc.communicate(timeout=30)
                took = time.monotonic() - signalled
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        tw.assert_exit(self, result, 143)
        self.assertLess(took, 5.0, "the export stops within about a second" + tw.describe(result))
        self.assertIn("SIGTERM", stderr, tw.describe(result))
        left = [name for name in os.listdir(tmp) if name != "tagwarden-locks"]
        self.assertEqual(left, [], "no spool directory is left in TMPDIR" + tw.describe(result))
        self.assert_nothing_written(result)


class DaemonOverTls(DockerDaemonCase):
    """DOCKER_HOST=tcp://… with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), as
    `docker-machine env` or a remote daemon with --tlsverify sets them: the daemon requires the client certificate."""

    def setUp(self):
        super().setUp()
        self.certs = tempfile.mkdtemp(prefix="tw-docker-tls-")
        self.addCleanup(shutil.rmtree, self.certs, True)
        ca, server_cert, server_key = make_tls_material(os.path.join(self.certs, "ca"), "docker daemon test CA")
        openssl = deps.find_program("openssl")
        client_dir = os.path.join(self.certs, "client")
        os.makedirs(client_dir)
        key = os.path.join(client_dir, "key.pem")
        csr = os.path.join(client_dir, "client.csr")
        ext = os.path.join(client_dir, "client.ext")
        with open(ext, "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        for args in (["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", key, "-out", csr, "-subj", "/CN=tagwarden-client"],
                     ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", os.path.join(self.certs, "ca", "ca.key"),
                      "-CAcreateserial", "-out", os.path.join(client_dir, "cert.pem"), "-days", "2", "-extfile", ext]):
            subprocess.run([openssl, *args], check=True, capture_output=True)
        shutil.copyfile(ca, os.path.join(client_dir, "ca.pem"))
        self.cert_path = client_dir
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(server_cert, server_key)
        self.tls.load_verify_locations(ca)
        self.tls.verify_mode = ssl.CERT_REQUIRED

    def test_push_over_tls_with_a_client_certificate(self):
        with FakeEngine(_fixture["archive"], tls=self.tls) as engine:
            proc = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": engine.docker_host, "DOCKER_TLS_VERIFY": "1",
                                                         "DOCKER_CERT_PATH": self.cert_path})
            tw.assert_exit(self, proc, tw.EXIT_OK)
            self.assertIn(f"/images/{IMAGE}/get", engine.requests)
        manifest = json.loads(interop.inspect(self.registry, f"{REPO}:1-dev", raw=True))
        self.assertEqual(len(manifest["layers"]), len(_fixture["diff_ids"]))

    def test_a_daemon_certificate_from_another_CA_is_refused(self):
        other_ca, _cert, _key = make_tls_material(os.path.join(self.certs, "other"), "another CA")
        shutil.copyfile(other_ca, os.path.join(self.cert_path, "ca.pem"))
        with FakeEngine(_fixture["archive"], tls=self.tls) as engine:
            proc = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": engine.docker_host, "DOCKER_TLS_VERIFY": "1",
                                                         "DOCKER_CERT_PATH": self.cert_path})
            self.assertEqual(engine.requests, [], "nothing is sent to a daemon whose certificate is not trusted")
        tw.assert_exit(self, proc, tw.EXIT_NETWORK)
        self.assertIn(f"the Docker daemon at {engine.docker_host} (TLS)", proc.stderr, tw.describe(proc))
        self.assertIn("DOCKER_CERT_PATH", proc.stderr, tw.describe(proc))
        self.assertNotIn("--ca-file", proc.stderr, "the registry's advice is not the daemon's" + tw.describe(proc))
        self.assert_nothing_written(proc)

    def test_without_the_client_certificate_the_daemon_refuses(self):
        os.remove(os.path.join(self.cert_path, "cert.pem"))
        os.remove(os.path.join(self.cert_path, "key.pem"))
        with FakeEngine(_fixture["archive"], tls=self.tls) as engine:
            proc = self.push(f"docker-daemon:{IMAGE}", {"DOCKER_HOST": engine.docker_host, "DOCKER_TLS_VERIFY": "1",
                                                         "DOCKER_CERT_PATH": self.cert_path})
        tw.assert_exit(self, proc, tw.EXIT_NETWORK)
        self.assertIn(engine.docker_host, proc.stderr, tw.describe(proc))
        self.assertIn("DOCKER_CERT_PATH", proc.stderr, tw.describe(proc))
        self.assert_nothing_written(proc)


if __name__ == "__main__":
    unittest.main()
