"""A lock that spans runners, or an honest refusal (issue 9).

The default lock (`file://$TMPDIR/tagwarden-locks`) is per machine; CI is many machines. In CI (any
of CI, GITHUB_ACTIONS, CODEBUILD_BUILD_ID, GITLAB_CI set) with no lock configured (no --lock, no
TAGWARDEN_LOCK, no `lock:` in tagwarden.yaml), a push or promotion to a registry whose tags can move
is refused before anything is written: exit 3, a guard named `lock`, and the fix (`--lock
dynamodb://…` / `etcd://…`, or an explicit `--lock file://…` to accept a per-machine lock).

- a plain registry (tags can always move): refused; an explicit lock of any kind proceeds;
- ECR (the test bed): an IMMUTABLE repository proceeds (the registry refuses to move a tag: it is
  the arbiter, and stderr says so); MUTABLE is refused; IMMUTABLE_WITH_EXCLUSION and
  MUTABLE_WITH_EXCLUSION are judged per tag;
- the tag-race incident: eight runners (each its own TMPDIR and state dir, CI=true, no lock) push
  eight different builds as 1.0.0-dev to a MUTABLE ECR repository: all are refused and nothing is
  stored. With `--lock dynamodb://…` exactly one wins and the others get exit 4; the registry's
  data plane (the docker-registry behind the bed, not moto's image list: moto drops an untagged
  image when its tag moves, ECR keeps it) stores exactly the winner's manifest.

tw.clean_env strips every CI marker; these tests set them through ``env=``.
"""

import itertools
import os
import subprocess
import unittest

import deps
import tw
from dynamodb import DynamoDb
from ecr_images import UNTAGGED_14_DAYS, GuardEcrCase, error_text, start_module_bed, stop_module_bed
from tagsafety import TagSafetyTestCase

_state = {}
_logs = itertools.count()

CI_MARKERS = ({"CI": "true"}, {"GITHUB_ACTIONS": "true"}, {"CODEBUILD_BUILD_ID": "app:0d4c5e"},
              {"GITLAB_CI": "true"})
RACERS = 8
TAG = "1.0.0-dev"


def setUpModule():  # noqa: N802 (unittest's name)
    deps.require("docker-registry")
    deps.tagwarden_bin()
    start_module_bed(_state, "tw-ci-lock-")


def tearDownModule():  # noqa: N802
    stop_module_bed(_state)


def assert_lock_refusal(case, proc):
    """Exit 3 from the guard named `lock`, with the fix: a shared backend, or an explicit file:// lock."""
    tw.assert_exit(case, proc, tw.EXIT_GUARD)
    text = error_text(proc) or proc.stderr
    case.assertIn("lock", text.lower(), "the refusal names the guard `lock`" + tw.describe(proc))
    for fix in ("dynamodb://", "etcd://", "file://"):
        case.assertIn(fix, proc.stderr, f"the refusal gives the fix {fix}…" + tw.describe(proc))
    case.assertEqual(proc.stdout.strip(), "", "a refusal prints no result" + tw.describe(proc))


