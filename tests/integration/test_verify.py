"""tagwarden verify: tag -> digest -> every blob, and the failures it must report (exit 6)."""

import unittest

import interop
import registry as registry_module
import tw
from fixtures import RegistryTestCase, setUpModule  # noqa: F401

ZERO_DIGEST = "sha256:" + "0" * 64


class Verify(RegistryTestCase):
    registry_mode = "plain"

    def pushed(self, tag="1.0.0", **kwargs):
        layout, image = self.image(**kwargs)
        repo = self.repo()
        self.assertEqual(self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, tag)), repo),
                         image.manifest_digest)
        return repo, image

    def test_verify_image_pushed_by_skopeo(self):
        layout, image = self.image()
        repo = self.repo()
        interop.copy_to_registry(f"{layout}:latest", self.registry, f"{repo}:s1")
        self.assert_exit(self.verify(self.target(repo, "s1")), 0)
        self.assert_exit(self.verify(f"{self.host}/{repo}@{image.manifest_digest}"), 0)

    def test_tag_not_found(self):
        repo, _image = self.pushed()
        proc = self.verify(self.target(repo, "no-such-tag"))
        self.assert_exit(proc, tw.EXIT_VERIFY)
        self.assert_stderr_mentions(proc, "no-such-tag")

    def test_repository_not_found(self):
        proc = self.verify(self.target(self.repo("never-pushed"), "1.0.0"))
        self.assert_exit(proc, tw.EXIT_VERIFY)

    def test_digest_not_found(self):
        repo, _image = self.pushed()
        proc = self.verify(f"{self.host}/{repo}@{ZERO_DIGEST}")
        self.assert_exit(proc, tw.EXIT_VERIFY)
        self.assert_stderr_mentions(proc, ZERO_DIGEST, "0" * 12)

    def test_deleted_layer_blob(self):
        repo, image = self.pushed()
        deleted = image.layers[1].digest
        self.registry.delete_blob(repo, deleted)
        status, _headers, _body = self.registry.request("HEAD", f"/v2/{repo}/blobs/{deleted}")
        self.assertEqual(status, 404, "fixture: the registry must no longer serve the deleted blob")
        proc = self.verify(self.target(repo, "1.0.0"))
        self.assert_exit(proc, tw.EXIT_VERIFY)
        self.assert_stderr_mentions(proc, deleted, deleted.split(":")[1][:12])

    def test_deleted_config_blob(self):
        repo, image = self.pushed()
        self.registry.delete_blob(repo, image.config.digest)
        proc = self.verify(self.target(repo, "1.0.0"))
        self.assert_exit(proc, tw.EXIT_VERIFY)
        self.assert_stderr_mentions(proc, image.config.digest, image.config.digest.split(":")[1][:12])

    def test_deleted_blob_of_index_child(self):
        layout, index = self.index()
        repo = self.repo()
        self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "multi")), repo)
        deleted = index.children[1].layers[0].digest
        self.registry.delete_blob(repo, deleted)
        proc = self.verify(self.target(repo, "multi"))
        self.assert_exit(proc, tw.EXIT_VERIFY)
        self.assert_stderr_mentions(proc, deleted, deleted.split(":")[1][:12])

    def test_deleted_child_manifest(self):
        layout, index = self.index()
        repo = self.repo()
        self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "multi")), repo)
        child = index.children[0].manifest_digest
        self.registry.delete_manifest(repo, child)
        proc = self.verify(self.target(repo, "multi"))
        self.assert_exit(proc, tw.EXIT_VERIFY)
        self.assert_stderr_mentions(proc, child, child.split(":")[1][:12])

    def test_verify_json_report(self):
        repo, image = self.pushed()
        proc = self.verify(self.target(repo, "1.0.0"), "--output", "json")
        self.assert_exit(proc, 0)
        self.assertIn(image.manifest_digest, proc.stdout)
        tw.parse_json(self, proc)

    def test_registry_unreachable_is_network_error(self):
        port = registry_module.free_port()  # nothing listens there
        proc = tw.run_tagwarden("verify", f"127.0.0.1:{port}/some/repo:1.0.0", timeout=170)
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assert_stderr_mentions(proc, f"127.0.0.1:{port}")


if __name__ == "__main__":
    unittest.main()
