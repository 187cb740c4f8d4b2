"""Bad input is refused with the right exit code, a message naming the problem, and nothing stored."""

import json
import os
import time
import unittest

import make_image
import tw
from fixtures import RegistryTestCase, setUpModule  # noqa: F401


def short(digest):
    """The forms a message may use to name a digest: full, hex only, or the 12-character short hex."""
    hex_part = digest.split(":", 1)[1]
    return digest, hex_part, hex_part[:12]


class BadLayout(RegistryTestCase):
    registry_mode = "plain"

    def push_refused(self, source, repo, *args, code=tw.EXIT_USAGE):
        proc = self.push(source, self.target(repo, "1.0.0"), *args)
        self.assert_exit(proc, code)
        self.assert_no_manifest(repo, proc)
        self.assertEqual(proc.stdout.strip(), "", "a refused push prints no result" + tw.describe(proc))
        return proc

    def test_missing_layer_blob(self):
        layout, image = self.image()
        make_image.remove_blob(layout, image.layers[1].digest)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.layers[1].digest))

    def test_missing_config_blob(self):
        layout, image = self.image()
        make_image.remove_blob(layout, image.config.digest)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.config.digest))

    def test_missing_manifest_blob(self):
        layout, image = self.image()
        make_image.remove_blob(layout, image.manifest.digest)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.manifest.digest))

    def test_missing_child_of_index(self):
        layout, index = self.index()
        missing = index.children[1].layers[0].digest
        make_image.remove_blob(layout, missing)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(missing))

    def test_blob_bytes_do_not_match_digest_same_size(self):
        layout, image = self.image(layers=2, layer_size=64 * 1024)
        corrupted = image.layers[0]
        make_image.flip_blob_bytes(layout, corrupted.digest)
        self.assertEqual(os.path.getsize(make_image.blob_path(layout, corrupted.digest)), corrupted.size)
        repo = self.repo()
        proc = self.push_refused(f"oci:{layout}", repo)
        self.assert_stderr_mentions(proc, *short(corrupted.digest))
        self.assertNotIn(corrupted.digest, self.registry.layer_digests(repo))

    def test_corrupted_config_same_size(self):
        layout, image = self.image()
        make_image.flip_blob_bytes(layout, image.config.digest, count=2)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.config.digest))

    def test_truncated_blob(self):
        layout, image = self.image()
        make_image.truncate_blob(layout, image.layers[0].digest)
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, *short(image.layers[0].digest))

    def test_malformed_index_json(self):
        for kind in sorted(make_image.MALFORMED_INDEXES):
            with self.subTest(kind=kind):
                layout, _image = self.image(f"malformed-{kind}")
                make_image.write_malformed_index(layout, kind)
                proc = self.push_refused(f"oci:{layout}", self.repo(kind))
                self.assert_stderr_mentions(proc, "index.json")

    def test_missing_index_json(self):
        layout, _image = self.image()
        os.unlink(os.path.join(layout, "index.json"))
        proc = self.push_refused(f"oci:{layout}", self.repo())
        self.assert_stderr_mentions(proc, "index.json")

    def test_unknown_ref_in_layout(self):
        layout, _image = self.image(ref_name="present")
        proc = self.push_refused(f"oci:{layout}:absent", self.repo())
        self.assert_stderr_mentions(proc, "absent")

    def test_nonexistent_directory(self):
        missing = os.path.join(self.tmp, "no-such-layout")
        proc = self.push_refused(f"oci:{missing}", self.repo())
        self.assert_stderr_mentions(proc, "no-such-layout")

    def test_unknown_transport(self):
        layout, _image = self.image()
        proc = self.push_refused(f"nosuchtransport:{layout}", self.repo())
        self.assert_stderr_mentions(proc, "nosuchtransport")

    def test_invalid_repository_reference(self):
        layout, _image = self.image()
        mark = len(self.registry.requests())
        for bad in ("UPPER/case", "double//slash", "trailing-/x", "-leading/x"):
            with self.subTest(repository=bad):
                proc = tw.run_tagwarden("push", f"oci:{layout}", f"{self.host}/{bad}:1.0.0")
                self.assert_exit(proc, tw.EXIT_USAGE)
                self.assert_stderr_mentions(proc, bad)
        self.assertEqual(self.registry.requests()[mark:], [],
                         "an invalid reference is refused before any request")

    def test_invalid_tags(self):
        layout, _image = self.image()
        repo = self.repo()
        long_tag = "t" * 129
        cases = [("--tag=-bad", "-bad"), ("--tag=.bad", ".bad"), ("--tag=bad tag", "bad tag"),
                 ("--tag=bad/tag", "bad/tag"), (f"--tag={long_tag}", long_tag[:40])]
        for flag, shown in cases:
            with self.subTest(tag=flag):
                proc = self.push(f"oci:{layout}", self.target(repo, "good"), flag)
                self.assert_exit(proc, tw.EXIT_USAGE)
                self.assert_stderr_mentions(proc, shown)
                self.assert_no_manifest(repo, proc)

    def test_invalid_tag_in_target(self):
        layout, _image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", f"{self.host}/{repo}:.hidden")
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_no_manifest(repo, proc)

    def test_verify_invalid_reference(self):
        proc = tw.run_tagwarden("verify", f"{self.host}/UPPER/case:1")
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_stderr_mentions(proc, "UPPER/case")

    def test_unknown_option_is_usage(self):
        layout, _image = self.image()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(self.repo(), "1"), "--no-such-option")
        self.assert_exit(proc, tw.EXIT_USAGE)


