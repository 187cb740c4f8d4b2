"""Filling an ECR test bed repository with images quickly, and a unittest base class for the guard
tests against the bed (tests/integration/test_guard_ecr.py, tests/scenarios/test_incident_*.py).

    seed = ecr_images.SeedImage(bed, layout, info)      # a make_image layout (ImageInfo)
    digest = seed.put(repo, n=3, tag="dev-3")           # a distinct image: the layout's manifest plus an
                                                        # annotation, its blobs uploaded once per repository
    seed.fill(repo, 9, untagged=3, oldest_days=40)      # 9 images, 3 of them untagged, back-dated

Everything goes through the bed's data plane (Basic AWS:<token>), so each manifest PUT is checked
(quota, tag immutability) and mirrored into moto like a push; tagwarden is not involved. Call
``GuardEcrCase.mark()`` (a settled ``bed.mark()``) afterwards when a test inspects the data-plane log
of its own tagwarden run.

GuardEcrCase: one bed per module (``start_module_bed``/``stop_module_bed`` in setUpModule and
tearDownModule; a subclass sets ``state``), a temp dir per test, ``push``/``run_tw`` with the bed's
environment (TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY removed: the guards are what is tested),
``assert_nothing_written``, ``images``, ``guards`` (the --output json findings) and ``aws`` (the
real aws CLI against the bed).
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import deps
import make_image
import tw

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DAY = 86400.0


class FillError(RuntimeError):
    pass


class SeedImage:
    def __init__(self, bed, layout, info):
        self.bed = bed
        self.layout = layout
        self.info = info
        self._password = None
        self._uploaded = set()

    def _auth(self):
        if self._password is None:
            self._password = self.bed.login_password()
        return "Basic " + base64.b64encode(f"AWS:{self._password}".encode()).decode()

    def _call(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.bed.data_port, timeout=30)
        try:
            all_headers = {"Host": f"127.0.0.1:{self.bed.data_port}", "Authorization": self._auth()}
            all_headers.update(headers or {})
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def upload_blobs(self, repo):
        """Uploads the layout's config and layers into ``repo`` (once per repository)."""
        if repo in self._uploaded:
            return
        for digest in self.info.blob_digests:
            data = make_image.read_blob(self.layout, digest)
            status, headers, body = self._call("POST", f"/v2/{repo}/blobs/uploads/")
            if status != 202:
                raise FillError(f"POST upload in {repo}: {status} {body[:300]!r}")
            location = headers["location"]
            if location.startswith("http"):
                location = "/" + location.split("/", 3)[3]
            sep = "&" if "?" in location else "?"
            status, _headers, body = self._call("PUT", f"{location}{sep}digest={digest}", body=data,
                                                headers={"Content-Type": "application/octet-stream"})
            if status != 201:
                raise FillError(f"PUT blob {digest} in {repo}: {status} {body[:300]!r}")
        self._uploaded.add(repo)

    def manifest(self, n):
        """(bytes, digest) of variant ``n``: the layout's manifest with annotation tw.test/n = n."""
        document = json.loads(make_image.read_blob(self.layout, self.info.manifest_digest))
        document.setdefault("annotations", {})["tw.test/n"] = str(n)
        body = json.dumps(document, indent=2).encode()
        return body, "sha256:" + hashlib.sha256(body).hexdigest()

    def put(self, repo, n, tag=None, pushed_days_ago=None):
        """PUTs variant ``n`` into ``repo`` under ``tag`` (by digest when None); returns its digest."""
        self.upload_blobs(repo)
        body, digest = self.manifest(n)
        status, _headers, data = self._call("PUT", f"/v2/{repo}/manifests/{tag or digest}", body=body,
                                            headers={"Content-Type": OCI_MANIFEST})
        if status != 201:
            raise FillError(f"PUT manifest {tag or digest} in {repo}: {status} {data[:300]!r}")
        if pushed_days_ago is not None:
            self.bed.set_pushed_at(repo, digest, time.time() - pushed_days_ago * DAY)
        return digest

    def fill(self, repo, count, untagged=0, oldest_days=None, tag_format="fill-{n}", first=0):
        """Puts ``count`` distinct images (the first ``untagged`` of them by digest only); with
        ``oldest_days`` the first is back-dated that many days and each next one a day later.
        Returns [(digest, tag or None)], oldest first."""
        made = []
        for i in range(count):
            n = first + i
            tag = None if i < untagged else tag_format.format(n=n)
            days = None if oldest_days is None else oldest_days - i
            made.append((self.put(repo, n, tag=tag, pushed_days_ago=days), tag))
        return made


