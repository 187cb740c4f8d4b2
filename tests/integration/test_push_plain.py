"""tagwarden push and verify against a plain-HTTP docker-registry on 127.0.0.1.

No --plain-http: on a loopback address the tool tries HTTPS and falls back to HTTP, as Docker does.
skopeo reads back what tagwarden wrote.
"""

import hashlib
import json
import unittest

import interop
import make_image
import tw
from fixtures import RegistryTestCase, setUpModule  # noqa: F401


class PushPlainHttp(RegistryTestCase):
    registry_mode = "plain"

    def push_json(self, source, target, *args):
        proc = self.push(source, target, "--output", "json", *args)
        self.assert_exit(proc, 0)
        return tw.parse_json(self, proc)

    def test_push_two_tags_prints_one_digest_line(self):
        layout, image = self.image(layers=2)
        repo = self.repo()
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0.0"), "--tag", "stable")
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, image.manifest_digest, "the pushed manifest must keep the layout's digest")
        self.assertEqual(self.registry.tags(repo), {"1.0.0": digest, "stable": digest})
        self.assertEqual(self.registry.manifest_digests(repo), {digest})
        self.assertEqual(self.registry.layer_digests(repo), set(image.blob_digests))
        for tag in ("1.0.0", "stable"):
            self.assertEqual(interop.inspect(self.registry, f"{repo}:{tag}")["Digest"], digest)
        self.assertEqual(self.registry.pending_uploads(repo), [], "no upload session may be left open")

    def test_source_ref_and_tag_flags_only(self):
        layout, _first = self.image("shared", ref_name="first")
        second = make_image.make_image(layout, layers=1, layer_size=8192, seed=f"{self.id()}-second",
                                       ref_name="second")
        repo = self.repo()
        proc = self.push(f"oci:{layout}:second", self.target(repo), "--tag", "a", "--tag", "b")
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, second.manifest_digest, "oci:DIR:REF must select the ref named REF")
        self.assertEqual(self.registry.tags(repo), {"a": digest, "b": digest})

    def test_json_report_and_idempotent_repush(self):
        layout, image = self.image(layers=2)
        repo = self.repo()
        target = self.target(repo, "1.0.0")

        first = self.push_json(f"oci:{layout}", target, "--tag", "latest")
        self.assertEqual(first["repository"], f"{self.host}/{repo}")
        self.assertEqual(first["digest"], image.manifest_digest)
        self.assertEqual(first["mediaType"], make_image.MEDIA_TYPES["oci"]["manifest"])
        self.assertEqual(sorted(first["tags"], key=lambda t: t["tag"]),
                         [{"tag": "1.0.0", "status": "created"}, {"tag": "latest", "status": "created"}])
        self.assertIs(first["verified"], True)
        blobs = first["blobs"]
        self.assertEqual(blobs["uploaded"], len(image.blobs), f"config + 2 layers are new: {blobs}")
        self.assertEqual(blobs["existing"], 0, blobs)
        self.assertEqual(blobs["mounted"], 0, blobs)
        self.assertEqual(blobs["uploadedBytes"], image.blob_bytes, blobs)
        self.assertEqual(blobs["existingBytes"], 0, blobs)
        self.assertEqual(blobs["mountedBytes"], 0, blobs)

        mark = len(self.registry.requests())
        second = self.push_json(f"oci:{layout}", target, "--tag", "latest")
        self.assertEqual(second["digest"], image.manifest_digest)
        self.assertEqual(sorted(second["tags"], key=lambda t: t["tag"]),
                         [{"tag": "1.0.0", "status": "unchanged"}, {"tag": "latest", "status": "unchanged"}])
        blobs = second["blobs"]
        self.assertEqual(blobs["existing"], len(image.blobs), f"every blob is already there: {blobs}")
        self.assertEqual(blobs["uploaded"], 0, blobs)
        self.assertEqual(blobs["mounted"], 0, blobs)
        self.assertEqual(blobs["uploadedBytes"], 0, blobs)
        self.assertEqual(blobs["existingBytes"], image.blob_bytes, blobs)
        self.assertIs(second["verified"], True)
        self.assertEqual(self.registry.upload_posts(repo, since=mark), 0,
                         f"a re-push must not start any upload: {self.registry.requests()[mark:]}")
        self.assertEqual(self.registry.manifest_digests(repo), {image.manifest_digest})
        self.assertEqual(self.registry.tags(repo), {"1.0.0": image.manifest_digest, "latest": image.manifest_digest})

    def test_verify_after_push(self):
        layout, image = self.image()
        repo = self.repo()
        digest = self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "v1")), repo)
        self.assert_exit(self.verify(self.target(repo, "v1")), 0)
        self.assert_exit(self.verify(f"{self.host}/{repo}@{digest}"), 0)
        proc = self.verify(self.target(repo, "v1"), "--output", "json")
        self.assert_exit(proc, 0)
        report = tw.parse_json(self, proc)
        self.assertIn(image.manifest_digest, json.dumps(report), "the verify report must name the digest")

    def test_multi_arch_index_keeps_index_digest(self):
        layout, index = self.index(platforms=[("linux", "amd64"), ("linux", "arm64", "v8")])
        repo = self.repo()
        proc = self.push(f"oci:{layout}", self.target(repo, "multi"))
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, index.index_digest, "stdout must give the index digest, not a child's")
        self.assertEqual(self.registry.tags(repo), {"multi": index.index_digest})
        self.assertEqual(self.registry.manifest_digests(repo), {index.index_digest, *index.manifest_digests},
                         "the index and both child manifests must be stored")
        self.assertEqual(self.registry.layer_digests(repo), set(index.blob_digests))

        raw = interop.inspect(self.registry, f"{repo}:multi", raw=True)
        self.assertEqual("sha256:" + hashlib.sha256(raw).hexdigest(), index.index_digest)
        listed = [m["digest"] for m in json.loads(raw)["manifests"]]
        self.assertEqual(listed, index.manifest_digests)
        for child in index.children:
            child_raw = interop.inspect(self.registry, f"{repo}@{child.manifest_digest}", raw=True)
            self.assertEqual("sha256:" + hashlib.sha256(child_raw).hexdigest(), child.manifest_digest)
        self.assert_exit(self.verify(self.target(repo, "multi")), 0)

    def test_docker_media_types_keep_digest(self):
        layout, image = self.image(media="docker")
        repo = self.repo()
        digest = self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "d1")), repo)
        self.assertEqual(digest, image.manifest_digest)
        status, content_type, raw = self.registry.get_manifest(repo, "d1")
        self.assertEqual(status, 200)
        self.assertEqual(content_type, make_image.MEDIA_TYPES["docker"]["manifest"],
                         "the manifest must be stored with its Docker media type")
        self.assertEqual("sha256:" + hashlib.sha256(raw).hexdigest(), image.manifest_digest)
        self.assertEqual(interop.inspect(self.registry, f"{repo}:d1")["Digest"], image.manifest_digest)

    def test_docker_manifest_list_keeps_digest(self):
        layout, index = self.index(media="docker")
        repo = self.repo()
        digest = self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "list")), repo)
        self.assertEqual(digest, index.index_digest)
        status, content_type, raw = self.registry.get_manifest(repo, "list")
        self.assertEqual(status, 200)
        self.assertEqual(content_type, make_image.MEDIA_TYPES["docker"]["index"])
        self.assertEqual(self.registry.manifest_digests(repo), {index.index_digest, *index.manifest_digests})

    def test_plain_http_flag(self):
        layout, image = self.image()
        repo = self.repo()
        digest = self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "p"), "--plain-http"), repo)
        self.assertEqual(digest, image.manifest_digest)
        self.assert_exit(self.verify(self.target(repo, "p"), "--plain-http"), 0)

    def test_jobs_one_pushes_the_same_image(self):
        layout, image = self.image(layers=4, layer_size=8192)
        repo = self.repo()
        digest = self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "j1"), "--jobs", "1"), repo)
        self.assertEqual(digest, image.manifest_digest)
        self.assertEqual(self.registry.layer_digests(repo), set(image.blob_digests))

    def test_dry_run_writes_nothing(self):
        layout, _image = self.image()
        repo = self.repo()
        mark = len(self.registry.requests())
        proc = self.push(f"oci:{layout}", self.target(repo, "dry"), "--dry-run")
        self.assert_exit(proc, 0)
        self.assert_no_manifest(repo, proc)
        self.assertEqual(self.registry.layer_digests(repo), set(), "a dry run must not upload blobs")
        writes = [r for r in self.registry.requests()[mark:] if r.method in ("POST", "PUT", "PATCH", "DELETE")]
        self.assertEqual(writes, [], "a dry run must send no write request")

    def test_tag_conflict_refused_and_all_or_none(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        self.assert_pushed(self.push(f"oci:{layout_a}", self.target(repo, "release")), repo)

        proc = self.push(f"oci:{layout_b}", self.target(repo, "release"))
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assert_stderr_mentions(proc, "release")
        self.assertEqual(self.registry.tags(repo), {"release": image_a.manifest_digest},
                         "an existing tag is never moved to another digest")

        proc = self.push(f"oci:{layout_b}", self.target(repo, "fresh"), "--tag", "release")
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assertEqual(self.registry.tags(repo), {"release": image_a.manifest_digest},
                         "several tags are written all or none: 'fresh' must not exist")
        self.assertNotIn(image_b.manifest_digest, self.registry.manifest_digests(repo),
                         "a refused push must leave no untagged manifest")


if __name__ == "__main__":
    unittest.main()