class RefusedBeforeAnyRequest(RegistryTestCase):
    """Each bad option is exit 2 with a message naming it and the fix, before the registry hears a thing."""
    registry_mode = "plain"

    def assert_refused_quietly(self, proc, *mentions):
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assertEqual(proc.stdout.strip(), "", "a refused command prints no result" + tw.describe(proc))
        for mention in mentions:
            self.assert_stderr_mentions(proc, mention)

    def promote(self, repo, *args, env=None, cwd=None):
        return tw.run_tagwarden("promote", self.target(repo, "1.0.0"), "--from", "dev", "--to", "prod", *args,
                                *self.tls_args(), env=env, cwd=cwd)

    def test_push_options(self):
        layout, _image = self.image()
        repo = self.repo()
        cases = [
            (["--lock-ttl", "1s"], ["--lock-ttl", "at least 5s"]),
            (["--lock-ttl", "abc"], ["--lock-ttl 'abc'", "60s"]),
            (["--lock-timeout", "abc"], ["--lock-timeout 'abc'", "60s"]),
            (["--quota", "0"], ["--quota '0'", "e.g. --quota 10000"]),
            (["--quota", "-5"], ["--quota '-5'", "e.g. --quota 10000"]),
            (["--quota", "lots"], ["--quota 'lots'"]),
            (["--quota-threshold", "1.5"], ["--quota-threshold 1.5", "(0, 1]"]),
            (["--quota-threshold", "0"], ["--quota-threshold 0", "(0, 1]"]),
            (["--quota-threshold", "abc"], ["--quota-threshold 'abc'", "e.g. 0.9"]),
            (["--quota-threshold", "0.9x"], ["--quota-threshold '0.9x'"]),
            (["--quota-threshold", "nan"], ["--quota-threshold nan", "(0, 1]"]),
            (["--jobs", "0"], ["--jobs", "1 to 64"]),
            (["--jobs", "65"], ["--jobs", "1 to 64"]),
            (["--output", "xml"], ["--output", "json"]),
            (["--protect", os.path.join(self.tmp, "no-such-protect-file")], ["no-such-protect-file", "does not exist"]),
            (["--protect", self.tmp], ["--protect", "is a directory"]),
        ]
        mark = len(self.registry.requests())
        for args, mentions in cases:
            with self.subTest(args=args):
                proc = self.push(f"oci:{layout}", self.target(repo, "1.0.0"), *args)
                self.assert_refused_quietly(proc, *mentions)
        self.assertEqual(self.registry.requests()[mark:], [], "bad options are refused before any request")
        self.assert_no_manifest(repo)

    def test_promote_options(self):
        repo = self.repo()
        cases = [
            (["--to-repo", ""], ["--to-repo is empty"]),
            (["--referrers"], ["--referrers", "--to-repo"]),
            (["--platform", "linux"], ["--platform 'linux'", "linux/amd64"]),
            (["--platform", "linux/amd64", "--platform", "linux//v8"], ["--platform 'linux//v8'"]),
            (["--platform", "a/b/c/d"], ["--platform 'a/b/c/d'"]),
            (["--lock-timeout", "abc"], ["--lock-timeout 'abc'"]),
            (["--lock-ttl", "abc"], ["--lock-ttl 'abc'"]),
            (["--lock-ttl", "1s"], ["at least 5s"]),
            (["--quota", "0"], ["--quota '0'"]),
            (["--quota-threshold", "2"], ["--quota-threshold 2"]),
            (["--protect", os.path.join(self.tmp, "missing-digests")], ["missing-digests"]),
            (["--jobs", "0"], ["--jobs"]),
            (["--output", "yaml"], ["--output"]),
        ]
        mark = len(self.registry.requests())
        for args, mentions in cases:
            with self.subTest(args=args):
                self.assert_refused_quietly(self.promote(repo, *args), *mentions)
        self.assertEqual(self.registry.requests()[mark:], [], "bad options are refused before any request")

    def test_duplicate_yaml_key(self):
        layout, _image = self.image()
        repo = self.repo()
        documents = {
            "top": ("lock_ttl: 30s\nquota: 100\nlock_ttl: 60s\n", "lock_ttl", "tagwarden.yaml:3"),
            "nested": (f"repositories:\n  {self.host}/{repo}:\n    quota: 5000\n    quota: 6000\n", "quota",
                       "tagwarden.yaml:4"),
        }
        mark = len(self.registry.requests())
        for name, (text, key, where) in documents.items():
            with self.subTest(document=name):
                cwd = os.path.join(self.tmp, f"cfg-{name}")
                os.makedirs(cwd, exist_ok=True)
                with open(os.path.join(cwd, "tagwarden.yaml"), "w") as f:
                    f.write(text)
                creds, password = self.cred_args()
                proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), *self.tls_args(), *creds,
                                        stdin=password, cwd=cwd)
                self.assert_refused_quietly(proc, where, f"{key}' is given twice")
                self.assert_refused_quietly(self.promote(repo, cwd=cwd), where, "given twice")
        self.assertEqual(self.registry.requests()[mark:], [], "a bad tagwarden.yaml is refused before any request")

    def test_bad_credential_helper_timeout_variable(self):
        layout, _image = self.image()
        repo = self.repo()
        mark = len(self.registry.requests())
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0.0"),
                         env={"TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT": "soon"})
        self.assert_refused_quietly(proc, "TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT", "10s")
        self.assertEqual(self.registry.requests()[mark:], [])

    def test_bad_environment_and_yaml_values(self):
        layout, _image = self.image()
        repo = self.repo()
        cwd = os.path.join(self.tmp, "cfg-quota")
        os.makedirs(cwd, exist_ok=True)
        with open(os.path.join(cwd, "tagwarden.yaml"), "w") as f:
            f.write("quota: 0\n")
        creds, password = self.cred_args()
        mark = len(self.registry.requests())
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), *self.tls_args(), *creds,
                                stdin=password, cwd=cwd)
        self.assert_refused_quietly(proc, "quota must be a positive number")
        for value in ("nan", "0.9x", "2"):
            with self.subTest(TAGWARDEN_QUOTA_THRESHOLD=value):
                proc = self.push(f"oci:{layout}", self.target(repo, "1.0.0"),
                                 env={"TAGWARDEN_QUOTA_THRESHOLD": value})
                self.assert_refused_quietly(proc, "TAGWARDEN_QUOTA_THRESHOLD")
        self.assertEqual(self.registry.requests()[mark:], [])

    def test_policy_simulate_images_directory(self):
        policy = os.path.join(self.tmp, "policy.json")
        with open(policy, "w") as f:
            f.write('{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": '
                    '"imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}')
        proc = tw.run_tagwarden("policy", "simulate", "--policy", policy, "--images", self.tmp)
        self.assert_refused_quietly(proc, "is a directory")
        proc = tw.run_tagwarden("policy", "simulate", "--policy", policy,
                                "--images", os.path.join(self.tmp, "absent.json"))
        self.assert_refused_quietly(proc, "absent.json", "does not exist")


