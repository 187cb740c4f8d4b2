"""Immutable tags: a tag on another digest is refused (exit 4, both digests named, nothing stored),
--allow-overwrite moves it only outside protected environments and reports the old digest, and
the "does the tag exist?" check fails closed: an error answer is never read as "absent"."""

import unittest

import tw
from fault_proxy import blob_upload_path, tag_put_path
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401


class ImmutableTags(TagSafetyTestCase):

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()

    def target(self, repo, tag=None):
        return f"{self.registry.host}/{repo}" + (f":{tag}" if tag else "")

    def test_other_digest_is_refused_with_both_digests(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        self.push_json(f"oci:{layout_a}", self.target(repo), "--version", "1.4.2", "--env", "dev")
        mark = len(self.registry.requests())

        proc = self.push(f"oci:{layout_b}", self.target(repo), "--version", "1.4.2", "--env", "dev")
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assert_stderr_mentions(proc, "1.4.2-dev")
        self.assert_stderr_names_digest(proc, image_a.digest)
        self.assert_stderr_names_digest(proc, image_b.digest)
        self.assertEqual(proc.stdout.strip(), "", "a refused push prints no result" + tw.describe(proc))
        self.assertEqual(self.registry.tags(repo), {"1.4.2-dev": image_a.digest})
        self.assertEqual(self.registry.manifest_digests(repo), {image_a.digest},
                         "the refused image must leave no manifest revision behind")
        self.assertEqual(self.registry.upload_posts(repo, since=mark), 0,
                         "the conflict is found before anything is uploaded")
        self.assertEqual(self.journals(), {}, "a refused push leaves no journal")

    def test_conflict_on_one_tag_writes_none_of_the_others(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        self.push_json(f"oci:{layout_a}", self.target(repo, "shared"))
        proc = self.push(f"oci:{layout_b}", self.target(repo, "new-1"), "--tag", "shared", "--tag", "new-2")
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assertEqual(self.registry.tags(repo), {"shared": image_a.digest})
        self.assertEqual(self.registry.manifest_digests(repo), {image_a.digest})

    def test_allow_overwrite_moves_a_dev_tag_and_reports_the_old_digest(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        self.push_json(f"oci:{layout_a}", self.target(repo), "--version", "1.4.2", "--env", "dev")

        report = self.push_json(f"oci:{layout_b}", self.target(repo), "--version", "1.4.2", "--env", "dev",
                                "--allow-overwrite")
        self.assertEqual(report["digest"], image_b.digest)
        self.assertEqual(report["tags"], [{"tag": "1.4.2-dev", "status": "overwritten",
                                           "previousDigest": image_a.digest}])
        self.assertEqual(self.registry.tags(repo), {"1.4.2-dev": image_b.digest})

        # The flag does not make an unchanged tag "overwritten".
        again = self.push_json(f"oci:{layout_b}", self.target(repo), "--version", "1.4.2", "--env", "dev",
                               "--allow-overwrite")
        self.assertEqual(again["tags"], [{"tag": "1.4.2-dev", "status": "unchanged"}])

    def test_prod_tag_can_never_be_overwritten(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        self.push_json(f"oci:{layout_a}", self.target(repo), "--version", "1.4.2", "--env", "prod")
        mark = len(self.registry.requests())
        for args in ([], ["--allow-overwrite"]):
            with self.subTest(args=args):
                proc = self.push(f"oci:{layout_b}", self.target(repo), "--version", "1.4.2", "--env", "prod", *args)
                self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
                self.assert_stderr_names_digest(proc, image_a.digest)
                self.assert_stderr_names_digest(proc, image_b.digest)
                self.assert_stderr_mentions(proc, "prod")
        self.assertEqual(self.registry.tags(repo), {"1.4.2-prod": image_a.digest})
        self.assertEqual(self.registry.manifest_digests(repo), {image_a.digest})
        self.assertEqual(self.registry.manifest_puts(repo, since=mark), 0)

    def test_protected_environments_from_config(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        cwd = self.workdir("protected_environments: [staging, prod]\n")
        self.push_json(f"oci:{layout_a}", self.target(repo), "--version", "2.0", "--env", "staging", cwd=cwd)
        proc = self.push(f"oci:{layout_b}", self.target(repo), "--version", "2.0", "--env", "staging",
                         "--allow-overwrite", cwd=cwd)
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assertEqual(self.registry.tags(repo), {"2.0-staging": image_a.digest})

        # A protected environment also protects a tag given as a plain --tag with the env suffix.
        self.push_json(f"oci:{layout_a}", self.target(repo, "3.0-prod"), cwd=cwd)
        proc = self.push(f"oci:{layout_b}", self.target(repo, "3.0-prod"), "--allow-overwrite", cwd=cwd)
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assertEqual(self.registry.tags(repo)["3.0-prod"], image_a.digest)

    def test_protected_environments_from_environment_variable(self):
        layout_a, image_a = self.image("a")
        layout_b, _image_b = self.image("b")
        repo = self.repo()
        env = {"TAGWARDEN_PROTECTED_ENVIRONMENTS": "live"}
        self.push_json(f"oci:{layout_a}", self.target(repo), "--version", "5", "--env", "live", env=env)
        proc = self.push(f"oci:{layout_b}", self.target(repo), "--version", "5", "--env", "live",
                         "--allow-overwrite", env=env)
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assertEqual(self.registry.tags(repo), {"5-live": image_a.digest})


class FailClosedTagCheck(TagSafetyTestCase):
    """An error on the tag lookup (HEAD /v2/<repo>/manifests/<tag>) stops the push: never "absent"."""

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)

    def target(self, repo, tag=None):
        return f"{self.proxy.host}/{repo}" + (f":{tag}" if tag else "")

    def refused_by_lookup(self, status, code, **rule):
        layout, _image = self.image()
        repo = self.repo()
        self.proxy.fail("HEAD", tag_put_path(repo, "1.0-dev"), status=status, **rule)
        proc = self.push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev")
        self.assert_exit(proc, code)
        self.assertEqual(self.proxy.requests("POST", blob_upload_path()), [],
                         "nothing may be uploaded when the tag state is unknown" + tw.describe(proc))
        self.assertEqual(self.proxy.requests("PUT"), [], "nothing may be written" + tw.describe(proc))
        self.assert_nothing_stored(self.registry, repo, proc)
        self.assertEqual(self.journals(), {})
        return proc

    def test_server_error_on_tag_lookup(self):
        proc = self.refused_by_lookup(500, tw.EXIT_NETWORK)
        self.assertGreaterEqual(len(self.proxy.requests("HEAD", tag_put_path(self.repo(), "1.0-dev"))), 2,
                                "a 500 is retried before giving up")
        self.assert_stderr_mentions(proc, "1.0-dev")

    def test_service_unavailable_on_tag_lookup(self):
        self.refused_by_lookup(503, tw.EXIT_NETWORK)

    def test_forbidden_on_tag_lookup(self):
        proc = self.refused_by_lookup(403, tw.EXIT_AUTH)
        self.assert_stderr_mentions(proc, "1.0-dev", "denied", "forbidden", "403")

    def test_unauthorized_on_tag_lookup(self):
        self.refused_by_lookup(401, tw.EXIT_AUTH, headers={"WWW-Authenticate": 'Basic realm="tw-test"'})

    def test_error_on_the_lookup_under_the_lock_writes_no_manifest(self):
        # The first lookup (preflight) passes; the second one, re-read under the lock, fails.
        layout, _image = self.image()
        repo = self.repo()
        self.proxy.fail("HEAD", tag_put_path(repo, "1.0-dev"), status=500, nth=2)
        proc = self.push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertEqual(self.proxy.requests("PUT", tag_put_path(repo)), [],
                         "no manifest may be written when the tag state under the lock is unknown")
        self.assert_nothing_stored(self.registry, repo, proc)
        self.assertEqual(self.held_locks(), {}, "the lock is released on failure")


if __name__ == "__main__":
    unittest.main()
