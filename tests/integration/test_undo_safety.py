"""Undo only undoes this run's own writes (issue 9).

A run that fails half-way (its second tag PUT answers 5xx until the retries are exhausted) or a
`push --resume` that cannot finish takes back what it wrote, and nothing else:

- while the push waits on its failing second tag, a promotion tags the same digest `1.0-prod`:
  the undo must not `DELETE …/manifests/<digest>` (that removes every tag on the digest, prod
  included); the prod tag and the manifest survive, and the push names what it left and why;
- the same with an index: while it waits, another pipeline pushes an index that shares one child
  manifest with it; the undo must not delete child manifests, so the other index stays complete;
- `push --resume` of a journal whose tags were then moved by others (SIGKILLed after its first
  tag, as in test_tag_resume.py): an index built on top of the killed run's image now holds both
  tags; resume removes nothing, the other index still verifies;
- `push --resume` of a run that overwrote a tag (--allow-overwrite) after someone moved that tag
  again: the undo restores the old digest only while the tag still points at what this run wrote.

docker-registry 2.8 refuses DELETE by tag, so a created tag whose manifest another tag also points
at cannot be taken back: it is left, and reported ("left …") with the reason.
"""

import unittest

import make_image
import tw
from fault_proxy import tag_put_path
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401

FIRST = "1.0-dev"
SECOND = "latest"


def left_lines(proc):
    """stderr lines reporting what the undo left behind."""
    return [line for line in proc.stderr.splitlines() if "left" in line.lower()]


class FailedSecondTag(TagSafetyTestCase):
    """A push whose second tag fails for good, while someone else tags the same manifest."""

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)
        self.repo_name = self.repo()
        self.target = f"{self.proxy.host}/{self.repo_name}"

    def start_failing_push(self, layout):
        """Starts the push through the proxy; its PUT of the second tag hangs until released, then 500s."""
        failing = self.hold_then_fail(self.proxy, "PUT", tag_put_path(self.repo_name, SECOND), status=500)
        proc = self.spawn_push(f"oci:{layout}", self.target, "--version", "1.0", "--env", "dev", "--tag", SECOND)
        if not failing.reached.wait(60):
            self.fail("the push never reached its second tag" + tw.describe(self.finish(proc, 5)))
        return failing, proc

    def test_a_promotion_of_the_same_digest_survives_the_undo(self):
        layout, image = self.image("a")
        failing, proc = self.start_failing_push(layout)
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image.digest})

        # The promotion goes straight to the registry (another host name, its own tag and lock).
        promoted = self.run_tw("promote", f"{self.registry.host}/{self.repo_name}:1.0", "--from", "dev", "--to", "prod",
                               "--plain-http", "--output", "json")
        self.assert_exit(promoted, 0)
        self.assertEqual(tw.parse_json(self, promoted)["digest"], image.digest)
        self.assertEqual(self.registry.tags(self.repo_name)["1.0-prod"], image.digest)

        failing.release()
        result = self.finish(proc)
        self.assert_exit(result, tw.EXIT_NETWORK)  # the original failure: a 5xx after the retries
        self.assertGreaterEqual(failing.count, 1)

        tags = self.registry.tags(self.repo_name)
        self.assertEqual(tags.get("1.0-prod"), image.digest,
                         "the promotion's prod tag must survive the push's undo" + tw.describe(result))
        self.assertIn(image.digest, self.registry.manifest_digests(self.repo_name),
                      "the manifest prod points at must not be deleted" + tw.describe(result))
        self.assertNotIn(SECOND, tags, tw.describe(result))
        verified = self.run_tw("verify", f"{self.registry.host}/{self.repo_name}:1.0-prod", "--plain-http")
        self.assert_exit(verified, 0)
        if FIRST in tags:
            # docker-registry 2.8 refuses DELETE by tag and prod shares the manifest: the push's own
            # first tag cannot be taken back without taking prod with it, so it is left and reported.
            self.assertEqual(tags[FIRST], image.digest)
            self.assertTrue(any(FIRST in line for line in left_lines(result)),
                            f"the undo must report that it left {FIRST} (and why)" + tw.describe(result))
        self.assertEqual(self.held_locks(), {})

    def test_another_index_sharing_a_child_stays_complete(self):
        layout_i = f"{self.tmp}/images/index-i"
        layout_j = f"{self.tmp}/images/index-j"
        seed = f"{self.id()}-shared"
        index_i = make_image.make_index(layout_i, platforms=(("linux", "amd64"), ("linux", "arm64")),
                                        layers=1, layer_size=2048, seed=seed)
        index_j = make_image.make_index(layout_j, platforms=(("linux", "amd64"), ("linux", "s390x")),
                                        layers=1, layer_size=2048, seed=seed)
        shared = index_i.children[0].digest
        self.assertEqual(shared, index_j.children[0].digest, "the two indexes share their amd64 manifest")
        self.assertNotEqual(index_i.digest, index_j.digest)

        failing, proc = self.start_failing_push(layout_i)
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: index_i.digest})

        # Another pipeline pushes index J (straight to the registry) while the first push waits.
        other = self.push(f"oci:{layout_j}", f"{self.registry.host}/{self.repo_name}:other", "--output", "json")
        self.assert_exit(other, 0)
        self.assertEqual(self.registry.tags(self.repo_name)["other"], index_j.digest)

        failing.release()
        result = self.finish(proc)
        self.assert_exit(result, tw.EXIT_NETWORK)

        tags = self.registry.tags(self.repo_name)
        self.assertEqual(tags.get("other"), index_j.digest, "the other pipeline's tag survives" + tw.describe(result))
        manifests = self.registry.manifest_digests(self.repo_name)
        for child in index_j.manifest_digests:
            self.assertIn(child, manifests,
                          f"child {child} of the other index must not be deleted" + tw.describe(result))
        verified = self.run_tw("verify", f"{self.registry.host}/{self.repo_name}:other", "--plain-http")
        self.assert_exit(verified, 0)
        self.assertNotIn(SECOND, tags)
        if FIRST in tags:
            self.assertTrue(any(FIRST in line for line in left_lines(result)),
                            f"a tag of the failed run that stays ({FIRST}) must be reported" + tw.describe(result))
        # Child manifests are kept, never deleted; the ones only the failed run wrote are reported.
        self.assertTrue(left_lines(result), "the undo must report the child manifests it kept" + tw.describe(result))


