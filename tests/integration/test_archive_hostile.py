"""Hostile and broken archives: each is refused with exit 2 before any request reaches the registry,
nothing lands outside tagwarden's temporary directory, and that directory is gone afterwards
(TMPDIR points at a directory of the test, which must be empty when tagwarden exits, signals included)."""

import json
import os
import signal
import socket
import subprocess
import tarfile
import time
import unittest
import uuid

import archives
import deps
import tw
from fixtures import RegistryTestCase


def setUpModule():  # noqa: N802
    deps.require("docker-registry", "skopeo")
    deps.tagwarden_bin()


class HostileArchives(RegistryTestCase):
    registry_mode = "plain"

    def setUp(self):
        super().setUp()
        self.spool_root = os.path.join(self.tmp, "tmpdir")
        os.makedirs(self.spool_root)
        layout, self.info = self.image(name="base", layers=2)
        self.valid = archives.skopeo_docker_archive(f"{layout}:latest", os.path.join(self.tmp, "valid.tar"), "app:1")
        self.entries = archives.tar_entries(self.valid)
        # Where an escaping entry would land: beside the temporary directory, and in a unique absolute path.
        self.outside = os.path.join(self.tmp, "escaped-" + uuid.uuid4().hex[:8])
        self.absolute = "/tmp/tw-escape-" + uuid.uuid4().hex

    def env(self):
        # The default lock directory lives in TMPDIR too: keep it elsewhere, so TMPDIR must end up empty.
        return {"TMPDIR": self.spool_root, "TAGWARDEN_LOCK": "file://" + os.path.join(self.tmp, "locks")}

    def hostile(self, name, entries, compress=False):
        return archives.write_tar(os.path.join(self.tmp, name), entries, compress=compress)

    def assert_refused(self, path, *mentions, stdin=False):
        repo = self.repo()
        before = len(self.registry.requests())
        if stdin:
            with open(path, "rb") as f:
                proc = self.push("docker-archive:-", self.target(repo, "1"), env=self.env(), stdin=f.read())
        else:
            proc = self.push(f"docker-archive:{path}", self.target(repo, "1"), env=self.env())
        self.assert_exit(proc, tw.EXIT_USAGE)
        if mentions:
            self.assert_stderr_mentions(proc, *mentions)
        self.assertEqual(len(self.registry.requests()), before, "no request may reach the registry" + tw.describe(proc))
        self.assert_no_manifest(repo, proc)
        self.assertNotIn(repo, self.registry.repositories())
        self.assertEqual(os.listdir(self.spool_root), [], "the temporary directory must be removed" + tw.describe(proc))
        self.assertFalse(os.path.lexists(self.outside), "an entry escaped the temporary directory")
        self.assertFalse(os.path.lexists(self.absolute), "an entry was written to an absolute path")
        return proc

    def test_valid_archive_leaves_no_temporary_directory(self):
        repo = self.repo()
        proc = self.push(f"docker-archive:{self.valid}", self.target(repo, "1"), env=self.env())
        self.assert_pushed(proc, repo)
        self.assertEqual(os.listdir(self.spool_root), [])

    def test_dotdot_entry(self):
        rel = os.path.relpath(self.outside, self.spool_root)
        self.assert_refused(self.hostile("dotdot.tar", [(rel, b"x"), *self.entries]), "'..'")
        self.assert_refused(self.hostile("dotdot2.tar", [("a/../../x", b"x"), *self.entries]), "'..'")

    def test_absolute_entry(self):
        self.assert_refused(self.hostile("abs.tar", [(self.absolute, b"x"), *self.entries]), "absolute")

    def test_symlink_escaping(self):
        target = os.path.relpath(self.outside, self.spool_root)
        entries = [("evil", {"type": tarfile.SYMTYPE, "linkname": "../../../../" + target}), ("evil/file", b"x"), *self.entries]
        self.assert_refused(self.hostile("symlink.tar", entries), "outside the archive")
        entries = [("evil", {"type": tarfile.SYMTYPE, "linkname": self.absolute}), *self.entries]
        self.assert_refused(self.hostile("symlink-abs.tar", entries), "absolute")

    def test_hardlink_escaping(self):
        entries = [("hard", {"type": tarfile.LNKTYPE, "linkname": self.absolute}), *self.entries]
        self.assert_refused(self.hostile("hard.tar", entries), "outside the archive", "absolute")

    def test_device_and_fifo(self):
        self.assert_refused(self.hostile("dev.tar", [("null", {"type": tarfile.CHRTYPE}), *self.entries]), "device")
        self.assert_refused(self.hostile("fifo.tar", [("pipe", {"type": tarfile.FIFOTYPE}), *self.entries]), "FIFO")

    def test_truncated_archive(self):
        with open(self.valid, "rb") as f:
            data = f.read()
        path = os.path.join(self.tmp, "truncated.tar")
        # Cut inside the first layer's data.
        with open(path, "wb") as f:
            f.write(data[:len(data) // 3])
        self.assert_refused(path, "truncated", "corrupt")
        self.assert_refused(path, "truncated", "corrupt", stdin=True)

    def test_truncated_gzip_archive(self):
        gz = self.hostile("whole.tar.gz", self.entries, compress=True)
        with open(gz, "rb") as f:
            data = f.read()
        path = os.path.join(self.tmp, "truncated.tar.gz")
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])
        self.assert_refused(path, "truncated", "corrupt")

    def test_corrupt_layer(self):
        entries, corrupted = [], False
        for name, data in self.entries:
            if isinstance(data, bytes) and name.endswith(".tar") and not corrupted:
                data = data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:]
                corrupted = True
            entries.append((name, data))
        self.assertTrue(corrupted)
        self.assert_refused(self.hostile("corrupt.tar", entries), "diff_id")

    def test_manifest_naming_missing_layer(self):
        entries = []
        for name, data in self.entries:
            if name == "manifest.json":
                manifest = json.loads(data)
                manifest[0]["Layers"][1] = "0" * 64 + ".tar"
                data = json.dumps(manifest).encode()
            entries.append((name, data))
        self.assert_refused(self.hostile("missing.tar", entries), "does not hold")

    def test_no_manifest(self):
        entries = [e for e in self.entries if e[0] != "manifest.json"]
        self.assert_refused(self.hostile("nomanifest.tar", entries), "no manifest.json")

    def test_not_an_archive(self):
        path = os.path.join(self.tmp, "junk.tar")
        with open(path, "wb") as f:
            f.write(os.urandom(100000))
        self.assert_refused(path, "not a")

    def test_stale_spool_of_dead_process_is_swept(self):
        # PID 4194305 is above Linux's largest pid_max: no such process can exist.
        host = "".join(c for c in socket.gethostname() if c.isascii() and c.isalnum())[:24] or "host"
        stale = os.path.join(self.spool_root, f"tagwarden-spool-4194305-{host}-AbCdEf")
        os.makedirs(os.path.join(stale, "layout"))
        # Another machine's (a TMPDIR shared across hosts or containers): its pid means nothing here.
        elsewhere = os.path.join(self.spool_root, "tagwarden-spool-4194305-otherhost-AbCdEf")
        os.makedirs(elsewhere)
        repo = self.repo()
        self.assert_pushed(self.push(f"docker-archive:{self.valid}", self.target(repo, "1"), env=self.env()), repo)
        self.assertEqual(os.listdir(self.spool_root), [os.path.basename(elsewhere)])

    def _interrupt_stdin_read(self, sig, code):
        with open(self.valid, "rb") as f:
            data = f.read()
        repo = self.repo()
        args = [deps.tagwarden_bin(), "push", "docker-archive:-", self.target(repo, "1")]
        before = len(self.registry.requests())
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=tw.clean_env(self.env()), cwd=self.tmp)
        try:
            proc.stdin.write(data[:len(data) // 2])
            proc.stdin.flush()
            deadline = time.monotonic() + 20
            while not os.listdir(self.spool_root) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(os.listdir(self.spool_root), "tagwarden should be spooling the archive")
            time.sleep(0.2)  # now blocked reading standard input
            proc.send_signal(sig)
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, code, err.decode())
        self.assertIn("cancelled", err.decode())
        self.assertEqual(os.listdir(self.spool_root), [], "the temporary directory must be removed after " + sig.name)
        self.assertEqual(len(self.registry.requests()), before)

    def test_layers_are_compressed_while_the_stream_is_still_read(self):
        # Everything but the end-of-archive blocks goes down the pipe, which stays open: the layers (tars)
        # are compressed already, before the stream has ended (issue 11: compressed on the way).
        with open(self.valid, "rb") as f:
            data = f.read()
        self.assertEqual(data[-1024:], b"\0" * 1024, "a tar ends in two zero blocks")
        repo = self.repo()
        args = [deps.tagwarden_bin(), "push", "docker-archive:-", self.target(repo, "1"), "--plain-http"]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=tw.clean_env(self.env()), cwd=self.tmp)
        try:
            proc.stdin.write(data[:-1024])
            proc.stdin.flush()
            compressed = []
            deadline = time.monotonic() + 30
            while len(compressed) < 2 and time.monotonic() < deadline:
                compressed = [os.path.join(root, f) for root, _dirs, files in os.walk(self.spool_root)
                              for f in files if f.startswith("c") and os.path.getsize(os.path.join(root, f)) > 0]
                time.sleep(0.02)
            self.assertIsNone(proc.poll(), "tagwarden still waits for the end of the stream")
            self.assertEqual(len(compressed), 2, "both layers compressed before the stream ended")
            out, err = proc.communicate(input=data[-1024:], timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err.decode())
        self.assertIn(f"/{repo}@sha256:", out.decode())
        self.assertNotIn("compressing", err.decode(), "no layer was left to compress after the read")
        self.assertEqual(os.listdir(self.spool_root), [])

    def test_sigterm_during_stdin_read_removes_spool(self):
        self._interrupt_stdin_read(signal.SIGTERM, 143)

    def test_sigint_during_stdin_read_removes_spool(self):
        self._interrupt_stdin_read(signal.SIGINT, 130)


if __name__ == "__main__":
    unittest.main()
