"""Bad input is refused with the right exit code, a message naming the problem, and nothing stored."""

import os
import unittest

import make_image
import tw
from fixtures import RegistryTestCase, setUpModule  # noqa: F401


def short(digest):
    """The forms a message may use to name a digest: full, hex only, or the 12-character short hex."""
    hex_part = digest.split(":", 1)[1]
    return digest, hex_part, hex_part[:12]


class BadLayout(RegistryTestCase):
    registry_mode = "plain"

    def push_refused(self, source, repo, *args, code=tw.EXIT_USAGE):
        proc = self.push(source, self.target(repo, "1.0.0"), *args)
        self.assert_exit(proc, code)
        self.assert_no_manifest(repo, proc)
        self.assertEqual(proc.stdout.strip(), "", "a refused push prints no result" + tw.describe(proc))
        return proc

    def test_missing_layer_blob(self):
        layout, image = self.image()
        make_image.remove_blob(layout, image.layers[1].digest)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.layers[1].digest))

    def test_missing_config_blob(self):
        layout, image = self.image()
        make_image.remove_blob(layout, image.config.digest)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.config.digest))

    def test_missing_manifest_blob(self):
        layout, image = self.image()
        make_image.remove_blob(layout, image.manifest.digest)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.manifest.digest))

    def test_missing_child_of_index(self):
        layout, index = self.index()
        missing = index.children[1].layers[0].digest
        make_image.remove_blob(layout, missing)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(missing))

    def test_blob_bytes_do_not_match_digest_same_size(self):
        layout, image = self.image(layers=2, layer_size=64 * 1024)
        corrupted = image.layers[0]
        make_image.flip_blob_bytes(layout, corrupted.digest)
        self.assertEqual(os.path.getsize(make_image.blob_path(layout, corrupted.digest)), corrupted.size)
        repo = self.repo()
        proc = self.push_refused(f"oci:{layout}", repo)
        self.assert_stderr_mentions(proc, *short(corrupted.digest))
        self.assertNotIn(corrupted.digest, self.registry.layer_digests(repo))

    def test_corrupted_config_same_size(self):
        layout, image = self.image()
        make_image.flip_blob_bytes(layout, image.config.digest, count=2)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.config.digest))

    def test_truncated_blob(self):
        layout, image = self.image()
        make_image.truncate_blob(layout, image.layers[0].digest)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.layers[0].digest))

    def test_malformed_index_json(self):
        for kind in sorted(make_image.MALFORMED_INDEXES):
            with self.subTest(kind=kind):
                layout, _image = self.image(f"malformed-{kind}")
                make_image.write_malformed_index(layout, kind)
                proc = self.push_refused(f"oci:{layout}", self.repo(kind))
                self.assert_stderr_mentions(proc, "index.json")

    def test_missing_index_json(self):
        layout, _image = self.image()
        os.unlink(os.path.join(layout, "index.json"))
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, "index.json")

    def test_unknown_ref_in_layout(self):
        layout, _image = self.image(ref_name="present")
        proc = self.push_refused(f"oci:{layout}:absent", self.repo())
        self.assert_stderr_mentions(proc, "absent")

    def test_nonexistent_directory(self):
        missing = os.path.join(self.tmp, "no-such-layout")
        proc = self.push_refused(f"oci:{missing}", self.repo())
        self.assert_stderr_mentions(proc, "no-such-layout")

    def test_unknown_transport(self):
        layout, _image = self.image()
        proc = self.push_refused(f"nosuchtransport:{layout}", self.repo())
        self.assert_stderr_mentions(proc, "nosuchtransport")

    def test_invalid_repository_reference(self):
        layout, _image = self.image()
        mark = len(self.registry.requests())
        for bad in ("UPPER/case", "double//slash", "trailing-/x", "-leading/x"):
            with self.subTest(repository=bad):
                proc = tw.run_tagwarden("push", f"oci:{layout}", f"{self.host}/{bad}:1.0.0")
                self.assert_exit(proc, tw.EXIT_USAGE)
                self.assert_stderr_mentions(proc, bad)
        self.assertEqual(self.registry.requests()[mark:], [],
                         "an invalid reference is refused before any request")

    def test_invalid_tags(self):
        layout, _image = self.image()
        repo = self.repo()
        long_tag = "t" * 129
        cases = [("--tag=-bad", "-bad"), ("--tag=.bad", ".bad"), ("--tag=bad tag", "bad tag"),
                 ("--tag=bad/tag", "bad/tag"), (f"--tag={long_tag}", long_tag[:40])]
        for flag, shown in cases:
            with self.subTest(tag=flag):
                proc = self.push(f"oci:{layout}", self.target(repo, "good"), flag)
                self.assert_exit(proc, tw.EXIT_USAGE)
                self.assert_stderr_mentions(proc, shown)
                self.assert_no_manifest(repo, proc)

    def test_invalid_tag_in_target(self):
        layout, _image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", f"{self.host}/{repo}:.hidden")
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_no_manifest(repo, proc)

    def test_verify_invalid_reference(self):
        proc = tw.run_tagwarden("verify", f"{self.host}/UPPER/case:1")
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_stderr_mentions(proc, "UPPER/case")

    def test_unknown_option_is_usage(self):
        layout, _image = self.image()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(self.repo(), "1"), "--no-such-option")
        self.assert_exit(proc, tw.EXIT_USAGE)


class BadCredentials(RegistryTestCase):
    registry_mode = "htpasswd"

    def test_wrong_credentials(self):
        layout, _image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                "--username", self.registry.username, "--password-stdin", stdin="nope\n")
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assert_no_manifest(repo, proc)
        tw.assert_no_secret(self, proc, tw.basic_auth(self.registry.username, "nope"))

    def test_unknown_user(self):
        layout, _image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                "--username", "intruder", "--password-stdin", stdin=self.registry.password + "\n")
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assert_no_manifest(repo, proc)
        tw.assert_no_secret(self, proc, self.registry.password)


if __name__ == "__main__":
    unittest.main()
