"""The guards of push and promote against the ECR test bed (tests/support/ecr_testbed.py).

tagwarden reads the facts from ECR itself — GetLifecyclePolicy, DescribeImages (every image,
tagged or not), Service Quotas L-03A36CE1 — through the AWS credential chain, and refuses (exit 3):
the lifecycle-policy guard before anything is uploaded; the quota and survival guards, which need
every image, under the tag locks while the blobs upload (a refusal stops the upload and writes no
manifest and no tag), or before anything is uploaded with --guards-first:

- LifecyclePolicyGuard: a repository without a lifecycle policy; --allow-no-lifecycle-policy.
- QuotaGuard: at 90% of the image quota (Service Quotas or --quota), the documented default when
  Service Quotas is denied, and ECR's own 403 at the quota when the guard is bypassed.
- Credentials: the chain from the environment and from a profile, end to end; a wrong secret.
- SurvivalGuard (issue 5): the dev-/prod- trap at promotion time, a 7-day age rule that expires the
  previous prod releases, --protect; and the fixed policies that pass.
- TagImmutability: an immutable repository's existing tag (TAG_INVALID from the data plane).

One bed serves the module; each test works in its own repository. Images other than the one
being pushed are written straight to the bed's data plane (ecr_images.SeedImage), back-dated
with set_pushed_at where a test needs age.
"""

import os
import re
import time
import unittest

import make_image
import tw
from ecr_images import (DAY, DEV_RULE_DESCRIPTION, GuardEcrCase, dev_count_rule, error_text, policy, rule,
                        start_module_bed, stop_module_bed)

_state = {}


def setUpModule():  # noqa: N802 (unittest's name)
    start_module_bed(_state, "tw-guard-ecr-")


def tearDownModule():  # noqa: N802
    stop_module_bed(_state)


class Case(GuardEcrCase):
    state = _state


class LifecyclePolicyGuard(Case):

    def test_no_policy_refused_before_any_blob_is_uploaded(self):
        repo = self.create("guard/nopolicy", lifecycle_policy=None)
        layout, _info = self.image()
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        self.assert_refused(proc, f"{self.bed.registry_host}/{repo}", "aws ecr put-lifecycle-policy",
                            f"--repository-name {repo}", "--allow-no-lifecycle-policy")
        self.assertIn("no lifecycle policy", proc.stderr.lower())
        self.assertEqual(proc.stdout, "", "a refusal prints no result")
        self.assert_nothing_written(mark, puts, proc)
        self.assertEqual(self.images(repo), {})
        self.assertIn("GetLifecyclePolicy", [c.operation for c in self.bed.api_calls()],
                      "the policy must be read from ECR")
        self.assertNoBedErrors()

    def test_no_policy_refused_in_a_dry_run_too(self):
        repo = self.create("guard/nopolicy-dry", lifecycle_policy=None)
        layout, _info = self.image()
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--dry-run", "--output", "json")
        self.assert_refused(proc, "aws ecr put-lifecycle-policy")
        self.assert_nothing_written(mark, puts, proc)

    def test_promote_into_another_repository_checks_the_destination(self):
        source = self.create("guard/promote-source")
        dest = self.create("guard/promote-dest", lifecycle_policy=None)
        layout, info = self.image()
        tw.assert_exit(self, self.push(layout, self.target(source), "--version", "1.0.0", "--env", "dev"), 0)
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.run_tw("promote", self.target(source, "1.0.0"), "--from", "dev", "--to", "prod", "--to-repo", dest)
        self.assert_refused(proc, f"{self.bed.registry_host}/{dest}", f"--repository-name {dest}")
        self.assert_nothing_written(mark, puts, proc)
        self.assertEqual(self.images(dest), {})
        self.assertEqual(self.images(source), {info.manifest_digest: ["1.0.0-dev"]})

    def test_missing_repository_is_named_not_reported_as_a_missing_policy(self):
        layout, _info = self.image()
        repo = "guard/never-created"
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        self.assertNotIn(proc.returncode, (0, tw.EXIT_GUARD), tw.describe(proc))
        self.assertIn(repo, error_text(proc))
        self.assertIn("does not exist", error_text(proc), "ECR does not create repositories on push: say so")
        self.assert_nothing_written(mark, puts, proc)

    def test_allow_no_lifecycle_policy_pushes_and_warns(self):
        repo = self.create("guard/nopolicy-allowed", lifecycle_policy=None)
        layout, info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--allow-no-lifecycle-policy", "--output", "json")
        tw.assert_exit(self, proc, 0)
        warnings = [line for line in proc.stderr.splitlines() if "warn" in line.lower()]
        self.assertTrue(any("no lifecycle policy" in line for line in warnings),
                        "overriding the guard must be loud: a warning naming the missing policy" + tw.describe(proc))
        status, message = self.guards(proc)["lifecycle-policy"]
        self.assertEqual(status, "overridden")
        self.assertIn(repo, message)
        self.assertEqual(self.images(repo), {info.manifest_digest: ["1.0.0"]})
        self.assertNoBedErrors()


