"""Tags and the guards' cheap facts are re-read under the locks, right before the writes (issue 9).

- A tag written by another tool (a plain PUT to the registry: no tagwarden lock) while a run is
  busy is a conflict: exit 4, and the other tool's tag is left as it is. Today tags are read once
  under the locks, so a tag created after that read (here: while the run's first tag PUT is in
  flight) is silently moved and reported `created`.
- The quota: tagwarden.yaml declares a quota for the repository; a push is held at a blob upload
  while the test fills the repository to the quota by other means; the facts are re-read under
  the tag locks before the first manifest write, so the push is refused (exit 3) and stores no
  manifest.
"""

import unittest

import tw
from fault_proxy import blob_upload_path, tag_put_path
from tagsafety import TagSafetyTestCase, mentions_digest, setUpModule  # noqa: F401

FIRST = "1.0-dev"
SECOND = "latest"

SAFE_POLICY_YAML = """\
      rules:
        - rulePriority: 1
          description: untagged after 14 days
          selection: {tagStatus: untagged, countType: sinceImagePushed, countUnit: days, countNumber: 14}
          action: {type: expire}
"""


class TagWrittenByAnotherTool(TagSafetyTestCase):

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)
        self.repo_name = self.repo()
        self.target = f"{self.proxy.host}/{self.repo_name}"

    def other_image_in_repo(self):
        """Image B: blobs and manifest in the repository by digest (pushed straight to the registry),
        so another tool can tag it with one PUT."""
        layout_b, image_b = self.image("b")
        self.push_json(f"oci:{layout_b}", f"{self.registry.host}/{self.repo_name}")
        self.assertEqual(self.registry.tags(self.repo_name), {})
        return image_b

    def test_tag_created_while_the_run_uploads(self):
        layout_a, image_a = self.image("a", layers=2)
        image_b = self.other_image_in_repo()
        upload = self.proxy.hold("POST", blob_upload_path(self.repo_name), timeout=60)
        proc = self.spawn_push(f"oci:{layout_a}", self.target, "--version", "1.0", "--env", "dev", "--output", "json")
        if not upload.reached.wait(60):
            self.fail("the push never started a blob upload" + tw.describe(self.finish(proc, 5)))
        self.put_image_manifest(self.registry, self.repo_name, FIRST, image_b)
        upload.release()
        result = self.finish(proc)
        self.assert_exit(result, tw.EXIT_TAG_CONFLICT)
        self.assertTrue(mentions_digest(result.stderr, image_b.digest), tw.describe(result))
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image_b.digest},
                         "the other tool's tag is left as it is" + tw.describe(result))
        self.assertNotIn(image_a.digest, self.registry.manifest_digests(self.repo_name), tw.describe(result))

    def test_tag_created_while_the_run_writes_its_first_tag(self):
        layout_a, image_a = self.image("a")
        image_b = self.other_image_in_repo()
        first = self.proxy.hold("PUT", tag_put_path(self.repo_name, FIRST), timeout=60)
        proc = self.spawn_push(f"oci:{layout_a}", self.target, "--version", "1.0", "--env", "dev", "--tag", SECOND,
                               "--output", "json")
        if not first.reached.wait(60):
            self.fail("the push never reached its first tag" + tw.describe(self.finish(proc, 5)))
        # The run holds the locks and has read both tags as absent; now another tool writes the second.
        self.put_image_manifest(self.registry, self.repo_name, SECOND, image_b)
        first.release()
        result = self.finish(proc)
        self.assert_exit(result, tw.EXIT_TAG_CONFLICT)
        self.assertTrue(mentions_digest(result.stderr, image_b.digest),
                        "the conflict names the digest the other tool wrote" + tw.describe(result))
        tags = self.registry.tags(self.repo_name)
        self.assertEqual(tags.get(SECOND), image_b.digest, "the other tool's tag is not moved" + tw.describe(result))
        self.assertEqual(tags, {SECOND: image_b.digest},
                         "the run's own first tag is undone (nothing else points at its manifest)" + tw.describe(result))
        self.assertNotIn(image_a.digest, self.registry.manifest_digests(self.repo_name), tw.describe(result))
        self.assertEqual(self.journals(), {})
        self.assertEqual(self.held_locks(), {})


class QuotaReadAgainUnderTheLock(TagSafetyTestCase):

    def test_repository_filled_to_the_quota_while_the_push_uploads(self):
        registry = self.start_registry()
        proxy = self.start_proxy(registry)
        repo = self.repo()
        target = f"{proxy.host}/{repo}"
        cwd = self.workdir(f'repositories:\n  "{target}":\n    quota: 4\n    lifecycle_policy:\n{SAFE_POLICY_YAML}')
        layout_a, image_a = self.image("a", layers=2)
        seeds = [self.image(f"seed{n}") for n in range(1, 5)]

        upload = proxy.hold("POST", blob_upload_path(repo), timeout=60)
        proc = self.spawn_push(f"oci:{layout_a}", target, "--version", "1.0", "--env", "dev", "--output", "json",
                               cwd=cwd, env={"TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY": None})
        if not upload.reached.wait(60):
            self.fail("the push never started a blob upload (did a guard refuse it?)"
                      + tw.describe(self.finish(proc, 5)))
        # Meanwhile other pipelines fill the repository to its quota (4 images).
        for n, (layout_seed, _) in enumerate(seeds, 1):
            filled = self.push(f"oci:{layout_seed}", f"{registry.host}/{repo}", "--tag", f"t{n}")
            self.assert_exit(filled, 0)
        self.assertEqual(len(registry.tags(repo)), 4)
        upload.release()

        result = self.finish(proc)
        self.assert_exit(result, tw.EXIT_GUARD)
        self.assertIn("quota", result.stderr.lower(), tw.describe(result))
        self.assertEqual(registry.tags(repo), {f"t{n}": seeds[n - 1][1].digest for n in range(1, 5)},
                         "the refused push wrote no tag" + tw.describe(result))
        self.assertEqual(registry.manifest_digests(repo), {image.digest for _, image in seeds},
                         "the refused push stored no manifest" + tw.describe(result))
        self.assertEqual(proxy.requests("PUT", tag_put_path(repo)), [], "not one manifest PUT from the push")
        self.assertEqual(self.journals(), {})


if __name__ == "__main__":
    unittest.main()