class PlainRegistryInCi(TagSafetyTestCase):

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.repo_name = self.repo()
        self.target = f"{self.registry.host}/{self.repo_name}"

    def test_default_lock_refused_in_ci_and_nothing_written(self):
        layout, image = self.image("a")
        for marker in CI_MARKERS:
            with self.subTest(marker=marker):
                mark = len(self.registry.requests())
                proc = self.push(f"oci:{layout}", self.target, "--version", "1.0", "--env", "dev",
                                 env={**marker, "TAGWARDEN_LOCK": None, "TMPDIR": self.runner("r")["TMPDIR"]})
                assert_lock_refusal(self, proc)
                self.assert_nothing_stored(self.registry, self.repo_name, proc)
                writes = [r for r in self.registry.requests()[mark:] if r.method in ("POST", "PUT", "PATCH", "DELETE")]
                self.assertEqual(writes, [], "refused before anything is written" + tw.describe(proc))

    def test_promote_in_ci_without_a_lock_is_refused(self):
        layout, image = self.image("a")
        self.push_json(f"oci:{layout}", self.target, "--version", "1.0", "--env", "dev")
        proc = self.run_tw("promote", f"{self.target}:1.0", "--from", "dev", "--to", "prod", "--plain-http",
                           env={"GITHUB_ACTIONS": "true", "CI": "true", "TAGWARDEN_LOCK": None})
        assert_lock_refusal(self, proc)
        self.assertEqual(self.registry.tags(self.repo_name), {"1.0-dev": image.digest})

    def test_a_configured_lock_proceeds_in_ci(self):
        layout, image = self.image("a")
        ci = {"CI": "true", "TAGWARDEN_LOCK": None}
        # First: the refusal, so the lines below test what makes the difference.
        refused = self.push(f"oci:{layout}", f"{self.target}:refused", env=ci)
        assert_lock_refusal(self, refused)
        explicit = self.push(f"oci:{layout}", f"{self.target}:flag", "--lock", self.lock_url, env=ci)
        self.assert_exit(explicit, 0)
        from_env = self.push(f"oci:{layout}", f"{self.target}:env", env={"CI": "true"})  # TAGWARDEN_LOCK set
        self.assert_exit(from_env, 0)
        cwd = self.workdir(f"lock: 'file://{self.lock_dir}'\n")
        from_config = self.push(f"oci:{layout}", f"{self.target}:config", env=ci, cwd=cwd)
        self.assert_exit(from_config, 0)
        self.assertEqual(self.registry.tags(self.repo_name),
                         {"flag": image.digest, "env": image.digest, "config": image.digest})


