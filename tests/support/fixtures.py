"""unittest base classes shared by the integration tests.

    from fixtures import RegistryTestCase, setUpModule  # setUpModule: every component is present

    class PushTest(RegistryTestCase):
        registry_mode = "plain"
        def test_x(self):
            layout, image = self.image()
            proc = self.push(f"oci:{layout}", self.target("x", "1.0.0"))
"""

import os
import re
import shutil
import tempfile
import unittest

import deps
import make_image
import tw
from registry import Registry


def setUpModule():  # noqa: N802 (unittest's name)
    """Fails the whole module, locally and in CI, when a component is missing: never a skip."""
    deps.require()
    deps.tagwarden_bin()


class RegistryTestCase(unittest.TestCase):
    """Starts one docker-registry (``registry_mode``) per class; ``self.tmp`` is fresh per test."""

    registry_mode = "plain"
    registry_password = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.class_tmp = tempfile.mkdtemp(prefix=f"tw-{cls.__name__}-")
        cls.addClassCleanup(shutil.rmtree, cls.class_tmp, True)
        cls.registry = cls.make_registry()
        cls.registry.start()
        cls.addClassCleanup(cls.registry.stop)

    @classmethod
    def make_registry(cls):
        """The class's registry, not started yet (``cls.class_tmp`` exists by then)."""
        return Registry(cls.registry_mode, password=cls.registry_password)

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="t-", dir=self.class_tmp)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self._dump_registry_log_on_failure)

    def _dump_registry_log_on_failure(self):
        outcome = getattr(self, "_outcome", None)
        failed = outcome is not None and not getattr(outcome, "success", True)
        if failed and os.environ.get("TW_SHOW_REGISTRY_LOG"):
            print(f"\n--- registry log ({self.registry.host}) ---\n{self.registry.log_text()[-8000:]}")

    # -- names ----------------------------------------------------------------------------------

    @property
    def host(self):
        return self.registry.host

    def repo(self, suffix=""):
        """A repository name unique to this test (lowercase, valid)."""
        name = re.sub(r"[^a-z0-9]+", "-", self._testMethodName.lower()).strip("-")
        return f"{type(self).__name__.lower()}/{name}{('-' + suffix) if suffix else ''}"

    def target(self, repo, tag=None):
        return f"{self.host}/{repo}" + (f":{tag}" if tag else "")

    # -- images ---------------------------------------------------------------------------------

    def image(self, name="img", **kwargs):
        """(layout dir, ImageInfo) of a fresh small image; kwargs go to make_image.make_image."""
        kwargs.setdefault("layers", 2)
        kwargs.setdefault("layer_size", 32 * 1024)
        kwargs.setdefault("seed", f"{self.id()}-{name}")
        layout = os.path.join(self.tmp, name)
        return layout, make_image.make_image(layout, **kwargs)

    def index(self, name="multi", **kwargs):
        kwargs.setdefault("layers", 2)
        kwargs.setdefault("layer_size", 16 * 1024)
        kwargs.setdefault("seed", f"{self.id()}-{name}")
        layout = os.path.join(self.tmp, name)
        return layout, make_image.make_index(layout, **kwargs)

    # -- running tagwarden ----------------------------------------------------------------------

    def tls_args(self):
        return ["--ca-file", self.registry.ca_file] if self.registry.tls else []

    def cred_args(self):
        """(args, stdin) that log in with the registry's credentials via --password-stdin."""
        if not self.registry.auth:
            return [], None
        return ["--username", self.registry.username, "--password-stdin"], self.registry.password + "\n"

    def push(self, source, target, *args, login=True, env=None, stdin=None):
        """tagwarden push SOURCE TARGET ARGS, with --ca-file and credentials as the registry needs."""
        creds, password = self.cred_args() if login else ([], None)
        return tw.run_tagwarden("push", source, target, *args, *self.tls_args(), *creds,
                                stdin=stdin if stdin is not None else password, env=env)

    def verify(self, ref, *args, login=True, env=None):
        creds, password = self.cred_args() if login else ([], None)
        return tw.run_tagwarden("verify", ref, *args, *self.tls_args(), *creds, stdin=password, env=env)

    # -- assertions -----------------------------------------------------------------------------

    def assert_exit(self, proc, code):
        tw.assert_exit(self, proc, code)

    def assert_pushed(self, proc, repo):
        """Exit 0 and one stdout line HOST/REPO@sha256:...; returns the digest."""
        tw.assert_exit(self, proc, 0)
        return tw.stdout_digest_line(self, proc, f"{self.host}/{repo}")

    def assert_no_manifest(self, repo, proc=None):
        stored = self.registry.manifest_digests(repo)
        self.assertEqual(stored, set(), f"the registry must hold no manifest in {repo}"
                         + (tw.describe(proc) if proc is not None else ""))
        self.assertEqual(self.registry.tags(repo), {}, f"the registry must hold no tag in {repo}")

    def assert_stderr_mentions(self, proc, *alternatives):
        """stderr contains at least one of ``alternatives`` (case-insensitive)."""
        text = proc.stderr.lower()
        self.assertTrue(any(a.lower() in text for a in alternatives),
                        f"stderr should name the problem (one of {alternatives!r})" + tw.describe(proc))
