"""Environment-suffixed tags: --version V --env E, the tag template and environment list of
tagwarden.yaml, and tags validated before any request is sent."""

import json
import unittest

import tw
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401


class EnvSuffixedTags(TagSafetyTestCase):

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()

    def target(self, repo, tag=None):
        return f"{self.registry.host}/{repo}" + (f":{tag}" if tag else "")

    def assert_no_request(self, mark, proc):
        sent = self.registry.requests()[mark:]
        self.assertEqual(sent, [], "an invalid tag must be refused before any request" + tw.describe(proc))

    def test_version_and_env_make_the_tag_and_rerun_is_unchanged(self):
        layout, image = self.image()
        repo = self.repo()
        first = self.push_json(f"oci:{layout}", self.target(repo), "--version", "1.4.2", "--env", "dev")
        self.assertEqual(first["digest"], image.digest)
        self.assertEqual(first["tags"], [{"tag": "1.4.2-dev", "status": "created"}])
        self.assertEqual(self.registry.tags(repo), {"1.4.2-dev": image.digest})

        second = self.push_json(f"oci:{layout}", self.target(repo), "--version", "1.4.2", "--env", "dev")
        self.assertEqual(second["tags"], [{"tag": "1.4.2-dev", "status": "unchanged"}])
        self.assertEqual(second["manifestsWritten"], 0, second)
        self.assertEqual(self.registry.tags(repo), {"1.4.2-dev": image.digest})
        self.assertEqual(self.registry.manifest_digests(repo), {image.digest})

    def test_env_tag_with_target_tag_and_tag_flags(self):
        layout, image = self.image()
        repo = self.repo()
        report = self.push_json(f"oci:{layout}", self.target(repo, "latest"), "--version", "2.0.0", "--env", "qa",
                                "--tag", "git-abc123")
        self.assertEqual(self.tag_statuses(report),
                         {"2.0.0-qa": "created", "latest": "created", "git-abc123": "created"})
        self.assertEqual(self.registry.tags(repo),
                         {"2.0.0-qa": image.digest, "latest": image.digest, "git-abc123": image.digest})

    def test_custom_template_from_tagwarden_yaml(self):
        layout, image = self.image()
        repo = self.repo()
        cwd = self.workdir("tag_template: '{env}-{version}'\nenvironments: [dev, prod]\n")
        report = self.push_json(f"oci:{layout}", self.target(repo), "--version", "1.4.2", "--env", "dev", cwd=cwd)
        self.assertEqual(report["tags"], [{"tag": "dev-1.4.2", "status": "created"}])
        self.assertEqual(self.registry.tags(repo), {"dev-1.4.2": image.digest})

    def test_config_file_named_by_tagwarden_config(self):
        layout, image = self.image()
        repo = self.repo()
        elsewhere = self.workdir("tag_template: 'v{version}.{env}'\n")
        report = self.push_json(f"oci:{layout}", self.target(repo), "--version", "3", "--env", "stage",
                                env={"TAGWARDEN_CONFIG": f"{elsewhere}/tagwarden.yaml"})
        self.assertEqual(report["tags"], [{"tag": "v3.stage", "status": "created"}])

    def test_template_from_environment_variable(self):
        layout, image = self.image()
        repo = self.repo()
        report = self.push_json(f"oci:{layout}", self.target(repo), "--version", "7.1", "--env", "dev",
                                env={"TAGWARDEN_TAG_TEMPLATE": "{version}_{env}"})
        self.assertEqual(report["tags"], [{"tag": "7.1_dev", "status": "created"}])
        self.assertEqual(self.registry.tags(repo), {"7.1_dev": image.digest})

    def test_unlisted_environment_is_refused_before_any_request(self):
        layout, _image = self.image()
        repo = self.repo()
        cwd = self.workdir({"environments": ["dev", "prod"]})
        mark = len(self.registry.requests())
        proc = self.push(f"oci:{layout}", self.target(repo), "--version", "1.4.2", "--env", "qa", cwd=cwd)
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_stderr_mentions(proc, "qa")
        self.assert_no_request(mark, proc)
        self.assert_nothing_stored(self.registry, repo, proc)

        # The listed ones work from the same directory.
        report = self.push_json(f"oci:{layout}", self.target(repo), "--version", "1.4.2", "--env", "prod", cwd=cwd)
        self.assertEqual(report["tags"], [{"tag": "1.4.2-prod", "status": "created"}])

    def test_invalid_resulting_tag_is_refused_before_any_request(self):
        layout, _image = self.image()
        repo = self.repo()
        cases = [
            ("1.4.2+build.7", "dev"),  # '+' is not in the tag grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
            ("1.4.2", "dev/x"),        # '/' neither
            ("9" * 130, "dev"),        # longer than 128 characters
        ]
        for version, env in cases:
            with self.subTest(version=version[:20], env=env):
                mark = len(self.registry.requests())
                proc = self.push(f"oci:{layout}", self.target(repo), "--version", version, "--env", env)
                self.assert_exit(proc, tw.EXIT_USAGE)
                self.assert_no_request(mark, proc)
        # A template that starts the tag with a character the grammar forbids first.
        cwd = self.workdir("tag_template: '.{version}-{env}'\n")
        mark = len(self.registry.requests())
        proc = self.push(f"oci:{layout}", self.target(repo), "--version", "1", "--env", "dev", cwd=cwd)
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_no_request(mark, proc)
        self.assert_nothing_stored(self.registry, repo, proc)

    def test_invalid_plain_tag_flag_is_refused_before_any_request(self):
        layout, _image = self.image()
        repo = self.repo()
        mark = len(self.registry.requests())
        proc = self.push(f"oci:{layout}", self.target(repo, "ok"), "--tag", "bad tag!")
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_no_request(mark, proc)

    def test_version_without_env_is_a_usage_error(self):
        layout, _image = self.image()
        for args in (["--version", "1.0"], ["--env", "dev"]):
            with self.subTest(args=args):
                proc = self.push(f"oci:{layout}", self.target(self.repo()), *args)
                self.assert_exit(proc, tw.EXIT_USAGE)

    def test_bad_config_is_a_usage_error(self):
        layout, _image = self.image()
        for text in ("tag_template: '{version}'\n",          # no {env}
                     "tag_templat: '{version}-{env}'\n",      # a typo must not be ignored
                     "environments: dev\n"):                  # not a list
            with self.subTest(config=text):
                proc = self.push(f"oci:{layout}", self.target(self.repo()), "--version", "1", "--env", "dev",
                                 cwd=self.workdir(text))
                self.assert_exit(proc, tw.EXIT_USAGE)
        self.assertEqual(self.registry.repositories(), [])

    def test_dry_run_writes_no_tag_no_journal_and_takes_no_lock(self):
        layout, image = self.image()
        repo = self.repo()
        mark = len(self.registry.requests())
        proc = self.push(f"oci:{layout}", self.target(repo), "--version", "1.4.2", "--env", "dev", "--dry-run",
                         "--output", "json")
        self.assert_exit(proc, 0)
        self.assertTrue(tw.parse_json(self, proc)["dryRun"])
        writes = [r for r in self.registry.requests()[mark:] if r.method in ("POST", "PUT", "PATCH", "DELETE")]
        self.assertEqual(writes, [], "a dry run sends no write request")
        self.assert_nothing_stored(self.registry, repo, proc)
        self.assertEqual(self.journals(), {})
        self.assertEqual(self.lock_list()["locks"], [], "a dry run takes no lock")

    def test_json_is_one_document(self):
        layout, image = self.image()
        proc = self.push(f"oci:{layout}", self.target(self.repo()), "--version", "1", "--env", "dev",
                         "--output", "json")
        self.assert_exit(proc, 0)
        self.assertEqual(json.loads(proc.stdout)["digest"], image.digest)


if __name__ == "__main__":
    unittest.main()