# -- a unittest base class for guard tests against an EcrTestbed ---------------------------------------

def error_text(proc):
    """stderr from the first "error:" line on: the refusal itself, without the guards' progress lines
    (which mention numbers of their own, such as "the last 10 releases")."""
    lines = proc.stderr.splitlines()
    for i, line in enumerate(lines):
        if "error:" in line:
            return "\n".join(lines[i:])
    return ""


AWS_TIMEOUT = 60


def start_module_bed(state, prefix, **bed_options):
    """Starts one EcrTestbed for a test module into ``state`` (with a temp dir); see stop_module_bed."""
    from ecr_testbed import EcrTestbed
    deps.require("docker-registry")
    deps.tagwarden_bin()
    state["tmp"] = tempfile.mkdtemp(prefix=prefix)
    state["bed"] = EcrTestbed(**bed_options).start()


def stop_module_bed(state):
    bed = state.pop("bed", None)
    if bed is not None:
        bed.stop()
    shutil.rmtree(state.pop("tmp", ""), ignore_errors=True)


# -- lifecycle policies ------------------------------------------------------------------------------

def rule(priority, selection, description=None, action="expire"):
    r = {"rulePriority": priority, "selection": selection, "action": {"type": action}}
    if description:
        r["description"] = description
    return r


def policy(*rules):
    return {"rules": list(rules)}


# Harmless: expires only untagged images older than two weeks.
UNTAGGED_14_DAYS = policy(rule(1, {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                   "countUnit": "days", "countNumber": 14}, "untagged after 14 days"))

DEV_RULE_DESCRIPTION = "keep the last 2 dev builds"


def dev_count_rule(priority):
    return rule(priority, {"tagStatus": "tagged", "tagPrefixList": ["dev-"],
                           "countType": "imageCountMoreThan", "countNumber": 2}, DEV_RULE_DESCRIPTION)


