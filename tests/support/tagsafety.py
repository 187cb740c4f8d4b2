"""Shared by the tag-safety tests (tests/integration/test_tag_*.py and test_lock_*.py).

    from tagsafety import TagSafetyTestCase, setUpModule

    class T(TagSafetyTestCase):
        def test_x(self):
            reg = self.start_registry()              # a fresh docker-registry for this test
            proxy = self.start_proxy(reg)            # optional: a FaultProxy in front of it
            etcd = self.start_etcd()                 # optional: a fresh etcd
            ddb = self.start_dynamodb()              # optional: moto's DynamoDB with the lock table
            self.backend_env.update(ddb.env())       # ... whose AWS credentials every later run gets
            layout, image = self.image("a")
            proc = self.push(f"oci:{layout}", f"{proxy.host}/{self.repo()}:1.0", "--output", "json")

Every tagwarden run gets ``TAGWARDEN_STATE_DIR`` (journals) and ``TAGWARDEN_LOCK`` (a file://
lock directory) of its own test, so nothing leaks into ~/.local/state or $TMPDIR, and runs from an
empty working directory unless ``cwd`` is given (then a tagwarden.yaml there is read).
Each test starts its own servers on free 127.0.0.1 ports; they are stopped by the test's cleanup.
``self.backend_env`` holds variables a lock backend needs in every run (the DynamoDB fixture's AWS
credentials and region, which tw.clean_env would otherwise strip); a run's own ``env`` comes last.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import deps
import make_image
import tw
from dynamodb import DynamoDb
from etcd import Etcd
from fault_proxy import FaultProxy
from registry import Registry

deps.PACKAGES.setdefault("etcd", "etcd-server")


def setUpModule():  # noqa: N802 (unittest's name)
    """A missing component fails the module (never a skip)."""
    deps.require("docker-registry", "etcd")
    deps.tagwarden_bin()


def short_forms(digest):
    """The forms a message may use to name a digest: full, hex only, or the 12-character short hex."""
    hex_part = digest.split(":", 1)[1]
    return digest, hex_part, hex_part[:12]


def mentions_digest(text, digest):
    return any(form in text for form in short_forms(digest))


def unwrap_journal(text):
    """The inner journal of a journal file's text (flat, or wrapped as {"runId", "owner",
    "expiresEpoch", "journal": "<JSON text>"}); the text itself when it is not JSON."""
    try:
        document = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text
    if isinstance(document, dict) and "journal" in document:
        inner = document["journal"]
        if isinstance(inner, str):
            try:
                return json.loads(inner)
            except ValueError:
                return inner
        return inner
    return document


class HoldThenFail:
    """A FaultProxy rule that parks matching requests until ``release()``, then answers them (and
    every later match) with ``status``: a write that hangs, then fails for good (retries included).
    ``reached`` is set when the first one arrives; ``count`` is how many were answered."""

    def __init__(self, proxy, method, path, status=500, timeout=120.0):
        self.reached = threading.Event()
        self._go = threading.Event()
        self._timeout = timeout

        def park(_method, _path, _headers):
            self.reached.set()
            self._go.wait(self._timeout)
            return True

        self.rule = proxy.fail(method, path, status=status, match=park)

    def release(self):
        self._go.set()

    @property
    def count(self):
        return self.rule.count


class TagSafetyTestCase(unittest.TestCase):
    """A fresh temporary directory, journal directory and file:// lock directory per test."""

    maxDiff = None

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix=f"tw-{self._testMethodName[:40]}-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.state_dir = os.path.join(self.tmp, "state")
        self.lock_dir = os.path.join(self.tmp, "locks")
        os.makedirs(self.state_dir)
        self.lock_url = "file://" + self.lock_dir
        self.backend_env = {}
        self._children = []
        self.addCleanup(self._kill_children)

    # -- servers ---------------------------------------------------------------------------------

    def start_registry(self, mode="plain", delete=True):
        reg = Registry(mode, delete=delete)
        reg.start()
        self.addCleanup(reg.stop)
        return reg

    def start_proxy(self, registry):
        proxy = FaultProxy(registry.host)
        proxy.start()
        self.addCleanup(proxy.stop)
        return proxy

    def start_etcd(self):
        etcd = Etcd()
        etcd.start()
        self.addCleanup(etcd.stop)
        return etcd

    def start_dynamodb(self):
        """moto's DynamoDB with the lock table (dynamodb.DynamoDb). Runs need its credentials:
        ``self.backend_env.update(ddb.env())`` gives them to every later run of the test."""
        ddb = DynamoDb()
        ddb.start()
        self.addCleanup(ddb.stop)
        return ddb

    # -- names and images ------------------------------------------------------------------------

    def repo(self, suffix=""):
        """A repository name unique to this test (lowercase, valid)."""
        name = re.sub(r"[^a-z0-9]+", "-", self._testMethodName.lower()).strip("-")
        return f"{type(self).__name__.lower()}/{name}{('-' + suffix) if suffix else ''}"

    def image(self, name="img", **kwargs):
        """(layout dir, ImageInfo) of a small image; its digest differs for every ``name``/``seed``."""
        kwargs.setdefault("layers", 1)
        kwargs.setdefault("layer_size", 4096)
        kwargs.setdefault("seed", f"{self.id()}-{name}")
        layout = os.path.join(self.tmp, "images", name)
        return layout, make_image.make_image(layout, **kwargs)

    # -- running tagwarden -----------------------------------------------------------------------

    def env(self, extra=None):
        """The variables every run gets (on top of tw.clean_env): state dir and lock URL of this test,
        then ``backend_env``, then ``extra``."""
        env = {"TAGWARDEN_STATE_DIR": self.state_dir, "TAGWARDEN_LOCK": self.lock_url}
        env.update(self.backend_env)
        env.update(extra or {})
        return env

    def workdir(self, config=None):
        """A new working directory, with ``config`` (text or a dict, written as JSON, which is YAML) as tagwarden.yaml."""
        path = tempfile.mkdtemp(prefix="cwd-", dir=self.tmp)
        if config is not None:
            text = config if isinstance(config, str) else json.dumps(config)
            with open(os.path.join(path, "tagwarden.yaml"), "w") as f:
                f.write(text)
        return path

    def run_tw(self, *args, env=None, cwd=None, timeout=tw.DEFAULT_TIMEOUT, stdin=None):
        return tw.run_tagwarden(*args, env=self.env(env), cwd=cwd or self.workdir(), timeout=timeout, stdin=stdin)

    def push(self, source, target, *args, env=None, cwd=None, timeout=tw.DEFAULT_TIMEOUT, stdin=None):
        """tagwarden push SOURCE TARGET --plain-http ARGS (the test registries speak plain HTTP)."""
        return self.run_tw("push", source, target, "--plain-http", *args, env=env, cwd=cwd, timeout=timeout,
                           stdin=stdin)

    def push_json(self, source, target, *args, **kwargs):
        proc = self.push(source, target, "--output", "json", *args, **kwargs)
        self.assert_exit(proc, 0)
        return tw.parse_json(self, proc)

    def spawn(self, *args, env=None, cwd=None):
        """Starts tagwarden ARGS in the background (its own process group); returns the Popen.

        stdout/stderr go to files, read back by ``finish``. The test's cleanup kills it if still running.
        """
        index = len(self._children)
        out = open(os.path.join(self.tmp, f"child-{index}.out"), "wb")
        err = open(os.path.join(self.tmp, f"child-{index}.err"), "wb")
        proc = subprocess.Popen([deps.tagwarden_bin(), *[str(a) for a in args]], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, env=tw.clean_env(self.env(env)),
                                cwd=cwd or self.workdir(), start_new_session=True)
        proc._tw_files = (out, err)
        self._children.append(proc)
        return proc

    def spawn_push(self, source, target, *args, env=None, cwd=None):
        return self.spawn("push", source, target, "--plain-http", *args, env=env, cwd=cwd)

    def finish(self, proc, timeout=tw.DEFAULT_TIMEOUT):
        """Waits for a spawned run; returns a CompletedProcess with its text output."""
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self.fail(f"tagwarden (pid {proc.pid}) did not finish in {timeout}s: {proc.args}")
        return self._completed(proc)

    def _completed(self, proc):
        out, err = proc._tw_files
        for handle in (out, err):
            handle.flush()
        with open(out.name, "rb") as f:
            stdout = f.read().decode("utf-8", "replace")
        with open(err.name, "rb") as f:
            stderr = f.read().decode("utf-8", "replace")
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def kill(self, proc):
        """SIGKILL, as an OOM killer or a cancelled CI job would."""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return self._completed(proc)

    def _kill_children(self):
        for proc in self._children:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=30)
            for handle in proc._tw_files:
                handle.close()

    def lock_list(self, lock_url=None):
        """``tagwarden lock list --output json`` -> the parsed document."""
        args = ["lock", "list", "--output", "json"] + (["--lock", lock_url] if lock_url else [])
        proc = self.run_tw(*args)
        self.assert_exit(proc, 0)
        return tw.parse_json(self, proc)

    def held_locks(self, lock_url=None):
        """{key: lock record} of the locks that are held now."""
        return {entry["key"]: entry for entry in self.lock_list(lock_url)["locks"] if entry.get("held", True)}

    # -- journals --------------------------------------------------------------------------------

    def journal_dir(self):
        return os.path.join(self.state_dir, "journal")

    def journals(self, state_dir=None):
        """{file name: parsed journal} in TAGWARDEN_STATE_DIR/journal (temporary files included as text).

        A journal file is either the flat journal itself (before issue 9) or the wrapper
        ``{"runId", "owner", "expiresEpoch", "journal": "<JSON text>"}``; either way the value is the
        inner journal (``{"version", "runId", "digest", "tags": [...], ...}``). ``state_dir``: another
        runner's state directory (default: this test's)."""
        return {name: unwrap_journal(text) for name, text in self.raw_journals(state_dir).items()}

    def raw_journals(self, state_dir=None):
        """{file name: file text} in STATE_DIR/journal, exactly as stored."""
        directory = os.path.join(state_dir or self.state_dir, "journal")
        found = {}
        if os.path.isdir(directory):
            for name in sorted(os.listdir(directory)):
                path = os.path.join(directory, name)
                if not os.path.isfile(path):
                    continue
                with open(path) as f:
                    found[name] = f.read()
        return found

    def wait_for(self, predicate, timeout, what, interval=0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        self.fail(f"timed out after {timeout}s waiting for {what}")

    # -- runners, direct writes, signals (issue 9) -------------------------------------------------

    def runner(self, name):
        """The environment of a separate CI runner: its own TMPDIR (so its default file:// lock
        directory is its own) and its own TAGWARDEN_STATE_DIR (journals). Pass as ``env=``."""
        root = os.path.join(self.tmp, "runners", name)
        env = {"TMPDIR": os.path.join(root, "tmp"), "TAGWARDEN_STATE_DIR": os.path.join(root, "state")}
        for path in env.values():
            os.makedirs(path, exist_ok=True)
        return env

    def hold_then_fail(self, proxy, method, path, status=500, timeout=120.0):
        """See HoldThenFail; released by the test's cleanup at the latest."""
        rule = HoldThenFail(proxy, method, path, status=status, timeout=timeout)
        self.addCleanup(rule.release)
        return rule

    def put_manifest(self, registry, repo, reference, body, media_type):
        """Another tool's write: PUT /v2/REPO/manifests/REFERENCE straight to ``registry`` (no tagwarden,
        no lock). Returns the digest the registry reports."""
        status, headers, answer = registry.request("PUT", f"/v2/{repo}/manifests/{reference}", body=body,
                                                   headers={"Content-Type": media_type})
        self.assertEqual(status, 201, f"direct PUT of {repo}:{reference}: {status} {answer[:300]!r}")
        return headers.get("docker-content-digest")

    def put_image_manifest(self, registry, repo, reference, image):
        """PUTs a make_image image's manifest bytes under ``reference`` (its blobs must be in ``repo``)."""
        body = make_image.read_blob(image.layout, image.digest)
        return self.put_manifest(registry, repo, reference, body, image.media_type)

    def backend_runs(self, lock_url):
        """The runs (journals) ``lock list --lock URL --output json`` reports under "runs"."""
        return self.lock_list(lock_url).get("runs", [])

    def signal(self, proc, signum):
        os.kill(proc.pid, signum)

    def wait_exit(self, proc, timeout, what):
        """Waits up to ``timeout`` for a spawned run to exit; fails (naming ``what``) if it does not."""
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self.fail(f"tagwarden (pid {proc.pid}) did not exit within {timeout}s {what}"
                      + tw.describe(self._completed(proc)))
        return self._completed(proc)

    # -- assertions ------------------------------------------------------------------------------

    def assert_exit(self, proc, code):
        tw.assert_exit(self, proc, code)

    def assert_exit_in(self, proc, codes):
        self.assertIn(proc.returncode, codes, f"expected an exit code in {codes}" + tw.describe(proc))

    def assert_stderr_mentions(self, proc, *alternatives):
        text = proc.stderr.lower()
        self.assertTrue(any(a.lower() in text for a in alternatives),
                        f"stderr should name one of {alternatives!r}" + tw.describe(proc))

    def assert_stderr_names_digest(self, proc, digest):
        self.assertTrue(mentions_digest(proc.stderr, digest), f"stderr should name {digest}" + tw.describe(proc))

    def assert_nothing_stored(self, registry, repo, proc=None):
        self.assertEqual(registry.tags(repo), {}, f"no tag may exist in {repo}" + (tw.describe(proc) if proc else ""))
        self.assertEqual(registry.manifest_digests(repo), set(),
                         f"no manifest revision may exist in {repo}" + (tw.describe(proc) if proc else ""))

    def tag_statuses(self, report):
        """{tag: status} of a push report."""
        return {t["tag"]: t["status"] for t in report["tags"]}


class ProxiedRegistryCase(TagSafetyTestCase):
    """A fresh docker-registry behind a FaultProxy for every test; ``target()`` names the proxy.
    ``registry_delete = False`` runs the registry in its default configuration (DELETE refused)."""

    registry_delete = True

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry(delete=self.registry_delete)
        self.proxy = self.start_proxy(self.registry)

    def target(self, repo, tag=None):
        return f"{self.proxy.host}/{repo}" + (f":{tag}" if tag else "")
