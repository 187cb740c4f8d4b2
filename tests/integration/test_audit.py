"""tagwarden audit (issue 14) against real components.

EcrFleet: one ECR test bed holding 50 repositories of mixed health — one without a lifecycle policy,
one at 95% of its image quota, one whose policy expires a prod-tagged rollback target within 30 days,
one healthy but with MUTABLE tags, 46 healthy ones (half with an untagged-only policy: no finding; half
with lint's recommended shielded policy: its one info finding) — and two repository creation templates: a
CREATE_ON_PUSH template without a lifecycle policy (an error) and one with a policy. The audit must name
each problem with its check and severity, say nothing (no error, no warning) about the healthy ones, exit
3, and print exactly the JSON shape of the issue; the same findings when the bed throttles DescribeImages
and GetLifecyclePolicy while four repositories are read at a time. The push guard knows the templates too: a push to a repository that does not
exist yet but that the policy-less template would create is refused (nothing written, nothing created);
under the template with a policy it goes through and ECR (the bed) creates the repository.

ArchivedImages: an archived image's age is judged from lastArchivedAt on the live DescribeImages path
(the bed's archive hook), not from its push time.

PlainRegistry: a docker-registry with three repositories and a tagwarden.yaml: the catalog, the tag
lists (an image under two tags counts once) and the declared policies and quotas.
"""

import json
import os
import re
import time
import unittest

import make_image
import tw
from ecr_images import DAY, SeedImage, start_module_bed, stop_module_bed
from registry import Registry

QUOTA = 20  # Service Quotas' L-03A36CE1 in the bed: one value for every repository
# Repositories other tests of this module add beside the fleet (created on push, archived images, --protect).
OTHER_TESTS_REPOSITORIES = {"managed/service", "archive/app", "extra/protect"}

# Healthy, and `policy lint` has nothing to say about it: untagged images go after 14 days.
HEALTHY_POLICY = {"rules": [
    {"rulePriority": 1, "description": "untagged after 14 days",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
     "action": {"type": "expire"}}]}

# Healthy too, as lint recommends: prod releases shielded by a count rule (lint's one info finding,
# protected-retention: "make sure 100 covers every release you may roll back to"), dev builds counted.
SHIELDED_POLICY = {"rules": [
    {"rulePriority": 1, "description": "keep the last 100 prod releases",
     "selection": {"tagStatus": "tagged", "tagPatternList": ["*-prod"], "countType": "imageCountMoreThan",
                   "countNumber": 100},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "untagged after 14 days",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
     "action": {"type": "expire"}},
    {"rulePriority": 3, "description": "keep the last 30 dev builds",
     "selection": {"tagStatus": "tagged", "tagPatternList": ["*-dev"], "countType": "imageCountMoreThan",
                   "countNumber": 30},
     "action": {"type": "expire"}}]}