class QuotaGuard(Case):

    def fill_nine(self, repo):
        """Nine images, the three oldest untagged (DescribeImages must count them: tagStatus ANY)."""
        return self.seed.fill(repo, 9, untagged=3, oldest_days=40)

    def assert_quota_refusal(self, proc, made, repo):
        self.assert_refused(proc, f"{self.bed.registry_host}/{repo}")
        text = error_text(proc)
        self.assertRegex(text, r"\b9\b", "the refusal must give the image count (9)" + tw.describe(proc))
        self.assertRegex(text, r"\b10\b", "the refusal must give the quota (10)" + tw.describe(proc))
        self.assertIn("quota", text.lower())
        oldest_hex = made[0][0].split(":", 1)[1]
        self.assertIn(oldest_hex[:12], text, "the refusal must list the oldest images" + tw.describe(proc))
        self.assertIn("fill-3", text, "the oldest tagged image is named by its tag" + tw.describe(proc))

    def test_nine_of_ten_by_service_quotas_refused_with_count_quota_and_oldest(self):
        repo = self.create("guard/quota-sq")
        made = self.fill_nine(repo)
        self.set_service_quota(10)
        layout, info = self.image()
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        self.assert_quota_refusal(proc, made, repo)
        self.assert_no_image_written(mark, puts, proc)
        self.assertNotIn(info.manifest_digest, self.images(repo))
        self.assertIn("GetServiceQuota", [c.operation for c in self.bed.api_calls(service="servicequotas")])

    def test_nine_of_ten_by_quota_flag_refused(self):
        repo = self.create("guard/quota-flag")
        made = self.fill_nine(repo)  # Service Quotas says 100,000: only --quota makes this full
        layout, _info = self.image()
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--quota", "10", "--guards-first")
        self.assert_quota_refusal(proc, made, repo)
        self.assertIn("--quota", error_text(proc), "the refusal says where the quota came from" + tw.describe(proc))
        self.assert_nothing_written(mark, puts, proc)  # --guards-first: not a byte before the verdict

    def test_a_refusal_beside_the_upload_stops_it(self):
        # 9 of 10: the quota guard refuses on the images read under the tag locks while a 96 MiB layer
        # uploads. Reading nine images takes a few milliseconds; the layer far longer: it never arrives.
        repo = self.create("guard/quota-stop")
        self.fill_nine(repo)
        layout = os.path.join(self.tmp, "big")
        info = make_image.make_image(layout, layers=1, layer_size=96 << 20, seed=f"{self.id()}-big",
                                     incompressible=True)
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--quota", "10")
        self.assert_refused(proc, f"{self.bed.registry_host}/{repo}", "the upload was stopped")
        self.assert_no_image_written(mark, puts, proc)
        layer = info.layer_digests[0]
        finished = [r for r in self.bed.requests(since=mark)
                    if r.method == "PUT" and "/blobs/uploads/" in r.path and layer in r.uri and r.status == 201]
        self.assertEqual(finished, [], "the big layer's upload must be stopped, not finished" + tw.describe(proc))
        self.assertNotIn(info.manifest_digest, self.images(repo))

    def test_room_under_the_threshold_pushes_and_the_aws_cli_sees_the_digest(self):
        repo = self.create("guard/quota-room")
        self.seed.fill(repo, 8, untagged=2, oldest_days=20)
        self.set_service_quota(10)
        layout, info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--output", "json")
        tw.assert_exit(self, proc, 0)
        report = tw.parse_json(self, proc)
        self.assertEqual(report["digest"], info.manifest_digest)
        guards = self.guards(proc)
        self.assertEqual(guards["lifecycle-policy"][0], "passed")
        self.assertEqual(guards["quota"][0], "passed")
        self.assertRegex(guards["quota"][1], r"\b8\b.*\b10\b", "the quota finding gives count and quota")
        described = self.aws("ecr", "describe-images", "--repository-name", repo,
                             "--image-ids", "imageTag=1.0.0")["imageDetails"]
        self.assertEqual([(d["imageDigest"], d["imageTags"]) for d in described], [(info.manifest_digest, ["1.0.0"])])
        self.assertEqual(len(self.images(repo)), 9)
        self.assertNoBedErrors()

    def test_repush_of_a_present_image_at_the_threshold_is_not_refused(self):
        # A pipeline re-run adds no image: it must not be stopped by the quota guard.
        repo = self.create("guard/quota-rerun")
        self.seed.fill(repo, 8, oldest_days=20)
        layout, info = self.image()
        first = self.push(layout, self.target(repo, "1.0.0"), "--quota", "10")
        tw.assert_exit(self, first, 0)
        self.assertEqual(len(self.images(repo)), 9)
        again = self.push(layout, self.target(repo, "1.0.0"), "--quota", "10", "--output", "json")
        tw.assert_exit(self, again, 0)
        self.assertEqual(tw.parse_json(self, again)["tags"], [{"tag": "1.0.0", "status": "unchanged"}])
        other_layout, _other = self.image("other")
        refused = self.push(other_layout, self.target(repo, "1.0.1"), "--quota", "10")
        tw.assert_exit(self, refused, tw.EXIT_GUARD)

    def test_index_that_cannot_fit_under_the_quota_is_refused_up_front(self):
        # 8 of 10 is under the 90% threshold, but an index of two platforms adds 3 images: ECR would take
        # the two children and refuse the index with its 403. The guard knows what the push adds.
        repo = self.create("guard/quota-index")
        self.seed.fill(repo, 8, oldest_days=20)
        self.bed.set_quota(repo, 10)
        layout = os.path.join(self.tmp, "multi")
        index = make_image.make_index(layout, layers=1, layer_size=1024, seed=f"{self.id()}-multi")
        before = self.images(repo)
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--quota", "10")
        self.assert_refused(proc, f"{self.bed.registry_host}/{repo}")
        self.assertRegex(error_text(proc), r"\b10\b", "the refusal gives the quota" + tw.describe(proc))
        self.assert_no_image_written(mark, puts, proc)  # not a child manifest either
        self.assertEqual(self.images(repo), before)
        self.assertNotIn(index.index_digest, self.images(repo))

    def test_promotion_at_the_threshold_adds_no_image_and_passes(self):
        repo = self.create("guard/quota-promote")
        self.seed.fill(repo, 8, oldest_days=20)
        layout, info = self.image()
        tw.assert_exit(self, self.push(layout, self.target(repo), "--version", "1.0.0", "--env", "dev",
                                       "--quota", "10"), 0)
        self.assertEqual(len(self.images(repo)), 9)
        proc = self.run_tw("promote", self.target(repo, "1.0.0"), "--from", "dev", "--to", "prod", "--quota", "10")
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.images(repo)[info.manifest_digest], ["1.0.0-dev", "1.0.0-prod"])

    def test_service_quotas_denied_uses_the_documented_default(self):
        repo = self.create("guard/quota-denied")
        self.fill_nine(repo)
        self.set_service_quota(10)  # what would refuse, if tagwarden could read it
        self.bed.deny_service_quotas()
        self.addCleanup(self.bed.deny_service_quotas, False)
        layout, info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--output", "json")
        tw.assert_exit(self, proc, 0)
        status, message = self.guards(proc)["quota"]
        self.assertEqual(status, "passed")
        self.assertIn("100000", message.replace(",", ""), "the documented default is 100,000 images")
        self.assertIn("default", message.lower(), "the finding must say the quota is the documented default")
        self.assertIn("AccessDenied", message, "and why: Service Quotas denied the call")
        self.assertIn(info.manifest_digest, self.images(repo))
        denied = [c for c in self.bed.api_calls(service="servicequotas") if c.error == "AccessDeniedException"]
        self.assertTrue(denied, "the test must have exercised a denied Service Quotas call")

    def test_ecr_403_at_the_image_quota_is_explained_and_leaves_nothing_tagged(self):
        repo = self.create("guard/quota-403")
        before = {d for d, _tag in self.seed.fill(repo, 9, oldest_days=20)}
        self.bed.set_quota(repo, 9)  # the data plane's limit, below what tagwarden is told
        layout, info = self.image()

        guarded = self.push(layout, self.target(repo, "1.0.0"), "--quota", "10")
        tw.assert_exit(self, guarded, tw.EXIT_GUARD)  # 9 of 10 is at 90%: the guard catches it

        mark = self.mark()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--quota", "10", "--quota-threshold", "1")
        self.assertNotEqual(proc.returncode, 0, "ECR refused the manifest: the push must fail" + tw.describe(proc))
        self.assertNotEqual(proc.returncode, tw.EXIT_AUTH,
                            "ECR's 403 at the image quota is not an authentication failure" + tw.describe(proc))
        denied = self.bed.requests(method="PUT", path=r"/manifests/", status=403, since=mark)
        self.assertEqual(len(denied), 1, "the test must reach ECR's 403 at the quota, once (not retried)"
                         + tw.describe(proc))
        error = error_text(proc)
        self.assertIn("quota", error.lower(), "the error must say the image quota is reached" + tw.describe(proc))
        self.assertRegex(error, r"\b9\b", "and give the limit" + tw.describe(proc))
        self.assertEqual(set(self.images(repo)), before, "nothing new may be left in the repository")
        self.assertNotIn("1.0.0", [t for tags in self.images(repo).values() for t in tags])
        self.assertNotIn("1.0.0", self.bed.registry.tags(repo))
        self.assertNoBedErrors()


