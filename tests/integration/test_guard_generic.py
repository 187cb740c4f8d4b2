"""The guards of push and promote against a plain docker-registry (not ECR).

A registry that is not ECR cannot say what lifecycle policy or image quota a repository has, so they
come from ``repositories:`` in tagwarden.yaml (keyed by REGISTRY/REPO; the policy as a file or an
inline mapping) and the image count from the tag list:

- no entry for the repository -> refused, exit 3, naming tagwarden.yaml, before any upload;
- a declared policy (file or inline) and a quota with room -> the push passes and reports the guards;
- at 90% of the declared quota (counted from the tag list, under the tag locks beside the upload) -> exit 3
  with the count and the quota, no manifest and no tag written; with ``guards_first: true`` before any upload;
- an invalid declared policy -> exit 3 with the validation message;
- TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY=true, ``allow_no_lifecycle_policy: true`` and
  --allow-no-lifecycle-policy override the missing policy, with a warning.
"""

import json
import os
import unittest

import deps
import tw
from ecr_images import error_text
from fixtures import RegistryTestCase

SAFE_POLICY = {"rules": [
    {"rulePriority": 1, "description": "keep 10 prod releases",
     "selection": {"tagStatus": "tagged", "tagPatternList": ["*-prod"], "countType": "imageCountMoreThan",
                   "countNumber": 10}, "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "untagged after 14 days",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                   "countNumber": 14}, "action": {"type": "expire"}},
]}

SAFE_POLICY_YAML = """\
      rules:
        - rulePriority: 1
          description: keep 10 prod releases
          selection: {tagStatus: tagged, tagPatternList: ["*-prod"], countType: imageCountMoreThan, countNumber: 10}
          action: {type: expire}
        - rulePriority: 2
          description: untagged after 14 days
          selection: {tagStatus: untagged, countType: sinceImagePushed, countUnit: days, countNumber: 14}
          action: {type: expire}
"""


def setUpModule():  # noqa: N802 (unittest's name)
    deps.require("docker-registry")
    deps.tagwarden_bin()


class GenericGuard(RegistryTestCase):
    registry_mode = "plain"

    def setUp(self):
        super().setUp()
        self.cwd = os.path.join(self.tmp, "cwd")
        os.makedirs(self.cwd)

    # -- configuration and runs --------------------------------------------------------------------

    def write_config(self, text):
        with open(os.path.join(self.cwd, "tagwarden.yaml"), "w") as f:
            f.write(text)

    def write_policy(self, name, document):
        path = os.path.join(self.cwd, name)
        with open(path, "w") as f:
            f.write(document if isinstance(document, str) else json.dumps(document, indent=2))
        return path

    def env(self, **extra):
        env = {"TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY": None,  # clean_env's default is what is under test
               "TAGWARDEN_STATE_DIR": os.path.join(self.tmp, "state")}
        env.update(extra)
        return env

    def run_tw(self, *args, env=None):
        return tw.run_tagwarden(*args, "--lock", f"file://{self.tmp}/locks", env=env if env is not None else self.env(),
                                cwd=self.cwd)

    def push(self, layout, target, *args, env=None):
        return self.run_tw("push", f"oci:{layout}", target, *args, env=env)

    def seed_images(self, repo, count, aliases=0):
        """``count`` distinct images tagged t1..tN, pushed with the guard overridden; the first ``aliases``
        of them also tagged a1..aM (a promotion's second tag: more tags, not more images)."""
        infos = []
        for n in range(1, count + 1):
            layout, info = self.image(f"seed{n}", layers=1, layer_size=1024)
            tags = ["--tag", f"t{n}"] + (["--tag", f"a{n}"] if n <= aliases else [])
            proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo), *tags, "--lock",
                                    f"file://{self.tmp}/locks",
                                    env={"TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY": "true",
                                         "TAGWARDEN_STATE_DIR": os.path.join(self.tmp, "state")})
            tw.assert_exit(self, proc, 0)
            infos.append(info)
        self.assertEqual(len(self.registry.tags(repo)), count + aliases)
        return infos

    def mark(self):
        return len(self.registry.requests())

    def assert_nothing_written(self, repo, mark, proc):
        self.assertEqual(self.registry.upload_posts(repo, since=mark), 0,
                         "a refused push must not start a blob upload" + tw.describe(proc))
        self.assertEqual(self.registry.manifest_puts(repo, since=mark), 0,
                         "a refused push must not write a manifest" + tw.describe(proc))
        writes = [r for r in self.registry.requests()[mark:] if r.method in ("POST", "PUT", "PATCH", "DELETE")]
        self.assertEqual(writes, [], "no write of any kind" + tw.describe(proc))

    def guards(self, proc):
        report = tw.parse_json(self, proc)
        self.assertIn("guards", report, "--output json must report the guards" + tw.describe(proc))
        return {g["check"]: (g["status"], g["message"]) for g in report["guards"]}

    def declare(self, repo, policy_file=None, inline=SAFE_POLICY_YAML, quota=None, extra=""):
        """tagwarden.yaml with a repositories: entry for HOST/REPO: lifecycle_policy is ``policy_file``
        (a path relative to tagwarden.yaml) or else the ``inline`` mapping (YAML text)."""
        lines = [extra.rstrip("\n")] if extra else []
        lines.append("repositories:")
        lines.append(f'  "{self.host}/{repo}":')
        if policy_file is not None:
            lines.append(f"    lifecycle_policy: {policy_file}")
        elif inline is not None:
            lines.append("    lifecycle_policy:\n" + inline.rstrip("\n"))
        if quota is not None:
            lines.append(f"    quota: {quota}")
        self.write_config("\n".join(lines) + "\n")

    # -- no declared policy --------------------------------------------------------------------------

    def test_no_repositories_entry_refused_naming_tagwarden_yaml(self):
        repo = self.repo()
        layout, _info = self.image()
        mark = self.mark()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertIn("tagwarden.yaml", proc.stderr)
        self.assertIn(f"{self.host}/{repo}", proc.stderr, "the refusal names the repository")
        self.assertIn("repositories", proc.stderr, "and the setting that declares its policy")
        self.assertIn("--allow-no-lifecycle-policy", proc.stderr)
        self.assertEqual(proc.stdout, "")
        self.assert_nothing_written(repo, mark, proc)
        self.assert_no_manifest(repo, proc)

    def test_an_entry_for_another_repository_does_not_count(self):
        repo = self.repo()
        self.write_config(f'repositories:\n  "{self.host}/{repo}-other":\n    lifecycle_policy: policy.json\n')
        self.write_policy("policy.json", SAFE_POLICY)
        layout, _info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertIn("tagwarden.yaml", proc.stderr)
        self.assert_no_manifest(repo, proc)

    def test_promote_without_a_declared_policy_is_refused(self):
        repo = self.repo()
        layout, info = self.image()
        pushed = self.push(layout, self.target(repo), "--version", "1.0.0", "--env", "dev",
                           env=self.env(TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY="true"))
        tw.assert_exit(self, pushed, 0)
        mark = self.mark()
        proc = self.run_tw("promote", self.target(repo, "1.0.0"), "--from", "dev", "--to", "prod")
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertIn("tagwarden.yaml", proc.stderr)
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": info.manifest_digest})
        self.assert_nothing_written(repo, mark, proc)

    # -- declared policies --------------------------------------------------------------------------

    def test_declared_policy_file_and_quota_pass(self):
        repo = self.repo()
        os.makedirs(os.path.join(self.cwd, "policies"))
        self.write_policy("policies/app.json", SAFE_POLICY)
        self.declare(repo, policy_file="policies/app.json", quota=10)
        layout, info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--output", "json")
        tw.assert_exit(self, proc, 0)
        guards = self.guards(proc)
        self.assertEqual(guards["lifecycle-policy"][0], "passed")
        self.assertIn("tagwarden.yaml", guards["lifecycle-policy"][1], "the finding says where the policy came from")
        self.assertEqual(guards["quota"][0], "passed")
        self.assertRegex(guards["quota"][1], r"\b0\b.*\b10\b", "count (0) and declared quota (10)")
        self.assertIn("tag list", guards["quota"][1], "the count comes from the tag list")
        if "survival" in guards:
            self.assertEqual(guards["survival"][0], "skipped", "push times are unknown on a plain registry")
        self.assertEqual(self.registry.tags(repo), {"1.0.0": info.manifest_digest})

    def test_declared_inline_policy_passes(self):
        repo = self.repo()
        self.declare(repo, quota=10)
        layout, info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--output", "json")
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.guards(proc)["lifecycle-policy"][0], "passed")
        self.assertEqual(self.registry.tags(repo), {"1.0.0": info.manifest_digest})

    def test_invalid_declared_policy_is_refused_with_the_validation_message(self):
        repo = self.repo()
        duplicate = json.loads(json.dumps(SAFE_POLICY))
        duplicate["rules"][1]["rulePriority"] = 1
        self.write_policy("policy.json", duplicate)
        self.declare(repo, policy_file="policy.json", quota=10)
        layout, _info = self.image()
        mark = self.mark()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertIn("invalid", proc.stderr.lower())
        self.assertIn("rulePriority", proc.stderr, "the validation message names the field")
        self.assertIn("unique", proc.stderr, "and what is wrong with it")
        self.assert_nothing_written(repo, mark, proc)

    def test_invalid_inline_policy_is_refused(self):
        repo = self.repo()
        self.declare(repo, inline="      rules:\n        - rulePriority: 1\n"
                           "          selection: {tagStatus: any, countType: sinceImagePulled, countUnit: days,"
                           " countNumber: 30}\n          action: {type: expire}\n", quota=10)
        layout, _info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertIn("sinceImagePulled", proc.stderr)
        self.assert_no_manifest(repo, proc)

    # -- declared quota ---------------------------------------------------------------------------

    def test_nine_images_of_a_declared_quota_of_ten_refused(self):
        repo = self.repo()
        self.seed_images(repo, 9)
        self.declare(repo, quota=10)
        layout, info = self.image()
        mark = self.mark()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertRegex(error_text(proc), r"\b9\b", "the refusal gives the count" + tw.describe(proc))
        self.assertRegex(error_text(proc), r"\b10\b", "and the quota" + tw.describe(proc))
        self.assertIn("tag list", error_text(proc), "and where the count comes from")
        self.assertIn("no manifest or tag was written", error_text(proc), tw.describe(proc))
        self.assertEqual(self.registry.manifest_puts(repo, since=mark), 0,
                         "a refused push must not write a manifest" + tw.describe(proc))
        self.assertNotIn(info.manifest_digest, self.registry.manifest_digests(repo))

    def test_guards_first_in_the_configuration_refuses_before_any_upload(self):
        repo = self.repo()
        self.seed_images(repo, 9)
        self.declare(repo, quota=10, extra="guards_first: true")
        layout, info = self.image()
        mark = self.mark()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertRegex(error_text(proc), r"\b9 of 10\b", tw.describe(proc))
        self.assert_nothing_written(repo, mark, proc)
        self.assertNotIn(info.manifest_digest, self.registry.manifest_digests(repo))

    def test_tags_of_one_image_count_once(self):
        # Five images, four of them promoted (a second tag each): nine tags, five images. Counting tags,
        # the push would be refused at 90% of the quota of ten; ECR counts images, and so does the guard.
        repo = self.repo()
        self.seed_images(repo, 5, aliases=4)
        self.declare(repo, quota=10)
        layout, info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--output", "json")
        tw.assert_exit(self, proc, 0)
        guards = self.guards(proc)
        self.assertRegex(guards["quota"][1], r"\b5 of 10\b|\b5\b.*\b10\b", "five images, not nine tags")
        self.assertEqual(self.registry.tags(repo)["1.0.0"], info.manifest_digest)

    def test_eight_images_of_a_declared_quota_of_ten_pass(self):
        repo = self.repo()
        self.seed_images(repo, 8)
        self.declare(repo, quota=10)
        layout, info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.registry.tags(repo)["1.0.0"], info.manifest_digest)

    def test_top_level_quota_and_threshold_apply_to_declared_repositories(self):
        repo = self.repo()
        self.seed_images(repo, 5)
        self.declare(repo, extra="quota: 10\nquota_threshold: 0.5\n")
        layout, _info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertRegex(error_text(proc), r"\b5\b.*\b10\b")
        self.assertIn("50%", proc.stderr, "the refusal gives the threshold it applied")
        self.assert_no_manifest_named(repo, "1.0.0")

    def test_quota_flag_overrides_the_declared_quota(self):
        repo = self.repo()
        self.seed_images(repo, 4)
        self.declare(repo, quota=100)
        layout, _info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--quota", "4")
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertRegex(error_text(proc), r"\b4 of 4\b|\b4\b.*\b4\b")
        self.assert_no_manifest_named(repo, "1.0.0")

    def assert_no_manifest_named(self, repo, tag):
        self.assertNotIn(tag, self.registry.tags(repo))

    # -- overrides ----------------------------------------------------------------------------------

    def assert_overridden_with_warning(self, proc, repo):
        tw.assert_exit(self, proc, 0)
        warnings = [line for line in proc.stderr.splitlines() if "warn" in line.lower()]
        self.assertTrue(any("no lifecycle policy" in line for line in warnings),
                        "an override must be loud: a warning naming the missing policy" + tw.describe(proc))
        self.assertEqual(self.guards(proc)["lifecycle-policy"][0], "overridden")
        self.assertIn("1.0.0", self.registry.tags(repo))

    def test_environment_variable_overrides_with_a_warning(self):
        repo = self.repo()
        layout, _info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--output", "json",
                         env=self.env(TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY="true"))
        self.assert_overridden_with_warning(proc, repo)

    def test_configuration_setting_overrides_with_a_warning(self):
        repo = self.repo()
        self.write_config("allow_no_lifecycle_policy: true\n")
        layout, _info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--output", "json")
        self.assert_overridden_with_warning(proc, repo)

    def test_environment_variable_false_beats_the_configuration_setting(self):
        # Precedence: flags, then TAGWARDEN_* variables, then tagwarden.yaml.
        repo = self.repo()
        self.write_config("allow_no_lifecycle_policy: true\n")
        layout, _info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), env=self.env(TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY="false"))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assert_no_manifest(repo, proc)

    def test_flag_overrides_with_a_warning(self):
        repo = self.repo()
        layout, _info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--allow-no-lifecycle-policy", "--output", "json")
        self.assert_overridden_with_warning(proc, repo)

    def test_dry_run_reports_the_guards(self):
        repo = self.repo()
        self.declare(repo, quota=10)
        layout, _info = self.image()
        mark = self.mark()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--dry-run", "--output", "json")
        tw.assert_exit(self, proc, 0)
        self.assertEqual(tw.parse_json(self, proc)["dryRun"], True)
        guards = self.guards(proc)
        self.assertEqual((guards["lifecycle-policy"][0], guards["quota"][0]), ("passed", "passed"))
        self.assert_nothing_written(repo, mark, proc)


if __name__ == "__main__":
    unittest.main()
