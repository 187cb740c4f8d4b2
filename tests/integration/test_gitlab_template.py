"""The GitLab CI job template (ci-templates/gitlab/tagwarden.gitlab-ci.yml, issue 12).

Its jobs run as a GitLab runner's bash shell runs them: `extends:` merged (hashes deep, the rest
replaced), the job's `variables:` expanded against the predefined CI_* variables and exported,
before_script then script in one `bash -eo pipefail` session, in a project directory. Against a local
docker-registry with htpasswd auth playing GitLab's registry (CI_REGISTRY, CI_REGISTRY_IMAGE,
CI_REGISTRY_USER/CI_REGISTRY_PASSWORD), with `tagwarden` on PATH (TAGWARDEN_BIN's directory):

- push writes the dotenv report (IMAGE_DIGEST, IMAGE_URI, IMAGE_TAGS) and keeps the JSON report, whose
  "ci" names the job (CI_JOB_URL, CI_COMMIT_SHA); the registry password is never printed;
- promote and verify jobs from the same template;
- in CI without a lock that spans runners the job fails (exit 3) and writes no dotenv.

The source is `oci:DIR` (what exists today); the template documents docker-archive:/oci-archive:.
"""

import copy
import json
import os
import re
import subprocess
import unittest

import yaml

import deps
import tw
from fixtures import RegistryTestCase, setUpModule  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(ROOT, "ci-templates", "gitlab", "tagwarden.gitlab-ci.yml")
SHA = "89abcdef0123456789abcdef0123456789abcdef"


def _merge(base, override):
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(jobs, name):
    job = jobs[name]
    parents = job.get("extends", [])
    parents = [parents] if isinstance(parents, str) else parents
    merged = {}
    for parent in parents:
        merged = _merge(merged, resolve(jobs, parent))
    merged = _merge(merged, {k: v for k, v in job.items() if k != "extends"})
    return merged


def expand(value, env):
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), str(value))


