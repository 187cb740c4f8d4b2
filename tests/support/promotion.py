"""Shared by the promotion and copy tests (tests/integration/test_promote.py, test_copy.py).

    from promotion import PromotionTestCase, setUpModule

    class T(PromotionTestCase):
        def test_x(self):
            image = self.seed(self.repo())                       # skopeo puts REPO:1.0.0-dev in self.registry
            report = self.promote_json(f"{self.host}/{self.repo()}:1.0.0", "--to-repo", "other")
            mark = self.mark()                                   # request-log position of self.registry
            self.blob_transfers(self.registry, mark)             # GET/POST/PATCH/PUT on /blobs/ since mark

Every class gets two docker-registry instances on free 127.0.0.1 ports (plain HTTP unless
``registry_mode`` / ``other_mode`` say otherwise): ``self.registry`` (the source, as in
RegistryTestCase) and ``self.other`` (a second registry, for cross-registry copies). Images are put
into the source registry with skopeo (``--preserve-digests``), an independent producer, so a
promotion is tested on what another tool wrote (Docker media types go in by plain HTTP: skopeo's
oci: transport does not read them). Every tagwarden run gets a ``TAGWARDEN_STATE_DIR`` and a
``--lock file:///<tmp>`` of its own test.

Referrers: docker-registry 2.8 has no referrers API (GET /v2/<name>/referrers/<digest> is a 404),
so ``push_referrer`` writes an artifact manifest with a ``subject`` by plain HTTP and then, as the
OCI distribution spec asks of a client in that case, the fallback index tag ``sha256-<hex>``.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.parse

import deps
import interop
import make_image
import tw
from fixtures import RegistryTestCase
from registry import Registry, RegistryError

OCI_MANIFEST = make_image.MEDIA_TYPES["oci"]["manifest"]
OCI_INDEX = make_image.MEDIA_TYPES["oci"]["index"]
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

_WRITE_METHODS = ("PUT", "POST", "PATCH", "DELETE")


def setUpModule():  # noqa: N802 (unittest's name)
    """A missing component fails the module (never a skip)."""
    deps.require("docker-registry", "skopeo")
    deps.tagwarden_bin()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fallback_tag(digest):
    """The referrers tag schema: ``sha256:<hex>`` -> ``sha256-<hex>``."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded}"


def short_forms(digest):
    hex_part = digest.split(":", 1)[1]
    return digest, hex_part, hex_part[:12]


# -- writing to a registry by plain HTTP -----------------------------------------------------------


def put_blob(registry, repo, data):
    """Uploads ``data`` as a blob (POST, then a monolithic PUT ?digest=); returns its digest."""
    digest = sha256(data)
    status, headers, body = registry.request("POST", f"/v2/{repo}/blobs/uploads/")
    if status != 202 or "location" not in headers:
        raise RegistryError(f"POST upload to {repo}: {status} {body[:300]!r}")
    location = urllib.parse.urlsplit(headers["location"])
    query = (location.query + "&" if location.query else "") + "digest=" + urllib.parse.quote(digest, safe="")
    status, _headers, body = registry.request(
        "PUT", f"{location.path}?{query}", body=data,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    if status != 201:
        raise RegistryError(f"PUT blob {digest} to {repo}: {status} {body[:300]!r}")
    return digest


def put_manifest(registry, repo, reference, data, media_type):
    """PUT /v2/<repo>/manifests/<reference> with ``data`` exactly; returns the digest of ``data``."""
    status, headers, body = registry.request("PUT", f"/v2/{repo}/manifests/{reference}", body=data,
                                             headers={"Content-Type": media_type})
    if status != 201:
        raise RegistryError(f"PUT manifest {repo}:{reference}: {status} {body[:300]!r}")
    digest = sha256(data)
    if headers.get("docker-content-digest") not in (None, digest):
        raise RegistryError(f"registry computed {headers['docker-content-digest']} for {digest}")
    return digest


def put_layout_image(registry, repo, tag, info):
    """Writes a make_image ImageInfo / IndexInfo by plain HTTP: blobs, child manifests, then the root under ``tag``."""
    for blob in info.blobs:
        put_blob(registry, repo, make_image.read_blob(info.layout, blob.digest))
    for child in getattr(info, "children", []):
        put_manifest(registry, repo, child.digest, make_image.read_blob(info.layout, child.digest), child.media_type)
    put_manifest(registry, repo, tag, make_image.read_blob(info.layout, info.digest), info.media_type)


def push_referrer(registry, repo, subject, artifact_type="application/vnd.tagwarden.test.signature",
                  payload=None):
    """Writes a referrer of ``subject`` (a make_image Descriptor) into ``repo`` and the fallback tag.

    The referrer is an OCI artifact manifest (empty config, one payload layer) with a ``subject``.
    Returns (referrer descriptor as a dict, referrer bytes, payload digest).
    """
    payload = payload if payload is not None else json.dumps({"signed": subject.digest}).encode()
    config_digest = put_blob(registry, repo, b"{}")
    payload_digest = put_blob(registry, repo, payload)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.tagwarden.test.payload+json", "digest": payload_digest,
                    "size": len(payload)}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    }
    data = json.dumps(manifest, indent=2).encode()
    digest = put_manifest(registry, repo, sha256(data), data, OCI_MANIFEST)
    descriptor = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(data), "artifactType": artifact_type}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
    put_manifest(registry, repo, fallback_tag(subject.digest), json.dumps(index).encode(), OCI_INDEX)
    return descriptor, data, payload_digest


