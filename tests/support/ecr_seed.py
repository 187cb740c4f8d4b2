"""Thousands of images in an ECR test bed repository, in seconds (for the call-count test and the
guarded-push bench: tests/integration/test_guard_ecr_calls.py, bench/bench_guarded_ecr.sh).

    made = ecr_seed.seed_repository(bed, "team/app", 5000, layout, info)   # [(digest, tag or None)]

Seeding through the bed's data plane (ecr_images.SeedImage) costs a full moto DescribeImages per
manifest PUT (the bed's quota check; moto lists 5,000 images in 0.6-0.9 s), so N images cost O(N^2):
about half an hour for 5,000. This takes 15-25 s for 5,000 (6 s for 1,200) on 2 cores. Here the
layout's blobs are uploaded once through the data plane, and then each image - the layout's manifest
with an annotation ``tw.seed/n`` that makes it distinct - is

- written into the docker-registry's filesystem storage (manifest blob, revision link, tag links:
  distribution's storage layout), so the data plane serves it like a pushed image, and
- put into moto with PutImage (``imageDigest`` = sha256 of the bytes), so DescribeImages counts it.

Neither goes through the bed's checks (quota, tag immutability): this is for filling, not for the
behaviour under test. Push times are spread back over ``spread_days`` (bed.set_pushed_at), newest last.
"""

import concurrent.futures
import hashlib
import json
import os
import time

import ecr_images
import make_image

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_WORKERS = 8


class SeedError(RuntimeError):
    pass


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _manifest(template, n):
    document = json.loads(template)
    document.setdefault("annotations", {})["tw.seed/n"] = str(n)
    body = json.dumps(document, indent=2).encode()
    return body, "sha256:" + hashlib.sha256(body).hexdigest()


def _store(bed, repo, body, digest, tag):
    """The manifest into the docker-registry's storage, as a PUT of it (under ``tag``) would leave it."""
    hex_ = digest.split(":", 1)[1]
    root = os.path.join(bed.registry.storage_dir, "docker", "registry", "v2")
    _write(os.path.join(root, "blobs", "sha256", hex_[:2], hex_, "data"), body)
    manifests = os.path.join(root, "repositories", repo, "_manifests")
    _write(os.path.join(manifests, "revisions", "sha256", hex_, "link"), digest.encode())
    if tag:
        _write(os.path.join(manifests, "tags", tag, "current", "link"), digest.encode())
        _write(os.path.join(manifests, "tags", tag, "index", "sha256", hex_, "link"), digest.encode())


def seed_repository(bed, repo, count, layout, info, untagged_every=10, tag_format="seed-{n}", spread_days=365,
                    workers=_WORKERS):
    """Puts ``count`` distinct images into ``repo`` (which must exist): every ``untagged_every``-th one
    untagged, the others tagged ``tag_format``. Returns [(digest, tag or None)], oldest first."""
    ecr_images.SeedImage(bed, layout, info).upload_blobs(repo)
    template = make_image.read_blob(layout, info.manifest_digest).decode()
    made = []
    for n in range(count):
        body, digest = _manifest(template, n)
        tag = None if untagged_every and n % untagged_every == 0 else tag_format.format(n=n)
        made.append((body, digest, tag))

    def put(item):
        body, digest, tag = item
        _store(bed, repo, body, digest, tag)
        params = {"repositoryName": repo, "imageManifest": body.decode(), "imageDigest": digest,
                  "imageManifestMediaType": OCI_MANIFEST}
        if tag:
            params["imageTag"] = tag
        echoed = bed._ecr("PutImage", **params)["image"]["imageId"]["imageDigest"]
        if echoed != digest:
            raise SeedError(f"moto stored {echoed} for {digest}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, made))
    now = time.time()
    step = spread_days * 86400.0 / max(count, 1)
    for i, (_body, digest, _tag) in enumerate(made):
        bed.set_pushed_at(repo, digest, now - (count - i) * step)
    return [(digest, tag) for _body, digest, tag in made]