def aws_program():
    for candidate in (shutil.which("aws"), os.path.expanduser("~/.pyenv/shims/aws")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise deps.MissingComponent("required program 'aws' (awscli) is not installed; "
                                "install it with: pip install awscli  (the machine image's pyenv Python has it)")


class GuardEcrCase(unittest.TestCase):
    """A test against a module's bed: the module's setUpModule calls ``start_module_bed(STATE)`` and
    its classes set ``state = STATE`` (a dict holding "bed" and "tmp")."""

    maxDiff = None
    state = None

    @property
    def bed(self):
        return self.state["bed"]

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix=f"{self._testMethodName[:40]}-", dir=self.state["tmp"])
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self._seed = None

    # -- names and images ------------------------------------------------------------------------

    def target(self, repo, tag=None):
        return f"{self.bed.registry_host}/{repo}" + (f":{tag}" if tag else "")

    def image(self, name="img", seed=None):
        """(layout, ImageInfo): a small image of its own (distinct per test and name)."""
        layout = os.path.join(self.tmp, name)
        info = make_image.make_image(layout, layers=2, layer_size=2048, seed=seed or f"{self.id()}-{name}")
        return layout, info

    @property
    def seed(self):
        """Writes other images into a repository through the data plane (not through tagwarden)."""
        if self._seed is None:
            layout, info = self.image("seed")
            self._seed = SeedImage(self.bed, layout, info)
        return self._seed

    def create(self, repo, lifecycle_policy=UNTAGGED_14_DAYS, mutability="MUTABLE"):
        self.bed.create_repository(repo, mutability=mutability, lifecycle_policy=lifecycle_policy)
        return repo

    def set_service_quota(self, value):
        self.bed.set_service_quota(value)
        self.addCleanup(self.bed.set_service_quota, None)

    # -- running tagwarden -----------------------------------------------------------------------

    def env(self, **extra):
        env = dict(self.bed.env())
        env.update({
            "TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY": None,  # clean_env's default is what is under test
            "TAGWARDEN_STATE_DIR": os.path.join(self.tmp, "state"),
            "AWS_CONFIG_FILE": os.path.join(self.tmp, "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.tmp, "no-aws-credentials"),
        })
        env.update(extra)
        return env

    def run_tw(self, *args, env=None, cwd=None):
        return tw.run_tagwarden(*args, "--plain-http", "--lock", f"file://{self.tmp}/locks",
                                env=env if env is not None else self.env(), cwd=cwd)

    def push(self, layout, target, *args, env=None, cwd=None):
        return self.run_tw("push", f"oci:{layout}", target, *args, env=env, cwd=cwd)

    def config_dir(self, text):
        """A working directory holding tagwarden.yaml with ``text``."""
        directory = os.path.join(self.tmp, "cwd")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "tagwarden.yaml"), "w") as f:
            f.write(text)
        return directory

    # -- what the bed saw --------------------------------------------------------------------------

    def mark(self):
        """bed.mark() once the log has settled: the data plane logs a request just after answering it,
        so the last request of a fill can land in the log after the client has its response."""
        last = self.bed.mark()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            time.sleep(0.05)
            current = self.bed.mark()
            if current == last:
                break
            last = current
        return last

    def images(self, repo):
        """{digest: sorted tags} as DescribeImages reports them."""
        return {i["imageDigest"]: sorted(i.get("imageTags") or []) for i in self.bed.describe_images(repo)}

    def put_image_calls(self):
        return len(self.bed.api_calls(operation="PutImage"))

    def assert_nothing_written(self, mark, put_images_before, proc):
        """The data plane received no upload and no manifest PUT since ``mark``; no PutImage either."""
        self.mark()  # let the log settle
        writes = [(r.method, r.path, r.status) for r in self.bed.requests(since=mark)
                  if r.method in ("POST", "PUT", "PATCH", "DELETE")]
        self.assertEqual(writes, [], "a refused push must not upload a blob or write a manifest" + tw.describe(proc))
        self.assertEqual(self.put_image_calls(), put_images_before, "no PutImage either" + tw.describe(proc))

    def assert_no_image_written(self, mark, put_images_before, proc):
        """No manifest written or deleted since ``mark``, no PutImage: what a refusal by a guard judged
        beside the upload leaves (blobs it uploaded before the refusal are referenced by nothing)."""
        self.mark()  # let the log settle
        writes = [(r.method, r.path, r.status) for r in self.bed.requests(since=mark)
                  if "/manifests/" in r.path and r.method in ("PUT", "DELETE")]
        self.assertEqual(writes, [], "a refused push must not write a manifest or a tag" + tw.describe(proc))
        self.assertEqual(self.put_image_calls(), put_images_before, "no PutImage either" + tw.describe(proc))
        self.assertIn("no manifest or tag was written", proc.stderr, "the refusal says so" + tw.describe(proc))

    def assert_refused(self, proc, *needles):
        """Exit 3, one error line (README: "Errors are one line on stderr"), mentioning each needle."""
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertEqual(len(error_text(proc).splitlines()), 1, "the refusal is one error line" + tw.describe(proc))
        for needle in needles:
            self.assertIn(needle, proc.stderr, f"the refusal must mention {needle!r}" + tw.describe(proc))

    def assertNoBedErrors(self):  # noqa: N802
        self.assertEqual(self.bed.errors, [], "the test bed recorded internal failures")

    def guards(self, proc):
        """The "guards" list of a push/promote --output json report, as {check: (status, message)}."""
        report = tw.parse_json(self, proc)
        self.assertIn("guards", report, "--output json must report the guards" + tw.describe(proc))
        return {g["check"]: (g["status"], g["message"]) for g in report["guards"]}

    def aws(self, *args):
        """The real aws CLI against the bed's front; returns its parsed JSON."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.bed.env())
        env["AWS_CONFIG_FILE"] = os.path.join(self.tmp, "no-aws-config")
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(self.tmp, "no-aws-credentials")
        proc = subprocess.run([aws_program(), "--endpoint-url", self.bed.control_url, "--output", "json", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              timeout=AWS_TIMEOUT)
        self.assertEqual(proc.returncode, 0, f"aws {' '.join(args)} failed:\n{proc.stderr}")
        return json.loads(proc.stdout)
