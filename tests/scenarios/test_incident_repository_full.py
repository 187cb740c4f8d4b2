"""Incident replay: "repository full".

A repository had no lifecycle policy, reached ECR's images-per-repository quota, and from then on
every push failed with a bare 403. Replayed against the ECR test bed (quota 10, as Service Quotas
reports it and as the data plane enforces it), the way a team lives through it with tagwarden:

1. the first push to the repository without a policy is refused, and the message gives the command
   that adds one; the team runs exactly that command (the real aws CLI) and the push goes through;
2. weeks of CI builds later (untagged leftovers, back-dated), the repository holds 9 of 10 images:
   the next push is refused before any manifest or tag is written, naming the count, the quota and the oldest
   images - the ones the policy is about to expire;
3. ECR's lifecycle run (the bed's preview, then BatchDeleteImage of what it expires) makes room and
   the push succeeds;
4. without the guard (a bare skopeo push at the quota), the same repository answers ECR's 403,
   which tagwarden explains when it meets it (--quota-threshold 1 bypasses the guard).
"""

import json
import os
import re
import shlex
import subprocess
import unittest

import deps
import tw
from ecr_images import GuardEcrCase, aws_program, error_text, policy, rule, start_module_bed, stop_module_bed

QUOTA = 10
_state = {}


def setUpModule():  # noqa: N802 (unittest's name)
    start_module_bed(_state, "tw-incident-full-", quota=QUOTA)


def tearDownModule():  # noqa: N802
    stop_module_bed(_state)


TEAM_POLICY = policy(
    rule(1, {"tagStatus": "tagged", "tagPatternList": ["*-prod"], "countType": "imageCountMoreThan",
             "countNumber": 5}, "keep 5 prod releases"),
    rule(2, {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
             "countNumber": 14}, "untagged after 14 days"))


class RepositoryFull(GuardEcrCase):
    state = _state

    def test_replay(self):
        repo = "team/orders"
        self.create(repo, lifecycle_policy=None)
        layout, info = self.image("release")

        # 1. No policy: refused, with the command that fixes it.
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo), "--version", "1.0.0", "--env", "prod")
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assert_nothing_written(mark, puts, proc)
        match = re.search(r"aws ecr put-lifecycle-policy [^()]*?file://\S+", proc.stderr)
        self.assertIsNotNone(match, "the refusal must give the aws command that adds a policy" + tw.describe(proc))
        suggested = shlex.split(match.group(0).rstrip(").,;"))
        policy_file = suggested[-1][len("file://"):]
        with open(os.path.join(self.tmp, policy_file), "w") as f:
            json.dump(TEAM_POLICY, f)
        self.run_aws_in_tmp(suggested[1:])
        self.assertEqual(json.loads(self.bed.client("ecr").get_lifecycle_policy(repositoryName=repo)
                                    ["lifecyclePolicyText"]), TEAM_POLICY)
        proc = self.push(layout, self.target(repo), "--version", "1.0.0", "--env", "prod")
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.images(repo), {info.manifest_digest: ["1.0.0-prod"]})

        # 2. Builds pile up: 8 untagged leftovers, 3 of them older than the policy's 14 days -> 9 of 10.
        ages = (30, 25, 20, 5, 4, 3, 2, 1)
        leftovers = [self.seed.put(repo, n, pushed_days_ago=days) for n, days in enumerate(ages)]
        self.assertEqual(len(self.images(repo)), 9)
        next_layout, next_info = self.image("next")
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(next_layout, self.target(repo), "--version", "1.1.0", "--env", "prod")
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assert_no_image_written(mark, puts, proc)
        self.assertRegex(error_text(proc), r"\b9\b")
        self.assertRegex(error_text(proc), rf"\b{QUOTA}\b")
        self.assertIn(leftovers[0].split(":", 1)[1][:12], proc.stderr, "the oldest image is listed")

        # 3. ECR's lifecycle run expires the old untagged leftovers; the push goes through.
        ecr = self.bed.client("ecr")
        ecr.start_lifecycle_policy_preview(repositoryName=repo)
        expiring = [r["imageDigest"] for r in ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"]
                    if r["action"]["type"] == "EXPIRE"]
        self.assertEqual(sorted(expiring), sorted(leftovers[:3]), "the three older than 14 days expire")
        ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": d} for d in expiring])
        self.assertEqual(len(self.images(repo)), 6)
        proc = self.push(next_layout, self.target(repo), "--version", "1.1.0", "--env", "prod")
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.images(repo)[next_info.manifest_digest], ["1.1.0-prod"])

        # 4. Without the guard: fill to the quota with a plain client, then meet ECR's 403.
        self.seed.fill(repo, QUOTA - len(self.images(repo)), untagged=QUOTA, first=100)
        self.assertEqual(len(self.images(repo)), QUOTA)
        bare_layout, _bare = self.image("bare")
        bare = self.skopeo_push(bare_layout, repo, "plain-push")
        self.assertNotEqual(bare.returncode, 0)
        self.assertIn("maximum allowed number of images", bare.stderr, "the bed answers as ECR does")
        last_layout, last_info = self.image("last")
        proc = self.push(last_layout, self.target(repo), "--version", "1.2.0", "--env", "prod",
                         "--quota-threshold", "1", "--quota", str(QUOTA + 1))
        self.assertNotIn(proc.returncode, (0, tw.EXIT_AUTH), "a full repository is not an auth problem"
                         + tw.describe(proc))
        self.assertIn("quota", proc.stderr.lower())
        self.assertNotIn(last_info.manifest_digest, self.images(repo), "nothing is left behind")
        self.assertNoBedErrors()

    def run_aws_in_tmp(self, args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.bed.env())
        env["AWS_CONFIG_FILE"] = os.path.join(self.tmp, "no-aws-config")
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(self.tmp, "no-aws-credentials")
        proc = subprocess.run([aws_program(), "--endpoint-url", self.bed.control_url, *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=self.tmp,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, f"aws {' '.join(args)} failed:\n{proc.stderr}")

    def skopeo_push(self, layout, repo, tag):
        skopeo = deps.find_program("skopeo")
        return subprocess.run([skopeo, "copy", "--quiet", "--dest-tls-verify=false",
                               "--dest-creds", f"AWS:{self.bed.login_password()}", f"oci:{layout}:latest",
                               f"docker://127.0.0.1:{self.bed.data_port}/{repo}:{tag}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)


if __name__ == "__main__":
    unittest.main()