SEVEN_DAYS_POLICY = {"rules": [
    {"rulePriority": 1, "description": "anything older than a week",
     "selection": {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
     "action": {"type": "expire"}}]}

_state = {}


def setUpModule():  # noqa: N802 (unittest's name)
    start_module_bed(_state, "tw-audit-", quota=QUOTA)
    bed = _state["bed"]
    started = time.monotonic()
    layout = os.path.join(_state["tmp"], "seed")
    info = make_image.make_image(layout, layers=1, layer_size=512, seed="audit-seed")
    seed = SeedImage(bed, layout, info)
    fleet = {}

    def create(name, policy=HEALTHY_POLICY, mutability="IMMUTABLE"):
        bed.create_repository(name, mutability=mutability, lifecycle_policy=policy)
        fleet[name] = policy

    create("fleet/no-policy", policy=None)
    seed.put("fleet/no-policy", 1, tag="1.0.0-dev", pushed_days_ago=40)
    create("fleet/almost-full")
    # 19 of 20 (95%), pushed over the last 38 days.
    seed.fill("fleet/almost-full", 19, untagged=0, oldest_days=38, tag_format="{n}.0.0-dev")
    create("fleet/rollback", policy=SEVEN_DAYS_POLICY)
    seed.put("fleet/rollback", 2, tag="2.0.0-prod", pushed_days_ago=3)  # expired on day 7: within 30 days
    create("fleet/mutable", mutability="MUTABLE")
    seed.put("fleet/mutable", 3, tag="3.0.0-prod", pushed_days_ago=50)
    for i in range(46):
        name = f"fleet/healthy-{i:02d}"
        create(name, policy=SHIELDED_POLICY if i % 2 else HEALTHY_POLICY)
        if i % 9 == 0:  # a few hold images: a prod release and a dev build, old enough to be quiet
            seed.put(name, 100 + i, tag=f"{i}.0.0-prod", pushed_days_ago=60)
            seed.put(name, 200 + i, tag=f"{i}.0.1-dev", pushed_days_ago=45)
    bed.create_repository_creation_template("fresh", applied_for=["CREATE_ON_PUSH"], mutability="IMMUTABLE")
    bed.create_repository_creation_template("managed", applied_for=["CREATE_ON_PUSH", "REPLICATION"],
                                            mutability="IMMUTABLE", lifecycle_policy=HEALTHY_POLICY)
    _state["fleet"] = fleet
    _state["seeded_in"] = time.monotonic() - started


def tearDownModule():  # noqa: N802
    stop_module_bed(_state)


class EcrCase(unittest.TestCase):
    maxDiff = None

    @property
    def bed(self):
        return _state["bed"]

    def env(self, **extra):
        env = dict(self.bed.env())
        env.update({"TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY": None,
                    "AWS_CONFIG_FILE": os.path.join(_state["tmp"], "no-aws-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": os.path.join(_state["tmp"], "no-aws-credentials")})
        env.update(extra)
        return env

    def audit(self, *args, env=None):
        return tw.run_tagwarden("audit", self.bed.registry_host, *args, env=env or self.env())

    def audit_json(self, *args, code=tw.EXIT_GUARD):
        proc = self.audit("--output", "json", *args)
        tw.assert_exit(self, proc, code)
        return tw.parse_json(self, proc), proc

    def assertNoBedErrors(self):  # noqa: N802
        self.assertEqual(self.bed.errors, [], "the test bed recorded internal failures")


def findings(entry):
    return [(f["check"], f["severity"]) for f in entry["findings"]]


class EcrFleet(EcrCase):

    def test_seeding_stays_cheap(self):
        self.assertLess(_state["seeded_in"], 60, "the fleet is seeded through the bed's data plane in under a minute")

    def test_audit_names_each_problem_with_its_check_and_severity_and_nothing_else(self):
        report, proc = self.audit_json()
        self.assertEqual(set(report), {"registry", "repositories", "templates"})
        self.assertEqual(report["registry"], self.bed.registry_host)
        entries = {e["repository"]: e for e in report["repositories"] if e["repository"].startswith("fleet/")}
        self.assertEqual(set(entries), set(_state["fleet"]), "every repository, from DescribeRepositories")
        others = {e["repository"] for e in report["repositories"]} - set(entries)
        self.assertLessEqual(others, OTHER_TESTS_REPOSITORIES)
        for entry in report["repositories"]:
            self.assertEqual(set(entry), {"repository", "risk", "imageCount", "quota", "fillsOn", "findings"})
            self.assertEqual(entry["quota"], QUOTA, "the quota comes from Service Quotas")
            for f in entry["findings"]:
                self.assertEqual(set(f), {"check", "severity", "message"})
                self.assertIn(f["severity"], ("error", "warning", "info"))

        no_policy = entries["fleet/no-policy"]
        self.assertEqual(findings(no_policy), [("no-lifecycle-policy", "error")])
        self.assertEqual((no_policy["risk"], no_policy["imageCount"]), ("high", 1))
        self.assertIn("aws ecr put-lifecycle-policy --repository-name fleet/no-policy", no_policy["findings"][0]["message"])

        full = entries["fleet/almost-full"]
        self.assertEqual(findings(full), [("quota", "error")])
        self.assertEqual((full["risk"], full["imageCount"], full["quota"]), ("high", 19, 20))
        self.assertIn("19 of 20 images (95%)", full["findings"][0]["message"])
        self.assertRegex(full["fillsOn"] or "", r"^\d{4}-\d{2}-\d{2}$", "a fill date at the push rate of 30 days")
        self.assertIn("Service Quotas L-03A36CE1", full["findings"][0]["message"], "the message names the fix")

        rollback = entries["fleet/rollback"]
        self.assertIn(("protected-expiring", "error"), findings(rollback))
        expiring = next(f["message"] for f in rollback["findings"] if f["check"] == "protected-expiring")
        self.assertIn("2.0.0-prod", expiring)
        self.assertIn("within 30 days", expiring)
        self.assertIn("rulePriority 1", expiring)
        self.assertEqual(rollback["risk"], "high")
        # lint agrees: an age rule over every image can expire the rollback target
        self.assertIn(("policy-lint/age-rule-expires-protected", "error"), findings(rollback))

        mutable = entries["fleet/mutable"]
        self.assertEqual(findings(mutable), [("mutable-tags", "warning")])
        self.assertEqual(mutable["risk"], "medium")
        self.assertIn("put-image-tag-mutability --repository-name fleet/mutable", mutable["findings"][0]["message"])

        healthy = [e for name, e in entries.items() if name.startswith("fleet/healthy-")]
        self.assertEqual(len(healthy), 46)
        for entry in healthy:
            # Nothing but lint's info for the shielded policy.
            if _state["fleet"][entry["repository"]] is SHIELDED_POLICY:
                self.assertEqual((entry["risk"], findings(entry)), ("low", [("policy-lint/protected-retention", "info")]),
                                 entry["repository"])
            else:
                self.assertEqual((entry["risk"], entry["findings"]), ("none", []), entry["repository"])

        templates = {t["prefix"]: t for t in report["templates"]}
        self.assertEqual(set(templates), {"fresh", "managed"})
        for template in report["templates"]:
            self.assertEqual(set(template), {"prefix", "risk", "imageCount", "quota", "fillsOn", "findings"})
        self.assertEqual(findings(templates["fresh"]), [("no-lifecycle-policy", "error")])
        self.assertIn("update-repository-creation-template --prefix fresh", templates["fresh"]["findings"][0]["message"])
        self.assertEqual((templates["managed"]["risk"], templates["managed"]["findings"]), ("none", []))

        # Sorted by risk, highest first.
        ranks = {"high": 3, "medium": 2, "low": 1, "none": 0}
        order = [ranks[e["risk"]] for e in report["repositories"]]
        self.assertEqual(order, sorted(order, reverse=True))
        self.assertEqual(proc.stderr.count("error:"), 0, "findings are the report, not errors" + tw.describe(proc))
        self.assertNoBedErrors()

    def test_the_quota_is_read_once_per_run(self):
        before = len(self.bed.api_calls(service="servicequotas"))
        self.audit_json()
        after = self.bed.api_calls(service="servicequotas")[before:]
        self.assertEqual([c.operation for c in after], ["GetServiceQuota"])
        described = [c for c in self.bed.api_calls(operation="DescribeRepositoryCreationTemplates")]
        self.assertTrue(described)

    def test_throttling_is_retried_while_repositories_are_read_concurrently(self):
        self.bed.throttle("DescribeImages", every=3)
        self.bed.throttle("GetLifecyclePolicy", every=4)
        self.addCleanup(self.bed.throttle, "DescribeImages", 0)
        self.addCleanup(self.bed.throttle, "GetLifecyclePolicy", 0)
        report, proc = self.audit_json("--repos", "fleet/*")
        self.assertEqual(len(report["repositories"]), 50, tw.describe(proc))
        throttled = [c for c in self.bed.api_calls() if c.error == "ThrottlingException"]
        self.assertGreaterEqual(len(throttled), 20, "the bed throttled")
        self.assertEqual(findings({"findings": next(e for e in report["repositories"]
                                                    if e["repository"] == "fleet/no-policy")["findings"]}),
                         [("no-lifecycle-policy", "error")])

    def test_the_table_is_sorted_by_risk_and_github_gets_it_as_the_step_summary(self):
        summary = os.path.join(_state["tmp"], "summary.md")
        proc = self.audit("--output", "github", env=self.env(GITHUB_STEP_SUMMARY=summary))
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        rows = [line for line in proc.stdout.splitlines() if re.match(r"^(high|medium|low|none)\s", line)]
        fleet = [row for row in rows if row.split()[-1].startswith("fleet/")]
        templates = [row for row in rows if " template " in row]
        self.assertEqual((len(fleet), len(templates)), (50, 2), "50 repositories and 2 templates" + tw.describe(proc))
        risks = [row.split()[0] for row in fleet]
        self.assertEqual(risks[:3], ["high"] * 3)
        self.assertEqual(risks[3], "medium")
        self.assertEqual(set(risks[4:27]), {"low"}, "the 23 shielded healthy ones: an info finding")
        self.assertEqual(set(risks[27:]), {"none"})
        self.assertIn("19/20", proc.stdout)
        with open(summary) as f:
            markdown = f.read()
        self.assertIn("| risk | repository | images / quota | fills on | findings |", markdown)
        self.assertIn("`fleet/no-policy`", markdown)
        self.assertIn("template `fresh`", markdown)

    def test_repos_narrows_the_audit(self):
        report, _proc = self.audit_json("--repos", "fleet/healthy-*", code=tw.EXIT_OK)
        self.assertEqual(len(report["repositories"]), 46)
        self.assertEqual({e["risk"] for e in report["repositories"]}, {"none", "low"})
        self.assertEqual(report["templates"], [], "templates that cannot create fleet/healthy-* are left out")
        report, _proc = self.audit_json("--repos", "fleet/mutable", "--repos", "fresh/*")
        self.assertEqual([e["repository"] for e in report["repositories"]], ["fleet/mutable"])
        self.assertEqual([t["prefix"] for t in report["templates"]], ["fresh"])

    def test_days_and_protect(self):
        # Within 2 days the 7-day rule expires nothing protected (the prod image is 3 days old).
        report, _proc = self.audit_json("--repos", "fleet/rollback", "--days", "2")
        self.assertNotIn(("protected-expiring", "error"), findings(report["repositories"][0]))
        # A dev image is not protected, until --protect lists it (e.g. what ECS runs).
        self.bed.create_repository("extra/protect", mutability="IMMUTABLE", lifecycle_policy=SEVEN_DAYS_POLICY)
        layout = os.path.join(_state["tmp"], "protect-seed")
        info = make_image.make_image(layout, layers=1, layer_size=512, seed="audit-protect")
        digest = SeedImage(self.bed, layout, info).put("extra/protect", 1, tag="5.0.0-dev", pushed_days_ago=20)
        report, _proc = self.audit_json("--repos", "extra/*")
        self.assertNotIn(("protected-expiring", "error"), findings(report["repositories"][0]))
        protect = os.path.join(_state["tmp"], "protect.txt")
        with open(protect, "w") as f:
            f.write(f"{digest} ecs service web\n")
        report, _proc = self.audit_json("--repos", "extra/*", "--protect", protect)
        messages = [f["message"] for f in report["repositories"][0]["findings"] if f["check"] == "protected-expiring"]
        self.assertEqual(len(messages), 1, report)
        self.assertIn("listed in --protect", messages[0])
        self.assertIn("now", messages[0])
        bad = self.audit("--days", "0")
        tw.assert_exit(self, bad, tw.EXIT_USAGE)
        self.assertIn("--days", bad.stderr)

    def test_without_a_registry_the_credentials_own_ecr_registry_is_audited(self):
        proc = tw.run_tagwarden("audit", "--repos", "fleet/no-policy", "--output", "json", env=self.env())
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        report = tw.parse_json(self, proc)
        self.assertEqual(report["registry"], self.bed.registry_hostname, "the account from STS GetCallerIdentity")
        self.assertEqual([(e["repository"], findings(e)) for e in report["repositories"]],
                         [("fleet/no-policy", [("no-lifecycle-policy", "error")])])
        self.assertIn("GetCallerIdentity", [c.operation for c in self.bed.api_calls(service="sts")])
        no_region = tw.run_tagwarden("audit", env=self.env(AWS_REGION=None, AWS_DEFAULT_REGION=None))
        tw.assert_exit(self, no_region, tw.EXIT_USAGE)
        self.assertIn("AWS_REGION", no_region.stderr)

    def test_quota_override(self):
        report, _proc = self.audit_json("--repos", "fleet/healthy-00", "--quota", "2")
        entry = report["repositories"][0]
        self.assertEqual((entry["quota"], entry["imageCount"]), (2, 2))
        self.assertEqual(findings(entry), [("quota", "error")])

    def test_push_and_promote_under_a_template_without_a_policy_are_refused_and_create_nothing(self):
        layout = os.path.join(_state["tmp"], "push-image")
        if not os.path.isdir(layout):
            make_image.make_image(layout, layers=1, layer_size=1024, seed="audit-push")
        mark = self.bed.mark()
        proc = tw.run_tagwarden("push", f"oci:{layout}", f"{self.bed.registry_host}/fresh/service:1.0.0",
                                "--plain-http", "--lock", f"file://{_state['tmp']}/locks", env=self.env())
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertIn("repository creation template 'fresh'", proc.stderr)
        self.assertIn("aws ecr update-repository-creation-template --prefix fresh --lifecycle-policy", proc.stderr)
        writes = [r for r in self.bed.requests(since=mark) if r.method in ("POST", "PUT", "PATCH", "DELETE")]
        self.assertEqual(writes, [], "a refused push writes nothing" + tw.describe(proc))
        self.assertNotIn("fresh/service", [name for name, _prefix in self.bed.created_on_push])

        # Under the template with a policy the push goes through, and ECR creates the repository.
        proc = tw.run_tagwarden("push", f"oci:{layout}", f"{self.bed.registry_host}/managed/service",
                                "--version", "1.0.0", "--env", "dev", "--plain-http", "--lock",
                                f"file://{_state['tmp']}/locks", "--output", "json", env=self.env())
        tw.assert_exit(self, proc, tw.EXIT_OK)
        guards = {g["check"]: (g["status"], g["message"]) for g in tw.parse_json(self, proc)["guards"]}
        self.assertEqual(guards["lifecycle-policy"][0], "passed")
        self.assertIn("repository creation template 'managed'", guards["lifecycle-policy"][1])
        self.assertEqual(guards["survival"][0], "passed")
        self.assertIn(("managed/service", "managed"), self.bed.created_on_push)
        self.assertEqual([i.get("imageTags") for i in self.bed.describe_images("managed/service")], [["1.0.0-dev"]])

        # The promote guard reads the same: promoting into a repository the policy-less template would create
        # is refused before a blob is mounted or a manifest written.
        mark = self.bed.mark()
        proc = tw.run_tagwarden("promote", f"{self.bed.registry_host}/managed/service:1.0.0", "--from", "dev", "--to",
                                "prod", "--to-repo", "fresh/promoted", "--plain-http", "--lock",
                                f"file://{_state['tmp']}/locks", env=self.env())
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        self.assertIn("repository creation template 'fresh'", proc.stderr)
        writes = [r for r in self.bed.requests(since=mark) if r.method in ("POST", "PUT", "PATCH", "DELETE")]
        self.assertEqual(writes, [], "a refused promotion writes nothing" + tw.describe(proc))
        self.assertNotIn("fresh/promoted", [name for name, _prefix in self.bed.created_on_push])
        self.assertNoBedErrors()

    def test_a_missing_repository_without_a_template_is_still_named(self):
        layout = os.path.join(_state["tmp"], "push-image")
        if not os.path.isdir(layout):
            make_image.make_image(layout, layers=1, layer_size=1024, seed="audit-push")
        proc = tw.run_tagwarden("push", f"oci:{layout}", f"{self.bed.registry_host}/nowhere/service:1.0.0",
                                "--plain-http", "--lock", f"file://{_state['tmp']}/locks", env=self.env())
        self.assertNotIn(proc.returncode, (tw.EXIT_OK, tw.EXIT_GUARD), tw.describe(proc))
        self.assertIn("does not exist", proc.stderr)


class ArchivedImages(EcrCase):

    def test_archived_images_age_from_last_archived_at_on_the_live_path(self):
        repo = "archive/app"
        policy = {"rules": [
            {"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                              "countUnit": "days", "countNumber": 30}, "action": {"type": "expire"}},
            {"rulePriority": 2, "description": "archived for 100 days",
             "selection": {"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned",
                           "countUnit": "days", "countNumber": 100}, "action": {"type": "expire"}}]}
        # moto's PutLifecyclePolicy refuses archive rules (its schema predates storageClass): the policy goes
        # in with --policy; the images, with their archive times, come from DescribeImages.
        self.bed.create_repository(repo, mutability="IMMUTABLE", lifecycle_policy=HEALTHY_POLICY)
        policy_file = os.path.join(_state["tmp"], "archive-policy.json")
        with open(policy_file, "w") as f:
            json.dump(policy, f)
        layout = os.path.join(_state["tmp"], "archive-seed")
        info = make_image.make_image(layout, layers=1, layer_size=512, seed="audit-archive")
        seed = SeedImage(self.bed, layout, info)
        recent = seed.put(repo, 1, tag="1.0.0-prod", pushed_days_ago=400)  # archived 10 days ago
        old = seed.put(repo, 2, tag="0.9.0-prod", pushed_days_ago=400)     # archived 150 days ago
        now = time.time()
        self.bed.archive_image(repo, recent, now - 10 * DAY)
        self.bed.archive_image(repo, old, now - 150 * DAY)
        proc = tw.run_tagwarden("policy", "simulate", "--repo", f"{self.bed.registry_host}/{repo}", "--policy",
                                policy_file, "--output", "json", env=self.env())
        tw.assert_exit(self, proc, tw.EXIT_OK)
        actions = {i["imageDigest"]: i["action"] for i in tw.parse_json(self, proc)["images"]}
        self.assertEqual(actions, {recent: "keep", old: "expire"},
                         "sinceImageTransitioned counts from lastArchivedAt (the push time would expire both)")
        self.assertNoBedErrors()


class PlainRegistry(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.registry = Registry("plain").start()
        cls.tmp = os.path.join(_state["tmp"], "plain")
        os.makedirs(cls.tmp, exist_ok=True)
        host = cls.registry.host
        cls.cwd = os.path.join(cls.tmp, "cwd")
        os.makedirs(cls.cwd, exist_ok=True)
        with open(os.path.join(cls.cwd, "policy.json"), "w") as f:
            json.dump(HEALTHY_POLICY, f)
        with open(os.path.join(cls.cwd, "tagwarden.yaml"), "w") as f:
            f.write(f'repositories:\n'
                    f'  "{host}/shop/web":\n    quota: 10\n    lifecycle_policy: policy.json\n'
                    f'  "{host}/shop/batch":\n    quota: 3\n    lifecycle_policy: policy.json\n')
        for i, (repo, tags) in enumerate((("shop/web", ["1.0.0-dev", "1.0.0-prod"]), ("shop/api", ["1.0.0-dev"]),
                                          ("shop/batch", ["1.0.0-dev"]), ("shop/batch", ["1.0.1-dev"]),
                                          ("shop/batch", ["1.0.2-dev"]))):
            layout = os.path.join(cls.tmp, f"image-{i}")
            make_image.make_image(layout, layers=1, layer_size=256, seed=f"plain-{i}")
            args = ["push", f"oci:{layout}", f"{host}/{repo}", "--plain-http", "--lock", f"file://{cls.tmp}/locks"]
            for tag in tags:
                args += ["--tag", tag]
            proc = tw.run_tagwarden(*args, env={"TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY": "true"})
            if proc.returncode != 0:
                raise RuntimeError("seeding the plain registry failed" + tw.describe(proc))

    @classmethod
    def tearDownClass(cls):
        cls.registry.stop()

    def audit(self, *args):
        return tw.run_tagwarden("audit", self.registry.host, "--plain-http", *args, cwd=self.cwd,
                                env={"TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY": None})

    def test_catalog_tag_lists_and_tagwarden_yaml(self):
        proc = self.audit("--output", "json")
        tw.assert_exit(self, proc, tw.EXIT_GUARD)
        report = tw.parse_json(self, proc)
        self.assertEqual(report["registry"], self.registry.host)
        self.assertEqual(report["templates"], [])
        entries = {e["repository"]: e for e in report["repositories"]}
        self.assertEqual(set(entries), {"shop/web", "shop/api", "shop/batch"})
        self.assertEqual(findings(entries["shop/api"]), [("no-lifecycle-policy", "error")])
        self.assertIn("tagwarden.yaml", entries["shop/api"]["findings"][0]["message"])
        self.assertEqual((entries["shop/api"]["quota"], entries["shop/api"]["fillsOn"]), (None, None))
        batch = entries["shop/batch"]
        self.assertEqual((batch["imageCount"], batch["quota"]), (3, 3))
        self.assertEqual(findings(batch), [("quota", "error")])
        self.assertIn("quota: in tagwarden.yaml", batch["findings"][0]["message"])
        web = entries["shop/web"]
        self.assertEqual((web["imageCount"], web["quota"], web["fillsOn"]), (1, 10, None),
                         "two tags on one manifest are one image")
        self.assertEqual((web["risk"], web["findings"]), ("none", []))
        self.assertEqual([e["repository"] for e in report["repositories"]][-1], "shop/web", "sorted by risk")

    def test_repos_narrows_to_the_healthy_one(self):
        proc = self.audit("--repos", "shop/web")
        tw.assert_exit(self, proc, tw.EXIT_OK)
        self.assertIn("shop/web", proc.stdout)
        self.assertNotIn("shop/api", proc.stdout)


if __name__ == "__main__":
    unittest.main()