class EcrInCi(GuardEcrCase):
    state = _state

    def ci_env(self, runner="r", **extra):
        """The bed's environment on a CI runner of its own (TMPDIR, state dir), with no lock configured."""
        root = os.path.join(self.tmp, "runners", runner)
        os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
        env = self.env(CI="true", TAGWARDEN_LOCK=None, TMPDIR=os.path.join(root, "tmp"),
                       TAGWARDEN_STATE_DIR=os.path.join(root, "state"))
        env.update(extra)
        return env

    def push_ci(self, layout, target, *args, env=None):
        """push with no --lock (GuardEcrCase.run_tw would add one)."""
        return tw.run_tagwarden("push", f"oci:{layout}", target, "--plain-http", *args, env=env or self.ci_env())

    def spawn_ci(self, layout, target, *args, env):
        out = open(os.path.join(self.tmp, f"racer-{next(_logs)}.log"), "w+")
        proc = subprocess.Popen([deps.tagwarden_bin(), "push", f"oci:{layout}", target, "--plain-http", *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=out,
                                env=tw.clean_env(env), cwd=self.tmp, start_new_session=True)
        proc._err = out
        return proc

    def finish_all(self, procs):
        results = []
        for proc in procs:
            try:
                stdout, _ = proc.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, _ = proc.communicate()
            proc._err.seek(0)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout.decode("utf-8", "replace"),
                                                       proc._err.read()))
            proc._err.close()
        return results

    def data_plane_manifests(self, repo):
        return self.bed.registry.manifest_digests(repo)

    def test_mutable_repository_refused_in_ci(self):
        repo = self.create("ci/mutable", mutability="MUTABLE")
        layout, _info = self.image()
        mark, puts = self.mark(), self.put_image_calls()
        proc = self.push_ci(layout, self.target(repo, "1.0.0"))
        assert_lock_refusal(self, proc)
        self.assert_nothing_written(mark, puts, proc)
        self.assertEqual(self.data_plane_manifests(repo), set())

    def test_immutable_repository_proceeds_and_says_the_registry_is_the_arbiter(self):
        repo = self.create("ci/immutable", mutability="IMMUTABLE")
        layout, info = self.image()
        proc = self.push_ci(layout, self.target(repo, "1.0.0"), "--output", "json")
        tw.assert_exit(self, proc, 0)
        self.assertEqual(self.images(repo), {info.manifest_digest: ["1.0.0"]})
        said = [line for line in proc.stderr.splitlines()
                if "immutable" in line.lower() and ("arbiter" in line.lower() or "lock" in line.lower())]
        self.assertTrue(said, "stderr must say the registry (IMMUTABLE tags) is the arbiter, not a lock"
                        + tw.describe(proc))

    def test_immutable_with_exclusion_is_judged_per_tag(self):
        repo = "ci/immutable-with-exclusion"
        self.bed.create_repository(repo, mutability="IMMUTABLE_WITH_EXCLUSION", exclusion_filters=["latest*"])
        self.bed.put_lifecycle_policy(repo, self.untagged_policy())
        layout, info = self.image()
        mark, puts = self.mark(), self.put_image_calls()
        refused = self.push_ci(layout, self.target(repo, "2.0.0"), "--tag", "latest")
        assert_lock_refusal(self, refused)
        self.assertIn("latest", refused.stderr, "the refusal names the tag that can move" + tw.describe(refused))
        self.assert_nothing_written(mark, puts, refused)
        accepted = self.push_ci(layout, self.target(repo, "2.0.0"))
        tw.assert_exit(self, accepted, 0)
        self.assertEqual(self.images(repo), {info.manifest_digest: ["2.0.0"]})

    def test_mutable_with_exclusion_is_judged_per_tag(self):
        repo = "ci/mutable-with-exclusion"
        self.bed.create_repository(repo, mutability="MUTABLE_WITH_EXCLUSION", exclusion_filters=["release-*"])
        self.bed.put_lifecycle_policy(repo, self.untagged_policy())
        layout, info = self.image()
        mark, puts = self.mark(), self.put_image_calls()
        refused = self.push_ci(layout, self.target(repo, "dev-1"))
        assert_lock_refusal(self, refused)
        self.assert_nothing_written(mark, puts, refused)
        accepted = self.push_ci(layout, self.target(repo, "release-1"))
        tw.assert_exit(self, accepted, 0)
        self.assertEqual(self.images(repo), {info.manifest_digest: ["release-1"]})

    def untagged_policy(self):
        return UNTAGGED_14_DAYS

    def test_eight_runners_race_one_tag(self):
        repo = self.create("ci/tag-race", mutability="MUTABLE")
        builds = [self.image(f"build-{i}") for i in range(RACERS)]
        self.assertEqual(len({info.manifest_digest for _layout, info in builds}), RACERS)
        target = self.target(repo)

        # 1. No lock configured: every runner is refused, nothing is stored.
        mark, puts = self.mark(), self.put_image_calls()
        procs = [self.spawn_ci(layout, target, "--version", "1.0.0", "--env", "dev", env=self.ci_env(f"a{i}"))
                 for i, (layout, _info) in enumerate(builds)]
        results = self.finish_all(procs)
        outputs = "".join(tw.describe(r) for r in results)
        self.assertEqual([r.returncode for r in results], [tw.EXIT_GUARD] * RACERS,
                         "every runner without a shared lock is refused" + outputs)
        for result in results:
            assert_lock_refusal(self, result)
        self.assert_nothing_written(mark, puts, results[0])
        self.assertEqual(self.data_plane_manifests(repo), set(), "nothing stored" + outputs)

        # 2. A DynamoDB lock: one winner, the others exit 4; the data plane stores the winner only.
        ddb = DynamoDb()
        ddb.start()
        self.addCleanup(ddb.stop)
        procs = [self.spawn_ci(layout, target, "--version", "1.0.0", "--env", "dev", "--output", "json",
                               "--lock", ddb.url, "--lock-timeout", "120s", env=self.ci_env(f"b{i}"))
                 for i, (layout, _info) in enumerate(builds)]
        results = self.finish_all(procs)
        outputs = "".join(tw.describe(r) for r in results)
        winners = [r for r in results if r.returncode == 0]
        self.assertEqual(len(winners), 1, "exactly one runner wins" + outputs)
        losers = [r for r in results if r.returncode != 0]
        self.assertEqual([r.returncode for r in losers], [tw.EXIT_TAG_CONFLICT] * (RACERS - 1),
                         "every other runner gets a tag conflict" + outputs)
        winning = tw.parse_json(self, winners[0])["digest"]
        self.assertEqual(self.bed.registry.tags(repo), {TAG: winning})
        self.assertEqual(self.data_plane_manifests(repo), {winning},
                         "the registry stores exactly the winner's manifest: no loser's image untagged" + outputs)
        self.assertEqual(ddb.items(), [], "every lock item (and journal) is gone")
        self.assertNoBedErrors()


if __name__ == "__main__":
    unittest.main()