def corrupt_stored_blob(registry, digest, count=8):
    """Inverts ``count`` bytes in the middle of a blob in the registry's storage (the size stays)."""
    encoded = digest.split(":", 1)[1]
    path = os.path.join(registry.storage_dir, "docker", "registry", "v2", "blobs", "sha256", encoded[:2], encoded,
                        "data")
    size = os.path.getsize(path)
    offset = (size - count) // 2
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(count)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))
    return path


# -- the request log ------------------------------------------------------------------------------


def is_blob_transfer(request):
    """A request that reads or writes blob bytes (HEAD, which reads only the size, is not one)."""
    if "/blobs/" not in request.path:
        return False
    return request.method in ("GET", "POST", "PATCH", "PUT")


def is_write(request):
    return request.method in _WRITE_METHODS


class PromotionTestCase(RegistryTestCase):
    """Two registries per class (``registry`` and ``other``); state and lock directories per test."""

    registry_mode = "plain"
    other_mode = "plain"
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = Registry(cls.other_mode)
        cls.other.start()
        cls.addClassCleanup(cls.other.stop)

    def setUp(self):
        super().setUp()
        self.state_dir = os.path.join(self.tmp, "state")
        self.lock_dir = os.path.join(self.tmp, "locks")
        os.makedirs(self.state_dir)
        os.makedirs(self.lock_dir)
        self.lock_url = "file://" + self.lock_dir

    # -- images in the registries ------------------------------------------------------------------

    def seed(self, repo, version="1.0.0", env="dev", registry=None, name=None, index=False, **kwargs):
        """Puts a fresh image (``index``: a multi-platform index) at REPO:VERSION-ENV with skopeo
    (by plain HTTP for Docker media types, which skopeo's oci: transport does not read).

        Returns its make_image ImageInfo / IndexInfo. kwargs go to make_image / make_index.
        """
        registry = registry or self.registry
        name = name or f"{repo.replace('/', '_')}-{version}-{env}"
        layout = os.path.join(self.tmp, "layouts", name)
        kwargs.setdefault("layers", 2)
        kwargs.setdefault("layer_size", 16 * 1024)
        kwargs.setdefault("seed", f"{self.id()}-{name}")
        info = make_image.make_index(layout, **kwargs) if index else make_image.make_image(layout, **kwargs)
        if kwargs.get("media", "oci") == "oci":
            interop.copy_to_registry(f"{layout}:latest", registry, f"{repo}:{version}-{env}", all_images=index)
        else:
            # skopeo's oci: transport finds no ref whose index.json entry has a Docker media type.
            put_layout_image(registry, repo, f"{version}-{env}", info)
        stored = interop.remote_digest(registry, f"{repo}:{version}-{env}")
        if stored != info.digest:
            raise AssertionError(f"skopeo stored {stored} for {info.digest}")
        return info

    def raw(self, registry, ref):
        """The raw manifest bytes skopeo reads for HOST/REF."""
        return interop.inspect(registry, ref, raw=True)

    def raw_digest(self, registry, ref):
        return sha256(self.raw(registry, ref))

    # -- running tagwarden -------------------------------------------------------------------------

    def env(self, extra=None):
        env = {"TAGWARDEN_STATE_DIR": self.state_dir}
        env.update(extra or {})
        return env

    def run_tw(self, *args, env=None, stdin=None):
        return tw.run_tagwarden(*args, env=self.env(env), stdin=stdin)

    def promote(self, ref, *args, frm="dev", to="prod", lock=True, env=None):
        """tagwarden promote REF --from FRM --to TO [--lock file://<this test>] ARGS."""
        lock_args = ["--lock", self.lock_url] if lock else []
        return self.run_tw("promote", ref, "--from", frm, "--to", to, *lock_args, *args, env=env)

    def promote_json(self, ref, *args, **kwargs):
        proc = self.promote(ref, "--output", "json", *args, **kwargs)
        self.assert_exit(proc, tw.EXIT_OK)
        return tw.parse_json(self, proc)

    def copy(self, source, target, *args, env=None):
        """tagwarden push docker://SOURCE TARGET ARGS (with this test's lock directory)."""
        return self.run_tw("push", f"docker://{source}", target, "--lock", self.lock_url, *args, env=env)

    def copy_json(self, source, target, *args, **kwargs):
        proc = self.copy(source, target, "--output", "json", *args, **kwargs)
        self.assert_exit(proc, tw.EXIT_OK)
        return tw.parse_json(self, proc)

    def journals(self):
        """Journal files left in this test's TAGWARDEN_STATE_DIR (a finished or undone run leaves none)."""
        directory = os.path.join(self.state_dir, "journal")
        return sorted(os.listdir(directory)) if os.path.isdir(directory) else []

    # -- locks -------------------------------------------------------------------------------------

    def hold_lock(self, key):
        """Holds the file:// lock of ``key`` (REGISTRY/REPO:TAG) with flock(2) until the test ends.

        The file backend keeps one file per key in the lock directory, named by the key
        percent-encoded (RFC 3986 unreserved characters kept) plus ".lock".
        """
        path = os.path.join(self.lock_dir, urllib.parse.quote(key, safe="-_.~") + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return path

    # -- the request log ---------------------------------------------------------------------------

    def mark(self, registry=None):
        """The current end of ``registry``'s access log (default: the source registry)."""
        return len((registry or self.registry).requests())

    def since(self, registry, mark):
        return registry.requests()[mark:]

    def blob_transfers(self, registry, mark):
        return [r for r in self.since(registry, mark) if is_blob_transfer(r)]

    def writes(self, registry, mark):
        return [r for r in self.since(registry, mark) if is_write(r)]

    def mounts(self, registry, mark, repo):
        return [r for r in self.since(registry, mark)
                if r.method == "POST" and re.fullmatch(rf"/v2/{re.escape(repo)}/blobs/uploads/?", r.path)
                and "mount=" in r.uri]

    # -- assertions --------------------------------------------------------------------------------

    def assert_stderr_names_digest(self, proc, digest):
        self.assertTrue(any(form in proc.stderr for form in short_forms(digest)),
                        f"stderr should name {digest}" + tw.describe(proc))

    def assert_tag_statuses(self, report, expected):
        """``report["tags"]`` as {tag: status} equals ``expected``."""
        got = {t["tag"]: t["status"] for t in report.get("tags", [])}
        self.assertEqual(got, expected, json.dumps(report, indent=2))

    def assert_blobs(self, report, uploaded=0, existing=0, mounted=0, uploaded_bytes=None, existing_bytes=None,
                     mounted_bytes=None):
        blobs = report["blobs"]
        got = {"uploaded": blobs["uploaded"], "existing": blobs["existing"], "mounted": blobs["mounted"]}
        self.assertEqual(got, {"uploaded": uploaded, "existing": existing, "mounted": mounted},
                         json.dumps(report, indent=2))
        for key, value in (("uploadedBytes", uploaded_bytes), ("existingBytes", existing_bytes),
                           ("mountedBytes", mounted_bytes)):
            if value is not None:
                self.assertEqual(blobs[key], value, f"blobs.{key}: " + json.dumps(blobs))

    def assert_pulls_back(self, registry, ref, digest, image):
        """skopeo copies HOST/REF into a fresh OCI layout: same digest, every blob byte-identical to ``image``'s."""
        out = tempfile.mkdtemp(prefix="pulled-", dir=self.tmp)
        shutil.rmtree(out)
        interop.copy_from_registry(registry, ref, f"{out}:pulled", all_images=True)
        self.assertEqual(interop.layout_digest(out, "pulled"), digest)
        for blob in image.blobs:
            self.assertEqual(make_image.read_blob(out, blob.digest), make_image.read_blob(image.layout, blob.digest),
                             f"blob {blob.digest} read back from {registry.host}/{ref} differs")
