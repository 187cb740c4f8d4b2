"""Incident replay: "rollback target deleted".

A ``sinceImagePushed`` 7-day rule expired the image CloudFormation needed to roll back to: the
previous prod releases were older than a week.

Replayed against the ECR test bed, whose lifecycle preview stands in for ECR's lifecycle run:

1. the repository holds prod releases 1.0.0 (20 days old) and 1.1.0 (10 days old) and a dev build;
   ECR's preview of the team's policy expires both releases: the harm is real;
2. tagwarden refuses the next release (1.2.0-prod) because the policy expires the previous prod
   releases, its rollback targets (the last ``keep_releases`` of tagwarden.yaml), naming them; no
   manifest and no tag is written;
3. with the fixed policy (a prod count rule first, the age rule for dev builds only) the release goes
   through and ECR's preview keeps every prod release while it still expires the old dev build;
4. ``--protect`` (the digests ECS runs) is honoured on top: with a policy that keeps only 2 prod
   releases and ``keep_releases: 1``, the older releases may go - until one of them is listed as running.
"""

import os
import unittest

import tw
from ecr_images import GuardEcrCase, policy, rule, start_module_bed, stop_module_bed

_state = {}


def setUpModule():  # noqa: N802 (unittest's name)
    start_module_bed(_state, "tw-incident-rollback-")


def tearDownModule():  # noqa: N802
    stop_module_bed(_state)


TEAM_POLICY = policy(rule(1, {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days",
                              "countNumber": 7}, "nothing older than a week"))


def fixed_policy(prod_releases_kept):
    return policy(
        rule(1, {"tagStatus": "tagged", "tagPatternList": ["*-prod"], "countType": "imageCountMoreThan",
                 "countNumber": prod_releases_kept}, f"keep {prod_releases_kept} prod releases"),
        rule(2, {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
             "everything else for a week"))


class RollbackTargetDeleted(GuardEcrCase):
    state = _state

    def expiring_tags(self, repo):
        ecr = self.bed.client("ecr")
        ecr.start_lifecycle_policy_preview(repositoryName=repo)
        results = ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"]
        return sorted(t for r in results if r["action"]["type"] == "EXPIRE" for t in r.get("imageTags") or ["<untagged>"])

    def test_replay(self):
        cwd = self.config_dir("protected_environments: [prod]\nkeep_releases: 10\nprotection_window: 30d\n")
        repo = self.create("incident/rollback", lifecycle_policy=TEAM_POLICY)
        releases = {
            "1.0.0-prod": self.seed.put(repo, 1, tag="1.0.0-prod", pushed_days_ago=20),
            "1.1.0-prod": self.seed.put(repo, 2, tag="1.1.0-prod", pushed_days_ago=10),
            "1.1.1-dev": self.seed.put(repo, 3, tag="1.1.1-dev", pushed_days_ago=9),
        }

        # 1. The harm: ECR's lifecycle run would expire both previous releases.
        self.assertEqual(self.expiring_tags(repo), ["1.0.0-prod", "1.1.0-prod", "1.1.1-dev"])

        # 2. tagwarden refuses the next release, naming the rollback targets.
        layout, info = self.image("release-1.2.0")
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo), "--version", "1.2.0", "--env", "prod", cwd=cwd)
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assert_no_image_written(mark, puts, proc)
        for tag in ("1.0.0-prod", "1.1.0-prod"):
            self.assertIn(tag, proc.stderr)
            self.assertIn(releases[tag].split(":", 1)[1][:12], proc.stderr)
        self.assertIn("rollback", proc.stderr.lower())
        self.assertNotIn(info.manifest_digest, self.images(repo))

        # 3. The fixed policy: the release goes through; ECR keeps every prod release.
        self.bed.put_lifecycle_policy(repo, fixed_policy(10))
        proc = self.push(layout, self.target(repo), "--version", "1.2.0", "--env", "prod", "--output", "json", cwd=cwd)
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.guards(proc)["survival"][0], "passed")
        self.assertEqual(self.images(repo)[info.manifest_digest], ["1.2.0-prod"])
        self.assertEqual(self.expiring_tags(repo), ["1.1.1-dev"], "only the old dev build goes")

        # 4. Keeping only 2 prod releases: 1.0.0 and 1.1.0 would go, which is fine until ECS runs one.
        self.bed.put_lifecycle_policy(repo, fixed_policy(2))
        next_layout, _next = self.image("release-1.2.1")
        dry = self.push(next_layout, self.target(repo), "--version", "1.2.1", "--env", "prod", "--dry-run",
                        cwd=self.config_dir("keep_releases: 1\n"))
        tw.assert_exit(self, dry, 0)
        running = os.path.join(self.tmp, "ecs-running.txt")
        with open(running, "w") as f:
            f.write(f"{releases['1.1.0-prod']}\n")
        proc = self.push(next_layout, self.target(repo), "--version", "1.2.1", "--env", "prod", "--protect", running,
                         cwd=self.config_dir("keep_releases: 1\n"))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertIn(releases["1.1.0-prod"].split(":", 1)[1][:12], proc.stderr)
        self.assertIn("--protect", proc.stderr)
        self.assertNoBedErrors()


if __name__ == "__main__":
    unittest.main()