class Credentials(Case):

    def test_environment_credentials_end_to_end(self):
        repo = self.create("guard/creds-env")
        layout, info = self.image()
        proc = tw.run_tagwarden("--debug", "push", f"oci:{layout}", self.target(repo, "1.0.0"), "--plain-http",
                                "--lock", f"file://{self.tmp}/locks", env=self.env())
        tw.assert_exit(self, proc, 0)
        self.assertEqual(tw.stdout_digest_line(self, proc, self.target(repo)), info.manifest_digest)
        keys = {c.access_key for c in self.bed.api_calls(operation="GetAuthorizationToken") if c.status == 200}
        self.assertIn(self.bed.access_key_id, keys, "the data-plane password must come from GetAuthorizationToken")
        tw.assert_no_secret(self, proc, self.bed.secret_access_key)
        self.assertEqual(self.images(repo), {info.manifest_digest: ["1.0.0"]})

    def test_profile_in_the_shared_credentials_file(self):
        repo = self.create("guard/creds-profile")
        layout, info = self.image()
        credentials = os.path.join(self.tmp, "credentials")
        with open(credentials, "w") as f:
            f.write(f"[default]\naws_access_key_id = AKIAWRONGWRONGWRONG0\naws_secret_access_key = nope\n\n"
                    f"[ci]\naws_access_key_id = {self.bed.access_key_id}\n"
                    f"aws_secret_access_key = {self.bed.secret_access_key}\n")
        env = self.env(AWS_SHARED_CREDENTIALS_FILE=credentials, AWS_PROFILE="ci",
                       AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
        proc = self.push(layout, self.target(repo, "1.0.0"), env=env)
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.images(repo), {info.manifest_digest: ["1.0.0"]})
        tw.assert_no_secret(self, proc, self.bed.secret_access_key)

    def test_wrong_secret_exit_7_and_the_secret_is_never_printed(self):
        repo = self.create("guard/creds-wrong")
        layout, _info = self.image()
        wrong = "wR0ng/" + "x7Kq9" * 7
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo, "1.0.0"), env=self.env(AWS_SECRET_ACCESS_KEY=wrong))
        tw.assert_exit(self, proc, tw.EXIT_AUTH)
        tw.assert_no_secret(self, proc, wrong, self.bed.secret_access_key)
        self.assertIn("signature", proc.stderr.lower(), "the error must say the signature was rejected")
        self.assertIn("secret access key", proc.stderr.lower(), "and point at the secret access key")
        rejected = [c for c in self.bed.api_calls() if c.error == "InvalidSignatureException"]
        self.assertTrue(rejected, "the bed must have rejected a signature")
        self.assert_nothing_written(mark, puts, proc)

    def test_wrong_secret_error_is_one_line(self):
        # README: "Errors are one line on stderr, `tagwarden: error: ...`". AWS's InvalidSignatureException
        # message carries the canonical request and string-to-sign on several lines.
        repo = self.create("guard/creds-wrong-line")
        layout, _info = self.image()
        proc = self.push(layout, self.target(repo, "1.0.0"), env=self.env(AWS_SECRET_ACCESS_KEY="wR0ng/" + "q" * 34))
        tw.assert_exit(self, proc, tw.EXIT_AUTH)
        self.assertEqual(len(error_text(proc).splitlines()), 1,
                         "the error must be one line on stderr" + tw.describe(proc))


