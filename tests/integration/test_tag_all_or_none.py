"""All or none: when one tag of a push cannot be written (or the push does not verify), the tags the
run wrote are taken back, no manifest of the run is left in the registry, and no journal remains."""

import re
import unittest

import make_image
import tw
from fault_proxy import blob_upload_path, tag_put_path
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401


class MultiTagRollback(TagSafetyTestCase):

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)

    def target(self, repo, tag=None):
        return f"{self.proxy.host}/{repo}" + (f":{tag}" if tag else "")

    def assert_clean_failure(self, repo, proc):
        self.assertNotEqual(proc.returncode, 0, "the push must fail" + tw.describe(proc))
        self.assertEqual(proc.stdout.strip(), "", "a failed push prints no result" + tw.describe(proc))
        self.assert_nothing_stored(self.registry, repo, proc)
        self.assertEqual(self.journals(), {}, "a rolled-back run leaves no journal" + tw.describe(proc))
        self.assertEqual(self.held_locks(), {}, "a failed run releases its locks")

    def test_second_tag_put_fails_every_time(self):
        layout, image = self.image()
        repo = self.repo()
        failing = self.proxy.fail("PUT", tag_put_path(repo, "b"), status=500)
        proc = self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertGreaterEqual(failing.count, 1)
        self.assertEqual(len(self.proxy.requests("PUT", tag_put_path(repo, "a"))), 1,
                         "the first tag was written (and must then have been taken back)")
        self.assert_clean_failure(repo, proc)
        self.assert_stderr_mentions(proc, ":b")

    def test_second_env_tag_put_fails(self):
        layout, image = self.image()
        repo = self.repo()
        self.proxy.fail("PUT", tag_put_path(repo, "latest"), status=503)
        proc = self.push(f"oci:{layout}", self.target(repo), "--version", "1.4.2", "--env", "dev", "--tag", "latest")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assert_clean_failure(repo, proc)

    def test_second_tag_put_refused_by_the_registry(self):
        # A 4xx is not retried: e.g. a registry policy refusing that tag name.
        layout, image = self.image()
        repo = self.repo()
        self.proxy.fail("PUT", tag_put_path(repo, "b"), status=400,
                        body=b'{"errors":[{"code":"TAG_INVALID","message":"tag b is immutable"}]}')
        proc = self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b")
        self.assert_clean_failure(repo, proc)

    def test_first_tag_put_fails(self):
        layout, image = self.image()
        repo = self.repo()
        self.proxy.fail("PUT", tag_put_path(repo, "a"), status=500)
        proc = self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertEqual(self.proxy.requests("PUT", tag_put_path(repo, "b")), [],
                         "no later tag may be written after the first one failed")
        self.assert_clean_failure(repo, proc)

    def test_third_of_three_tags_fails(self):
        layout, image = self.image()
        repo = self.repo()
        self.proxy.fail("PUT", tag_put_path(repo, "c"), status=500)
        proc = self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b", "--tag", "c")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assert_clean_failure(repo, proc)

    def test_failed_verification_takes_the_tags_back(self):
        layout, image = self.image()
        repo = self.repo()
        layer = image.layers[0].digest
        # The first HEAD of the layer is the "does the registry have it?" check; the second is the
        # verification after the tags are written: pretend the blob vanished.
        self.proxy.fail("HEAD", rf"^/v2/{repo}/blobs/{layer}$", status=404, nth=2,
                        body=b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')
        proc = self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b")
        self.assert_exit(proc, tw.EXIT_VERIFY)
        self.assertEqual(len(self.proxy.requests("PUT", tag_put_path(repo))), 2, "both tags were written first")
        self.assert_clean_failure(repo, proc)

    def test_rollback_keeps_a_manifest_that_was_already_there(self):
        # The image is already in the repository under another tag: the rollback must never delete
        # the manifest (and so the other tag). Removing only the new tag needs DELETE by tag, which
        # the distribution spec makes optional and docker-registry 2.8 refuses; then the run must
        # say so and keep its journal, and `push --resume` finishes it once the registry works.
        layout, image = self.image()
        repo = self.repo()
        self.push_json(f"oci:{layout}", self.target(repo, "keep"))
        failing = self.proxy.fail("PUT", tag_put_path(repo, "b"), status=500)
        proc = self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        tags = self.registry.tags(repo)
        self.assertEqual(tags.get("keep"), image.digest, "the other tag is never touched" + tw.describe(proc))
        self.assertNotIn("b", tags)
        self.assertEqual(self.registry.manifest_digests(repo), {image.digest})
        if "a" not in tags:
            self.assertEqual(self.journals(), {}, "a complete rollback leaves no journal" + tw.describe(proc))
            return
        # The new tag could not be taken back: that must not be silent.
        self.assertEqual(tags["a"], image.digest)
        self.assertEqual(len(self.journals()), 1, "an incomplete rollback keeps its journal" + tw.describe(proc))
        self.assert_stderr_mentions(proc, "--resume")
        self.proxy.remove_rule(failing)
        resumed = self.run_tw("push", "--resume", "--plain-http", "--output", "json")
        self.assert_exit(resumed, 0)
        self.assertEqual([r["outcome"] for r in tw.parse_json(self, resumed)["resumed"]], ["finished"],
                         tw.describe(resumed))
        self.assertEqual(self.registry.tags(repo), {"keep": image.digest, "a": image.digest, "b": image.digest})
        self.assertEqual(self.journals(), {})

    def test_rollback_of_overwrites_restores_the_previous_digests(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        self.push_json(f"oci:{layout_a}", self.target(repo, "x-dev"), "--tag", "y-dev")
        manifest_b = make_image.read_blob(layout_b, image_b.digest)
        # Only the run's own write of y-dev fails (every attempt); putting image a back is let through.
        self.proxy.fail("PUT", tag_put_path(repo, "y-dev"), status=500, body_match=lambda body: body == manifest_b)
        proc = self.push(f"oci:{layout_b}", self.target(repo, "x-dev"), "--tag", "y-dev", "--allow-overwrite")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertEqual(self.registry.tags(repo), {"x-dev": image_a.digest, "y-dev": image_a.digest},
                         "an overwritten tag must point at its previous digest again" + tw.describe(proc))
        self.assertEqual(self.registry.manifest_digests(repo), {image_a.digest},
                         "the rolled-back image must not stay behind as an untagged manifest" + tw.describe(proc))
        self.assertEqual(self.journals(), {}, tw.describe(proc))

    def test_rollback_of_an_overwrite_whose_tag_never_moved(self):
        # Every PUT of y-dev fails: it still points at image a, so there is nothing to put back and
        # the rollback must be complete (no journal, no "ROLLBACK INCOMPLETE").
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        self.push_json(f"oci:{layout_a}", self.target(repo, "x-dev"), "--tag", "y-dev")
        self.proxy.fail("PUT", tag_put_path(repo, "y-dev"), status=500)
        proc = self.push(f"oci:{layout_b}", self.target(repo, "x-dev"), "--tag", "y-dev", "--allow-overwrite")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertEqual(self.registry.tags(repo), {"x-dev": image_a.digest, "y-dev": image_a.digest},
                         tw.describe(proc))
        self.assertEqual(self.journals(), {}, "the rollback was complete: no journal may remain" + tw.describe(proc))
        self.assertNotIn("ROLLBACK INCOMPLETE", proc.stderr)

    def test_rollback_of_a_mix_of_created_and_overwritten_tags(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        self.push_json(f"oci:{layout_a}", self.target(repo, "old-dev"))
        self.proxy.fail("PUT", tag_put_path(repo, "z-dev"), status=500)
        proc = self.push(f"oci:{layout_b}", self.target(repo, "old-dev"), "--tag", "new-dev", "--tag", "z-dev",
                         "--allow-overwrite")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertEqual(self.registry.tags(repo), {"old-dev": image_a.digest}, tw.describe(proc))
        self.assertEqual(self.registry.manifest_digests(repo), {image_a.digest}, tw.describe(proc))

    def test_index_rollback_removes_the_index_and_keeps_the_children(self):
        # The index goes; its child manifests stay (untagged, reported): another index in the repository
        # may share them, and deleting a shared child would leave that index incomplete.
        layout = self.tmp + "/multi"
        index = make_image.make_index(layout, layers=1, layer_size=2048, seed=self.id())
        repo = self.repo()
        self.proxy.fail("PUT", tag_put_path(repo, "b"), status=500)
        proc = self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertEqual(self.registry.tags(repo), {})
        stored = self.registry.manifest_digests(repo)
        self.assertNotIn(index.digest, stored, "the index this run wrote is removed" + tw.describe(proc))
        self.assertEqual(len(stored), 2, "both child manifests are kept" + tw.describe(proc))
        self.assertEqual(proc.stderr.count("kept on purpose"), 2, tw.describe(proc))
        self.assertEqual(self.journals(), {})

    def test_uploads_happen_once_and_before_any_manifest(self):
        # Order of work: blobs, then (under the lock) manifests; a failure does not re-upload.
        layout, image = self.image()
        repo = self.repo()
        self.proxy.fail("PUT", tag_put_path(repo, "b"), status=500)
        self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b")
        log = self.proxy.requests()
        posts = [i for i, r in enumerate(log) if r.method == "POST" and re.search(blob_upload_path(), r.path)]
        manifest_puts = [i for i, r in enumerate(log) if r.method == "PUT" and "/manifests/" in r.path]
        self.assertEqual(len(posts), len(image.blobs))
        self.assertLess(max(posts), min(manifest_puts))


if __name__ == "__main__":
    unittest.main()
