"""tagwarden push docker://REGISTRY/REPO:TAG|@DIGEST REGISTRY/REPO[:TAG]: copies between registries and
repositories without a layer touching the disk, keeping every digest.

Sources are put into the first registry with skopeo; copies are read back with skopeo and checked
in the registries' storage and access logs.
"""

import json
import unittest

import make_image
import tw
from promotion import OCI_INDEX, PromotionTestCase, setUpModule  # noqa: F401


class CopyAcrossRegistries(PromotionTestCase):

    def test_copy_keeps_the_digest(self):
        repo, dest = self.repo(), self.repo("copy")
        image = self.seed(repo, version="1.0.0", env="dev", layers=3)
        src_mark = self.mark()
        report = self.copy_json(f"{self.host}/{repo}:1.0.0-dev", f"{self.other.host}/{dest}:1.0.0",
                                "--tag", "stable")
        self.assertEqual(report["digest"], image.digest)
        self.assertEqual(report["repository"], f"{self.other.host}/{dest}")
        self.assert_tag_statuses(report, {"1.0.0": "created", "stable": "created"})
        self.assert_blobs(report, uploaded=len(image.blobs), uploaded_bytes=image.blob_bytes)
        self.assertIs(report["verified"], True)
        for tag in ("1.0.0", "stable"):
            self.assertEqual(self.raw_digest(self.other, f"{dest}:{tag}"), image.digest)
        self.assertEqual(self.other.layer_digests(dest), set(image.blob_digests))
        self.assertEqual(self.writes(self.registry, src_mark), [], "the source registry is only read")
        self.assert_pulls_back(self.other, f"{dest}:1.0.0", image.digest, image)

        text = self.copy(f"{self.host}/{repo}:1.0.0-dev", f"{self.other.host}/{dest}:1.0.0")
        self.assert_exit(text, tw.EXIT_OK)
        self.assertEqual(text.stdout.splitlines(), [f"{self.other.host}/{dest}@{image.digest}"], tw.describe(text))

    def test_copy_index_by_digest(self):
        repo, dest = self.repo(), self.repo("copy")
        index = self.seed(repo, index=True)
        report = self.copy_json(f"{self.host}/{repo}@{index.digest}", f"{self.other.host}/{dest}:multi")
        self.assertEqual(report["digest"], index.digest)
        self.assertEqual(report["mediaType"], OCI_INDEX)
        self.assert_blobs(report, uploaded=len(index.blobs))
        self.assertEqual(self.raw_digest(self.other, f"{dest}:multi"), index.digest)
        for child in index.children:
            self.assertEqual(self.raw_digest(self.other, f"{dest}@{child.digest}"), child.digest)
        self.assertEqual(self.other.manifest_digests(dest), {index.digest, *index.manifest_digests})
        self.assert_pulls_back(self.other, f"{dest}:multi", index.digest, index)

    def test_copy_docker_media_types(self):
        repo, dest = self.repo(), self.repo("copy")
        image = self.seed(repo, media="docker")
        self.copy_json(f"{self.host}/{repo}:1.0.0-dev", f"{self.other.host}/{dest}:d")
        status, content_type, raw = self.other.get_manifest(dest, "d")
        self.assertEqual(status, 200)
        self.assertEqual(content_type, make_image.MEDIA_TYPES["docker"]["manifest"])
        self.assertEqual(self.raw_digest(self.other, f"{dest}:d"), image.digest)
        self.assertEqual(raw, self.raw(self.registry, f"{repo}:1.0.0-dev"))

    def test_existing_tag_on_another_digest_exit_4(self):
        repo, dest = self.repo(), self.repo("copy")
        image = self.seed(repo)
        other_image = self.seed(dest, version="1", env="x", registry=self.other)
        mark = self.mark(self.other)
        proc = self.copy(f"{self.host}/{repo}:1.0.0-dev", f"{self.other.host}/{dest}:1-x")
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assertEqual(self.other.tags(dest), {"1-x": other_image.digest})
        self.assertNotIn(image.digest, self.other.manifest_digests(dest))
        self.assertEqual(self.writes(self.other, mark), [], self.since(self.other, mark))

    def test_missing_source_exit_2(self):
        repo, dest = self.repo(), self.repo("copy")
        self.seed(repo)
        proc = self.copy(f"{self.host}/{repo}:no-such-tag", f"{self.other.host}/{dest}:1")
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assertIn("no-such-tag", proc.stderr, tw.describe(proc))
        self.assertEqual(self.other.manifest_digests(dest), set())
        self.assertEqual(self.other.tags(dest), {})


class CopyWithinRegistry(PromotionTestCase):

    def test_other_repository_mounts(self):
        repo, dest = self.repo(), self.repo("copy")
        image = self.seed(repo)
        mark = self.mark()
        report = self.copy_json(f"{self.host}/{repo}:1.0.0-dev", f"{self.host}/{dest}:1.0.0")
        self.assertEqual(report["digest"], image.digest)
        self.assert_blobs(report, mounted=len(image.blobs), mounted_bytes=image.blob_bytes)
        self.assertEqual(self.raw_digest(self.registry, f"{dest}:1.0.0"), image.digest)
        self.assertEqual(len(self.mounts(self.registry, mark, dest)), len(image.blobs))
        self.assertEqual([r for r in self.since(self.registry, mark) if r.method == "GET" and "/blobs/" in r.path], [],
                         "a mount reads no blob")

    def test_same_repository_new_tag_moves_no_blob(self):
        repo = self.repo()
        image = self.seed(repo, layers=3)
        mark = self.mark()
        report = self.copy_json(f"{self.host}/{repo}:1.0.0-dev", f"{self.host}/{repo}:again")
        self.assertEqual(report["digest"], image.digest)
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": image.digest, "again": image.digest})
        self.assertEqual(self.blob_transfers(self.registry, mark), [], self.since(self.registry, mark))
        self.assertEqual(json.loads(self.raw(self.registry, f"{repo}:again"))["config"]["digest"], image.config_digest)


if __name__ == "__main__":
    unittest.main()