class BadCredentials(RegistryTestCase):
    registry_mode = "htpasswd"

    def test_wrong_credentials(self):
        layout, _image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                "--username", self.registry.username, "--password-stdin", stdin="nope\n")
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assert_no_manifest(repo, proc)
        tw.assert_no_secret(self, proc, tw.basic_auth(self.registry.username, "nope"))

    def test_unknown_user(self):
        layout, _image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                "--username", "intruder", "--password-stdin", stdin=self.registry.password + "\n")
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assert_no_manifest(repo, proc)
        tw.assert_no_secret(self, proc, self.registry.password)

    def test_hanging_credential_helper_times_out(self):
        layout, _image = self.image()
        repo = self.repo()
        helpers = os.path.join(self.tmp, "helpers")
        os.makedirs(helpers, exist_ok=True)
        helper = os.path.join(helpers, "docker-credential-hang")
        with open(helper, "w") as f:
            f.write("#!/bin/sh\nsleep 120\n")
        os.chmod(helper, 0o755)
        config = tw.write_docker_config(os.path.join(self.tmp, "dockercfg"), {"credHelpers": {self.host: "hang"}})
        env = {"DOCKER_CONFIG": config, "PATH": helpers + os.pathsep + os.environ.get("PATH", ""),
               "TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT": "1s"}
        started = time.monotonic()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), *self.tls_args(), env=env,
                                timeout=60)
        self.assertLess(time.monotonic() - started, 45, "the helper is killed after its timeout")
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assert_stderr_mentions(proc, "docker-credential-hang")
        self.assert_stderr_mentions(proc, "TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT")
        self.assert_no_manifest(repo, proc)

    def test_credential_helper_that_does_not_read_stdin(self):
        layout, _image = self.image()
        repo = self.repo()
        helpers = os.path.join(self.tmp, "helpers-deaf")
        os.makedirs(helpers, exist_ok=True)
        helper = os.path.join(helpers, "docker-credential-deaf")
        answer = json.dumps({"Username": self.registry.username, "Secret": self.registry.password})
        with open(helper, "w") as f:
            f.write(f"#!/bin/sh\nexec 0<&-\necho '{answer}'\n")
        os.chmod(helper, 0o755)
        config = tw.write_docker_config(os.path.join(self.tmp, "dockercfg-deaf"), {"credHelpers": {self.host: "deaf"}})
        env = {"DOCKER_CONFIG": config, "PATH": helpers + os.pathsep + os.environ.get("PATH", "")}
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), *self.tls_args(), env=env)
        self.assert_pushed(proc, repo)


if __name__ == "__main__":
    unittest.main()
