"""The GitHub composite action against the ECR test bed (issue 12): what a workflow pushing to ECR sees.

- AWS credentials from the runner's OIDC token, end to end: no AWS key in the job's environment, only
  AWS_ROLE_ARN and the OIDC request variables; the action fetches the token (a local endpoint plays
  GitHub's), writes AWS_WEB_IDENTITY_TOKEN_FILE, and tagwarden's credential chain exchanges it with STS
  (AssumeRoleWithWebIdentity, served by moto behind the bed's front) for the keys that sign the ECR calls;
- the ECR guards' verdicts in the step summary (lifecycle policy from GetLifecyclePolicy, quota from
  Service Quotas);
- a promotion refused by the survival guard (a `dev-` count rule that would expire the image once it is
  also tagged prod): the summary names the rule that refused, and nothing is written.
"""

import json
import os
import tempfile
import time

import tw
from actions_runner import OidcTokenServer, run_composite
from ecr_images import DAY, GuardEcrCase, UNTAGGED_14_DAYS, dev_count_rule, policy, start_module_bed, stop_module_bed
from test_github_action import ACTION, RUN_ID, SHA, job_env  # plain names, no TestCase imported

_state = {}


def setUpModule():  # noqa: N802 (unittest's name)
    start_module_bed(_state, "tw-action-ecr-")


def tearDownModule():  # noqa: N802
    stop_module_bed(_state)


class ActionOnEcr(GuardEcrCase):
    state = _state

    def run_action(self, inputs, env, workspace=None):
        runner_temp = tempfile.mkdtemp(prefix="runner-", dir=self.tmp)
        result = run_composite(ACTION, inputs, workspace or self.tmp, env, runner_temp=runner_temp)
        return result

    def action_env(self, **extra):
        env = job_env()
        for key, value in self.env().items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        env.update(extra)
        return env

    def describe(self, result):
        return "\n".join(f"--- {i}: {s.outcome}\n{s.stdout[-3000:]}\n{s.stderr[-3000:]}"
                         for i, s in result.steps.items()) + "\n--- summary\n" + result.summary

    def test_push_with_the_runners_oidc_token(self):
        repo = self.create("action/oidc", lifecycle_policy=UNTAGGED_14_DAYS)
        layout, info = self.image()
        env = self.action_env(AWS_ROLE_ARN="arn:aws:iam::123456789012:role/github-push",
                              ACTIONS_ID_TOKEN_REQUEST_TOKEN="request-token-9")
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(key, None)
        before = len(self.bed.api_calls(operation="AssumeRoleWithWebIdentity"))
        with OidcTokenServer("request-token-9", "eyJ0eXAiOiJKV1QifQ.github-oidc.sig") as server:
            env["ACTIONS_ID_TOKEN_REQUEST_URL"] = server.url
            result = self.run_action({"source": f"oci:{layout}", "repository": self.target(repo), "version": "1.2.3",
                                      "env": "dev", "lock": f"file://{self.tmp}/locks", "args": "--plain-http"}, env)
        self.assertFalse(result.failed, self.describe(result))
        self.assertEqual(len(server.requests), 1)
        self.assertEqual(result.outputs["digest"], info.manifest_digest)
        self.assertEqual(self.images(repo), {info.manifest_digest: ["1.2.3-dev"]})
        calls = self.bed.api_calls(operation="AssumeRoleWithWebIdentity")
        self.assertEqual(len(calls), before + 1, "tagwarden exchanged the OIDC token with STS")
        ecr_keys = {c.access_key for c in self.bed.api_calls(operation="GetAuthorizationToken")}
        self.assertTrue(ecr_keys)
        self.assertNotIn(self.bed.access_key_id, ecr_keys, "the ECR calls are signed with the role's keys")
        self.assertRegex(result.summary, r"\| lifecycle-policy \| ✅ passed \|")
        self.assertRegex(result.summary, r"\| quota \| ✅ passed \| .*Service Quotas")
        with open(result.outputs["report"], encoding="utf-8") as f:
            report = json.load(f)
        self.assertEqual(report["ci"]["commit"], SHA)
        self.assertIn(RUN_ID, report["lock"]["owner"]["ciUrl"])
        for text in (result.stdout, result.stderr, result.summary):
            self.assertNotIn("eyJ0eXAiOiJKV1QifQ.github-oidc.sig",
                             text.replace("::add-mask::eyJ0eXAiOiJKV1QifQ.github-oidc.sig", ""))

    def test_survival_refusal_names_the_rule_in_the_summary(self):
        repo = self.create("action/trap", lifecycle_policy=policy(dev_count_rule(1)))
        cwd = self.config_dir('tag_template: "{env}-{version}"\n')
        digests = []
        for n in (1, 2, 3):
            layout, info = self.image(f"build-{n}")
            tw.assert_exit(self, self.push(layout, self.target(repo), "--version", str(n), "--env", "dev", cwd=cwd), 0)
            digests.append(info.manifest_digest)
        for n, digest in enumerate(digests, start=1):
            self.bed.set_pushed_at(repo, digest, time.time() - (11 - n) * DAY)
        puts = len(self.bed.api_calls(operation="PutImage"))
        result = self.run_action({"command": "promote", "repository": self.target(repo), "version": "1",
                                  "from-env": "dev", "to-env": "prod", "lock": f"file://{self.tmp}/locks",
                                  "working-directory": cwd, "args": "--plain-http"}, self.action_env())
        self.assertEqual(result.steps["run"].returncode, tw.EXIT_GUARD, self.describe(result))
        self.assertIn("### ❌ tagwarden promote refused by a guard (exit 3)", result.summary)
        refused = [line for line in result.summary.splitlines() if line.startswith("| survival | ❌ refused |")]
        self.assertEqual(len(refused), 1, result.summary)
        self.assertRegex(refused[0], r"(rulePriority|priority) ?1\b", "the rule that refused, by priority")
        self.assertIn("dev-", refused[0], "and by its selection")
        self.assertIn(digests[0].split(":", 1)[1][:12], refused[0], "and the image it would expire")
        self.assertEqual(len(self.bed.api_calls(operation="PutImage")), puts, "nothing written")
        self.assertEqual(self.images(repo)[digests[0]], ["dev-1"])
        self.assertNotIn(self.bed.secret_access_key, result.summary + result.stdout + result.stderr)
