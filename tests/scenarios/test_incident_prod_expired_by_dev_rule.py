"""Incident replay: "prod image expired by a dev rule".

The team's tags were ``dev-N`` and ``prod-N`` (tag_template "{env}-{version}") and their policy kept the
last 2 ``dev-`` images. Promoting build 1 gave its image the tag ``prod-1`` next to ``dev-1``; a rule
judges the whole image, across all its tags, so the ``dev-`` count rule expired the production image.

Replayed against the ECR test bed, whose lifecycle preview stands in for ECR's lifecycle run:

1. without tagwarden (the prod tag written by a plain manifest PUT) ECR's preview expires the image
   that carries prod-1: the harm is real;
2. with tagwarden the same promotion is refused (exit 3) naming the dev- rule, and nothing is written;
3. ``tagwarden policy lint`` says the same about the policy, and passes the fixed one (a prod- rule
   first); with it the promotion goes through and ECR's preview keeps prod-1 while it still expires
   old dev builds.
"""

import json
import os
import re
import time
import unittest

import tw
from ecr_images import (DAY, DEV_RULE_DESCRIPTION, GuardEcrCase, dev_count_rule, policy, rule, start_module_bed,
                        stop_module_bed)

_state = {}


def setUpModule():  # noqa: N802 (unittest's name)
    start_module_bed(_state, "tw-incident-devrule-")


def tearDownModule():  # noqa: N802
    stop_module_bed(_state)


TEAM_POLICY = policy(dev_count_rule(1))
FIXED_POLICY = policy(
    rule(1, {"tagStatus": "tagged", "tagPrefixList": ["prod-"], "countType": "imageCountMoreThan",
             "countNumber": 10}, "keep 10 prod releases"),
    dev_count_rule(2),
    rule(3, {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
         "untagged after a day"))


class ProdExpiredByDevRule(GuardEcrCase):
    state = _state

    def setUp(self):
        super().setUp()
        self.layouts = {}

    def dev_builds(self, repo, cwd, count):
        digests = {}
        for n in range(1, count + 1):
            if n not in self.layouts:
                self.layouts[n] = self.image(f"build-{n}")
            layout, info = self.layouts[n]
            proc = self.push(layout, self.target(repo), "--version", str(n), "--env", "dev", cwd=cwd)
            tw.assert_exit(self, proc, 0)
            digests[n] = info.manifest_digest
            self.bed.set_pushed_at(repo, info.manifest_digest, time.time() - (20 - n) * DAY)
        return digests

    def expiring_tags(self, repo):
        ecr = self.bed.client("ecr")
        ecr.start_lifecycle_policy_preview(repositoryName=repo)
        results = ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"]
        return sorted(tuple(sorted(r.get("imageTags") or [])) for r in results if r["action"]["type"] == "EXPIRE")

    def test_replay(self):
        cwd = self.config_dir('tag_template: "{env}-{version}"\n')

        # 1. Without tagwarden: prod-1 written next to dev-1; ECR expires the production image.
        without = self.create("incident/without-tagwarden", lifecycle_policy=TEAM_POLICY)
        builds = self.dev_builds(without, cwd, 3)
        manifest = self.bed.client("ecr").batch_get_image(
            repositoryName=without, imageIds=[{"imageTag": "dev-1"}])["images"][0]["imageManifest"]
        self.bed.client("ecr").put_image(repositoryName=without, imageManifest=manifest, imageTag="prod-1",
                                         imageDigest=builds[1])
        self.assertEqual(self.images(without)[builds[1]], ["dev-1", "prod-1"])
        self.assertEqual(self.expiring_tags(without), [("dev-1", "prod-1")],
                         "the incident: ECR's lifecycle run expires the image tagged prod-1")

        # 2. With tagwarden: the promotion is refused, naming the dev- rule.
        repo = self.create("incident/with-tagwarden", lifecycle_policy=TEAM_POLICY)
        builds = self.dev_builds(repo, cwd, 3)
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.run_tw("promote", self.target(repo, "1"), "--from", "dev", "--to", "prod", cwd=cwd)
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assert_nothing_written(mark, puts, proc)
        self.assertIn(builds[1].split(":", 1)[1][:12], proc.stderr)
        without_tags = re.sub(r"\b(dev|prod)-\d+\b", "<tag>", proc.stderr)
        self.assertTrue("dev-" in without_tags or DEV_RULE_DESCRIPTION in without_tags,
                        "the refusal must name the dev- rule" + tw.describe(proc))
        self.assertEqual(self.images(repo)[builds[1]], ["dev-1"])

        # 3. lint agrees; the fixed policy lints clean, the promotion passes, ECR keeps prod-1.
        for name, document in (("team.json", TEAM_POLICY), ("fixed.json", FIXED_POLICY)):
            with open(os.path.join(cwd, name), "w") as f:
                json.dump(document, f)
        lint = tw.run_tagwarden("policy", "lint", "--policy", "team.json", cwd=cwd, env={})
        tw.assert_exit(self, lint, tw.EXIT_GUARD)
        self.assertIn("prod", lint.stdout + lint.stderr)
        lint = tw.run_tagwarden("policy", "lint", "--policy", "fixed.json", cwd=cwd, env={})
        tw.assert_exit(self, lint, 0)

        self.bed.put_lifecycle_policy(repo, FIXED_POLICY)
        proc = self.run_tw("promote", self.target(repo, "1"), "--from", "dev", "--to", "prod", cwd=cwd)
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.images(repo)[builds[1]], ["dev-1", "prod-1"])
        later_layout, _later = self.image("build-4")
        tw.assert_exit(self, self.push(later_layout, self.target(repo), "--version", "4", "--env", "dev", cwd=cwd), 0)
        self.assertEqual(self.expiring_tags(repo), [("dev-2",)],
                         "the fixed policy keeps prod-1 and still keeps only the last 2 other dev builds")
        self.assertNoBedErrors()


if __name__ == "__main__":
    unittest.main()