class ResumeAfterOthersMovedTheTags(TagSafetyTestCase):
    """`push --resume` of a killed run whose tags others have moved since (file:// lock: flock is freed
    at once when the run dies)."""

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)
        self.repo_name = self.repo()
        self.target = f"{self.proxy.host}/{self.repo_name}"

    def kill_at_second_tag(self, layout, first, second, *args):
        hold = self.proxy.hold("PUT", tag_put_path(self.repo_name, second), timeout=60)
        proc = self.spawn_push(f"oci:{layout}", f"{self.target}:{first}", "--tag", second, *args)
        if not hold.reached.wait(60):
            self.fail("the push never reached its second tag" + tw.describe(self.finish(proc, 5)))
        killed = self.kill(proc)
        hold.release()
        self.wait_for(lambda: any("client gone" in (r.rule or "") for r in self.proxy.requests("PUT")), 10,
                      "the proxy to drop the dead client's request")
        journals = self.journals()
        self.assertEqual(len(journals), 1, f"the killed run's journal must be kept: {journals}")
        return killed, next(iter(journals.values()))

    def resume(self):
        proc = self.run_tw("push", "--resume", self.target, "--plain-http", "--lock-timeout", "30s", "--output", "json")
        self.assert_exit(proc, 0)
        return proc, tw.parse_json(self, proc)

    def test_an_index_built_on_the_killed_runs_image_keeps_it(self):
        layout_a, image_a = self.image("a")
        self.kill_at_second_tag(layout_a, FIRST, SECOND)
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image_a.digest})

        # Another tool (say `docker buildx imagetools create`) makes an index of the killed run's
        # image and writes it under both tags, without tagwarden's locks.
        index = make_image._dump_manifest({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [image_a.manifest.as_json(platform={"os": "linux", "architecture": "amd64"})],
        })
        index_type = "application/vnd.oci.image.index.v1+json"
        index_digest = self.put_manifest(self.registry, self.repo_name, FIRST, index, index_type)
        self.put_manifest(self.registry, self.repo_name, SECOND, index, index_type)
        before = self.registry.tags(self.repo_name)
        self.assertEqual(before, {FIRST: index_digest, SECOND: index_digest})

        proc, report = self.resume()
        resumed = report["resumed"]
        self.assertEqual(len(resumed), 1, resumed)
        self.assertEqual(resumed[0]["outcome"], "undone", resumed)
        self.assertEqual(self.registry.tags(self.repo_name), before,
                         "resume must not touch tags it no longer owns" + tw.describe(proc))
        self.assertIn(image_a.digest, self.registry.manifest_digests(self.repo_name),
                      "the killed run's manifest is a child of the other index: it must stay" + tw.describe(proc))
        verified = self.run_tw("verify", f"{self.registry.host}/{self.repo_name}:{SECOND}", "--plain-http")
        self.assert_exit(verified, 0)
        self.assertEqual(self.journals(), {})

    def test_a_restored_overwrite_only_if_the_tag_still_points_at_this_runs_write(self):
        layout_p, image_p = self.image("previous")
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        self.push_json(f"oci:{layout_p}", f"{self.target}:edge")
        # B's blobs and manifest are in the repository, by digest only (no tag).
        self.push_json(f"oci:{layout_b}", self.target)

        # The killed run moves edge from P to A (--allow-overwrite), then dies before its second tag.
        self.kill_at_second_tag(layout_a, "edge", "next", "--allow-overwrite")
        self.assertEqual(self.registry.tags(self.repo_name), {"edge": image_a.digest})

        # Someone moves edge again, to B, without tagwarden.
        self.put_image_manifest(self.registry, self.repo_name, "edge", image_b)
        self.assertEqual(self.registry.tags(self.repo_name), {"edge": image_b.digest})

        proc, report = self.resume()
        resumed = report["resumed"]
        self.assertEqual(len(resumed), 1, resumed)
        self.assertEqual(resumed[0]["outcome"], "undone", resumed)
        self.assertEqual(self.registry.tags(self.repo_name), {"edge": image_b.digest},
                         "edge no longer points at what the killed run wrote: it is not restored to P"
                         + tw.describe(proc))
        manifests = self.registry.manifest_digests(self.repo_name)
        self.assertIn(image_b.digest, manifests)
        self.assertIn(image_p.digest, manifests)
        self.assertEqual(self.journals(), {})


if __name__ == "__main__":
    unittest.main()