class SurvivalGuard(Case):
    """Issue 5: the policy is simulated over the repository as it will be after the push/promotion."""

    TEMPLATE = 'tag_template: "{env}-{version}"\n'

    def dev_builds(self, repo, cwd):
        """dev-1, dev-2, dev-3 pushed with tagwarden (each push passes), then aged 10, 9, 8 days."""
        digests = []
        for n in (1, 2, 3):
            layout, info = self.image(f"build-{n}")
            proc = self.push(layout, self.target(repo), "--version", str(n), "--env", "dev", cwd=cwd)
            tw.assert_exit(self, proc, 0)
            digests.append(info.manifest_digest)
        for n, digest in enumerate(digests, start=1):
            self.bed.set_pushed_at(repo, digest, time.time() - (11 - n) * DAY)
        self.assertEqual(self.images(repo), {d: [f"dev-{n}"] for n, d in enumerate(digests, start=1)})
        return digests

    def promote_one(self, repo, cwd, *args):
        return self.run_tw("promote", f"{self.target(repo)}:1", "--from", "dev", "--to", "prod", *args, cwd=cwd)

    def test_dev_rule_that_would_expire_the_promoted_image_is_refused_at_promotion(self):
        repo = self.create("guard/trap", lifecycle_policy=policy(dev_count_rule(1)))
        cwd = self.config_dir(self.TEMPLATE)
        digests = self.dev_builds(repo, cwd)
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.promote_one(repo, cwd)
        self.assert_refused(proc, digests[0].split(":", 1)[1][:12])
        self.assertIn("prod-1", proc.stderr, "the simulation must use the tags the image will have")
        self.assertRegex(error_text(proc), r"(rulePriority|rule|priority) ?1\b", "the refusal names the rule")
        self.assert_nothing_written(mark, puts, proc)
        self.assertEqual(self.images(repo)[digests[0]], ["dev-1"], "no prod tag may be written")

    def test_dev_rule_refusal_names_the_rule_by_its_selection(self):
        # "rulePriority 1" alone makes the reader look the rule up; the message must say it is the
        # dev- rule (its prefix or its description), not only list the image's tags.
        repo = self.create("guard/trap-name", lifecycle_policy=policy(dev_count_rule(1)))
        cwd = self.config_dir(self.TEMPLATE)
        self.dev_builds(repo, cwd)
        proc = self.promote_one(repo, cwd)
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        without_tags = re.sub(r"\b(dev|prod)-\d+\b", "<tag>", proc.stderr)
        self.assertTrue("dev-" in without_tags or DEV_RULE_DESCRIPTION in without_tags,
                        "the refusal must name the dev- rule (tagPrefixList 'dev-' or its description), "
                        "not only its priority" + tw.describe(proc))

    def test_fixed_policy_with_a_prod_rule_first_lets_the_promotion_pass(self):
        fixed = policy(rule(1, {"tagStatus": "tagged", "tagPrefixList": ["prod-"],
                                "countType": "imageCountMoreThan", "countNumber": 10}, "keep 10 prod releases"),
                       dev_count_rule(2))
        repo = self.create("guard/trap-fixed", lifecycle_policy=fixed)
        cwd = self.config_dir(self.TEMPLATE)
        digests = self.dev_builds(repo, cwd)
        proc = self.promote_one(repo, cwd, "--output", "json")
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.guards(proc)["survival"][0], "passed")
        self.assertEqual(self.images(repo)[digests[0]], ["dev-1", "prod-1"])
        self.assertNoBedErrors()

    def prod_history(self, repo):
        """1.0.0-prod (20 days old), 1.1.0-prod (10 days), 1.1.0-dev (12 days): the default template."""
        return {
            "1.0.0-prod": self.seed.put(repo, 1, tag="1.0.0-prod", pushed_days_ago=20),
            "1.1.0-prod": self.seed.put(repo, 2, tag="1.1.0-prod", pushed_days_ago=10),
            "1.1.0-dev": self.seed.put(repo, 3, tag="1.1.0-dev", pushed_days_ago=12),
        }

    def test_seven_day_rule_that_expires_the_previous_prod_releases_is_refused(self):
        seven_days = policy(rule(1, {"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "sinceImagePushed",
                                     "countUnit": "days", "countNumber": 7}, "anything older than a week"))
        repo = self.create("guard/age", lifecycle_policy=seven_days)
        history = self.prod_history(repo)
        layout, info = self.image()
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo), "--version", "1.2.0", "--env", "prod")
        self.assert_refused(proc, "1.0.0-prod", "1.1.0-prod", history["1.0.0-prod"].split(":", 1)[1][:12],
                            history["1.1.0-prod"].split(":", 1)[1][:12])
        self.assertIn("rollback", proc.stderr.lower(), "the refusal says why they matter: rollback targets")
        self.assertNotIn("1.1.0-dev", proc.stderr, "the expiring dev image is not protected and not a reason")
        self.assert_no_image_written(mark, puts, proc)
        self.assertNotIn(info.manifest_digest, self.images(repo))

    def test_fixed_age_policy_passes_and_still_expires_old_dev_images(self):
        fixed = policy(
            rule(1, {"tagStatus": "tagged", "tagPatternList": ["*-prod"], "countType": "imageCountMoreThan",
                     "countNumber": 10}, "keep 10 prod releases"),
            rule(2, {"tagStatus": "tagged", "tagPatternList": ["*-dev"], "countType": "sinceImagePushed",
                     "countUnit": "days", "countNumber": 7}, "dev builds for a week"),
            rule(3, {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                     "countNumber": 1}, "untagged for a day"))
        repo = self.create("guard/age-fixed", lifecycle_policy=fixed)
        self.prod_history(repo)
        layout, info = self.image()
        proc = self.push(layout, self.target(repo), "--version", "1.2.0", "--env", "prod", "--output", "json")
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.guards(proc)["survival"][0], "passed")
        self.assertEqual(self.images(repo)[info.manifest_digest], ["1.2.0-prod"])
        # The bed's own evaluation (ECR's preview) agrees the 12-day-old dev image goes and prod stays.
        ecr = self.bed.client("ecr")
        ecr.start_lifecycle_policy_preview(repositoryName=repo)
        preview = ecr.get_lifecycle_policy_preview(repositoryName=repo)["previewResults"]
        self.assertEqual(sorted(t for r in preview for t in r.get("imageTags") or []), ["1.1.0-dev"])

    def test_protected_digest_the_policy_would_expire_is_refused(self):
        keep_one_dev = policy(rule(1, {"tagStatus": "tagged", "tagPatternList": ["*-dev"],
                                       "countType": "imageCountMoreThan", "countNumber": 1}, "keep 1 dev build"))
        repo = self.create("guard/protect", lifecycle_policy=keep_one_dev)
        running = self.seed.put(repo, 1, tag="1.0.0-dev", pushed_days_ago=5)
        layout, info = self.image()
        # Unprotected, the old dev build may go: the push passes the guards.
        dry = self.push(layout, self.target(repo), "--version", "1.1.0", "--env", "dev", "--dry-run")
        tw.assert_exit(self, dry, 0)
        protect = os.path.join(self.tmp, "ecs-digests.txt")
        with open(protect, "w") as f:
            f.write(f"{running}\n")
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo), "--version", "1.1.0", "--env", "dev", "--protect", protect,
                         env={**self.env(), "TAGWARDEN_GUARDS_FIRST": "true"})
        self.assert_refused(proc, running.split(":", 1)[1][:12], "--protect")
        self.assert_nothing_written(mark, puts, proc)  # TAGWARDEN_GUARDS_FIRST: every guard before any upload
        self.assertEqual(self.images(repo), {running: ["1.0.0-dev"]})