class GitlabTemplateTest(RegistryTestCase):
    registry_mode = "htpasswd"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(TEMPLATE, encoding="utf-8") as f:
            cls.jobs = yaml.safe_load(f)

    def predefined(self):
        env = tw.clean_env({"TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY": None})
        bin_dir = os.path.dirname(os.path.abspath(deps.tagwarden_bin()))
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        env.update({"CI": "true", "GITLAB_CI": "true", "CI_REGISTRY": self.host,
                    "CI_REGISTRY_IMAGE": f"{self.host}/{self.repo()}", "CI_REGISTRY_USER": self.registry.username,
                    "CI_REGISTRY_PASSWORD": self.registry.password, "CI_COMMIT_SHA": SHA, "CI_PIPELINE_IID": "7",
                    "CI_JOB_ID": "991", "CI_JOB_URL": "https://gitlab.example/acme/shop/-/jobs/991",
                    "CI_PROJECT_DIR": self.tmp})
        return env

    def run_job(self, template_job, variables):
        """Runs the template's job with the pipeline's own `variables` on top; returns (proc, dotenv or None)."""
        job = _merge(resolve(self.jobs, template_job), {"variables": variables})
        env = self.predefined()
        for key, value in job["variables"].items():
            env[key] = expand(value, env)
        self.assertIn("AWS_ID_TOKEN", job["id_tokens"])
        script = "\n".join(job.get("before_script", []) + job["script"])
        project = env["CI_PROJECT_DIR"]
        dotenv_path = os.path.join(project, job["artifacts"]["reports"]["dotenv"])
        if os.path.exists(dotenv_path):
            os.remove(dotenv_path)
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=project, env=env,
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        dotenv = None
        if os.path.exists(dotenv_path):
            with open(dotenv_path, encoding="utf-8") as f:
                dotenv = dict(line.split("=", 1) for line in f.read().splitlines() if line)
        for text in (proc.stdout, proc.stderr):
            self.assertNotIn(self.registry.password, text, "the registry password is never printed")
        return proc, dotenv

    def lock(self):
        return f"file://{self.class_tmp}/locks"

    def test_push_promote_verify_with_dotenv(self):
        layout, image = self.image()
        repo = self.repo()
        proc, dotenv = self.run_job(".tagwarden-push", {
            "TW_SOURCE": f"oci:{layout}", "TW_VERSION": "1.2.$CI_PIPELINE_IID", "TW_ENV": "dev",
            "TW_TAGS": "sha-$CI_COMMIT_SHA,latest", "TW_LOCK": self.lock(), "TW_ARGS": "--allow-no-lifecycle-policy"})
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(dotenv, {"IMAGE_DIGEST": image.digest, "IMAGE_URI": f"{self.host}/{repo}@{image.digest}",
                                  "IMAGE_TAGS": f"1.2.7-dev,sha-{SHA},latest"})
        self.assertEqual(set(self.registry.tags(repo)), {"1.2.7-dev", f"sha-{SHA}", "latest"})
        with open(os.path.join(self.tmp, "tagwarden-report.json"), encoding="utf-8") as f:
            report = json.load(f)
        self.assertEqual(report["ci"], {"provider": "gitlab", "runUrl": "https://gitlab.example/acme/shop/-/jobs/991",
                                        "commit": SHA})

        proc, dotenv = self.run_job(".tagwarden-promote", {"TW_VERSION": "1.2.7", "TW_LOCK": self.lock(),
                                                           "TW_ARGS": "--allow-no-lifecycle-policy"})
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(dotenv["IMAGE_DIGEST"], image.digest)
        self.assertEqual(dotenv["IMAGE_TAGS"], "1.2.7-prod")
        self.assertEqual(self.registry.tags(repo)["1.2.7-prod"], image.digest)

        proc, dotenv = self.run_job(".tagwarden-verify", {"TW_REPOSITORY": "$CI_REGISTRY_IMAGE:1.2.7-prod"})
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(dotenv, {"IMAGE_DIGEST": image.digest, "IMAGE_URI": f"{self.host}/{repo}@{image.digest}",
                                  "IMAGE_TAGS": "1.2.7-prod"})

    def test_rerun_reports_unchanged_tags(self):
        layout, image = self.image()
        variables = {"TW_SOURCE": f"oci:{layout}", "TW_VERSION": "3.0.0", "TW_ENV": "dev", "TW_LOCK": self.lock(),
                     "TW_ARGS": "--allow-no-lifecycle-policy"}
        for _ in range(2):
            proc, dotenv = self.run_job(".tagwarden-push", variables)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            self.assertEqual(dotenv["IMAGE_TAGS"], "3.0.0-dev")
            self.assertEqual(dotenv["IMAGE_DIGEST"], image.digest)

    def test_no_lock_in_ci_fails_the_job_without_dotenv(self):
        layout, _ = self.image()
        repo = self.repo()
        proc, dotenv = self.run_job(".tagwarden-push", {"TW_SOURCE": f"oci:{layout}", "TW_VERSION": "1.0.0",
                                                        "TW_ENV": "dev", "TW_ARGS": "--allow-no-lifecycle-policy"})
        self.assertEqual(proc.returncode, tw.EXIT_GUARD, proc.stdout + proc.stderr)
        self.assertIsNone(dotenv)
        self.assertIn("failed with exit 3", proc.stderr)
        self.assertIn("guard", proc.stderr)
        self.assert_no_manifest(repo)

    def test_wrong_registry_password_is_exit_7(self):
        layout, _ = self.image()
        env_over = {"TW_SOURCE": f"oci:{layout}", "TW_VERSION": "1.0.0", "TW_ENV": "dev", "TW_LOCK": self.lock(),
                    "TW_ARGS": "--allow-no-lifecycle-policy", "TW_USERNAME": self.registry.username,
                    "TW_PASSWORD": "wrong-password"}
        proc, dotenv = self.run_job(".tagwarden-push", env_over)
        self.assertEqual(proc.returncode, tw.EXIT_AUTH, proc.stdout + proc.stderr)
        self.assertIsNone(dotenv)


if __name__ == "__main__":
    unittest.main()
