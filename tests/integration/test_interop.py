"""skopeo and umoci, independent implementations, read what tagwarden pushes and produce what it pushes."""

import hashlib
import json
import os
import unittest

import interop
import make_image
from fixtures import RegistryTestCase, setUpModule  # noqa: F401


class Interop(RegistryTestCase):
    registry_mode = "plain"

    def test_skopeo_pulls_what_tagwarden_pushed(self):
        layout, image = self.image(layers=3)
        repo = self.repo()
        digest = self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "1.0.0")), repo)
        out = os.path.join(self.tmp, "pulled")
        interop.copy_from_registry(self.registry, f"{repo}:1.0.0", f"{out}:1.0.0")
        self.assertEqual(interop.layout_digest(out, "1.0.0"), digest)
        self.assertEqual(digest, image.manifest_digest)
        # Every blob skopeo fetched (and checked against its digest) is byte-identical to the source.
        for blob in image.blobs:
            self.assertEqual(make_image.read_blob(out, blob.digest), make_image.read_blob(layout, blob.digest))
        # umoci unpacks it, which checks the layers' diff_ids against the config.
        interop.umoci("unpack", "--image", f"{out}:1.0.0", os.path.join(self.tmp, "bundle"))
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, "bundle", "rootfs", "layer2", "data.bin")))

    def test_skopeo_pulls_multi_arch_index(self):
        layout, index = self.index()
        repo = self.repo()
        digest = self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "m")), repo)
        out = os.path.join(self.tmp, "pulled")
        interop.copy_from_registry(self.registry, f"{repo}:m", f"{out}:m", all_images=True)
        self.assertEqual(interop.layout_digest(out, "m"), digest)
        self.assertEqual(digest, index.index_digest)
        pulled_index = json.loads(make_image.read_blob(out, digest))
        self.assertEqual([m["digest"] for m in pulled_index["manifests"]], index.manifest_digests)

    def test_layout_written_by_skopeo_keeps_digest(self):
        # The source image goes into the registry with skopeo and out again with skopeo, so the
        # layout tagwarden reads was written by skopeo, not by our generator.
        layout, image = self.image()
        source_repo = self.repo("src")
        interop.copy_to_registry(f"{layout}:latest", self.registry, f"{source_repo}:1")
        skopeo_digest = interop.inspect(self.registry, f"{source_repo}:1")["Digest"]
        skopeo_layout = os.path.join(self.tmp, "by-skopeo")
        interop.copy_from_registry(self.registry, f"{source_repo}:1", f"{skopeo_layout}:1")
        expected = interop.layout_digest(skopeo_layout, "1")
        self.assertEqual(expected, skopeo_digest)

        repo = self.repo("dst")
        digest = self.assert_pushed(self.push(f"oci:{skopeo_layout}:1", self.target(repo, "1")), repo)
        self.assertEqual(digest, expected)
        self.assertEqual(interop.inspect(self.registry, f"{repo}:1")["Digest"], expected)
        self.assertEqual(image.manifest_digest, expected)

    def test_multi_arch_layout_written_by_skopeo_keeps_digest(self):
        layout, index = self.index()
        source_repo = self.repo("src")
        interop.copy_to_registry(f"{layout}:latest", self.registry, f"{source_repo}:1", all_images=True)
        skopeo_layout = os.path.join(self.tmp, "by-skopeo")
        interop.copy_from_registry(self.registry, f"{source_repo}:1", f"{skopeo_layout}:1", all_images=True)
        expected = interop.layout_digest(skopeo_layout, "1")
        self.assertEqual(expected, index.index_digest)

        repo = self.repo("dst")
        digest = self.assert_pushed(self.push(f"oci:{skopeo_layout}:1", self.target(repo, "1")), repo)
        self.assertEqual(digest, expected)
        self.assertEqual(self.registry.manifest_digests(repo), {expected, *index.manifest_digests})

    def test_layout_built_by_umoci_keeps_digest(self):
        layout = os.path.join(self.tmp, "umoci-layout")
        expected = interop.umoci_image(layout, "latest", files={
            "/etc/tagwarden/hello.txt": b"hello from umoci\n",
            "/usr/share/tagwarden/data.bin": hashlib.sha256(self.id().encode()).digest() * 512,
        })
        repo = self.repo()
        digest = self.assert_pushed(self.push(f"oci:{layout}:latest", self.target(repo, "u1")), repo)
        self.assertEqual(digest, expected)
        raw = interop.inspect(self.registry, f"{repo}:u1", raw=True)
        self.assertEqual("sha256:" + hashlib.sha256(raw).hexdigest(), expected)
        self.assert_exit(self.verify(self.target(repo, "u1")), 0)


if __name__ == "__main__":
    unittest.main()