class TagImmutability(Case):

    def test_existing_tag_on_another_digest_exit_4_before_upload(self):
        repo = self.create("guard/immutable", mutability="IMMUTABLE")
        existing = self.seed.put(repo, 1, tag="1.0.0")
        layout, info = self.image()
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, proc, tw.EXIT_TAG_CONFLICT)
        self.assertIn(existing, proc.stderr)
        self.assertIn(info.manifest_digest, proc.stderr)
        self.assert_nothing_written(mark, puts, proc)
        self.assertEqual(self.images(repo), {existing: ["1.0.0"]})

    def test_allow_overwrite_meets_ecr_tag_invalid_exit_4(self):
        repo = self.create("guard/immutable-overwrite", mutability="IMMUTABLE")
        existing = self.seed.put(repo, 1, tag="1.0.0")
        layout, info = self.image()
        mark = self.mark()
        proc = self.push(layout, self.target(repo, "1.0.0"), "--allow-overwrite")
        tw.assert_exit(self, proc, tw.EXIT_TAG_CONFLICT)
        self.assertIn("1.0.0", proc.stderr)
        self.assertIn("immutable", proc.stderr.lower())
        # Either ECR's TAG_INVALID (400) on the manifest PUT, or a refusal up front from the repository's
        # mutability: no manifest may be accepted.
        accepted = self.bed.requests(method="PUT", path=r"/manifests/", status=201, since=mark)
        self.assertEqual(accepted, [], "no manifest may be written" + tw.describe(proc))
        self.assertEqual(self.images(repo), {existing: ["1.0.0"]})

    def test_same_digest_and_tag_on_an_immutable_repository_is_unchanged(self):
        repo = self.create("guard/immutable-rerun", mutability="IMMUTABLE")
        layout, info = self.image()
        first = self.push(layout, self.target(repo, "1.0.0"))
        tw.assert_exit(self, first, 0)
        again = self.push(layout, self.target(repo, "1.0.0"), "--output", "json")
        tw.assert_exit(self, again, 0)
        self.assertEqual(tw.parse_json(self, again)["tags"], [{"tag": "1.0.0", "status": "unchanged"}])
        self.assertEqual(self.images(repo), {info.manifest_digest: ["1.0.0"]})
        self.assertNoBedErrors()



class SecretsEverywhere(Case):
    """Every command, --debug on, with the AWS secret key and ECR's registry password in play: neither
    appears on stdout (JSON reports included) or stderr."""

    def test_no_secret_in_any_command(self):
        repo = self.create("secrets/everywhere")
        layout, _info = self.image()
        secrets = (self.bed.secret_access_key, self.bed.login_password())
        runs = [
            self.push(layout, self.target(repo), "--version", "1.0.0", "--env", "dev", "--debug", "--output", "json"),
            self.run_tw("promote", self.target(repo, "1.0.0"), "--from", "dev", "--to", "prod", "--debug",
                        "--output", "json"),
            tw.run_tagwarden("--debug", "verify", self.target(repo, "1.0.0-prod"), "--plain-http", env=self.env()),
            tw.run_tagwarden("--debug", "policy", "simulate", "--repo", self.target(repo), env=self.env()),
            self.run_tw("push", "--resume", "--debug", "--output", "json"),
        ]
        for proc in runs:
            with self.subTest(command=proc.args[1:3]):
                self.assertIn(proc.returncode, (0,), tw.describe(proc))
                tw.assert_no_secret(self, proc, *secrets)


if __name__ == "__main__":
    unittest.main()
