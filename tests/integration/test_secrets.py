"""No secret is ever printed: a password full of special characters, --debug on, success and failure."""

import os
import unittest

import tw
from fixtures import RegistryTestCase, setUpModule  # noqa: F401

SPECIAL_PASSWORD = "p@ss w0rd:\"q'uote\\back$HOME%2F&x=1;#frag?{}"


class NoSecretInOutput(RegistryTestCase):
    registry_mode = "htpasswd"
    registry_password = SPECIAL_PASSWORD

    def all_secrets(self, password=SPECIAL_PASSWORD):
        return password, tw.basic_auth(self.registry.username, password)

    def test_fixture_accepts_the_special_password(self):
        # The registry itself accepts it: a failure below is tagwarden's, not the fixture's.
        status, _headers, _body = self.registry.request("GET", "/v2/")
        self.assertEqual(status, 200)

    def test_debug_push_with_password_stdin(self):
        layout, image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("--debug", "push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                "--username", self.registry.username, "--password-stdin",
                                stdin=SPECIAL_PASSWORD + "\n")
        self.assertEqual(self.assert_pushed(proc, repo), image.manifest_digest)
        self.assertTrue(proc.stderr.strip(), "--debug must log something to stderr")
        tw.assert_no_secret(self, proc, *self.all_secrets())

    def test_debug_push_with_docker_config(self):
        layout, image = self.image()
        repo = self.repo()
        config_dir = tw.write_docker_config(os.path.join(self.tmp, "cfg"), {"auths": {self.host: {
            "auth": tw.basic_auth(self.registry.username, SPECIAL_PASSWORD)}}})
        proc = tw.run_tagwarden("--debug", "push", f"oci:{layout}", self.target(repo, "1.0.0"), "--output", "json",
                                env={"DOCKER_CONFIG": config_dir})
        self.assert_exit(proc, 0)
        self.assertEqual(tw.parse_json(self, proc)["digest"], image.manifest_digest)
        tw.assert_no_secret(self, proc, *self.all_secrets())

    def test_debug_push_with_credential_helper(self):
        layout, image = self.image()
        repo = self.repo()
        bin_dir = os.path.join(self.tmp, "bin")
        tw.write_credential_helper(bin_dir, "twsecret", {self.host: (self.registry.username, SPECIAL_PASSWORD)})
        config_dir = tw.write_docker_config(os.path.join(self.tmp, "cfg"), {"credsStore": "twsecret"})
        proc = tw.run_tagwarden("--debug", "push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                env={"DOCKER_CONFIG": config_dir,
                                     "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")})
        self.assertEqual(self.assert_pushed(proc, repo), image.manifest_digest)
        tw.assert_no_secret(self, proc, *self.all_secrets())

    def test_debug_push_wrong_special_password(self):
        layout, _image = self.image()
        repo = self.repo()
        wrong = SPECIAL_PASSWORD[::-1]
        proc = tw.run_tagwarden("--debug", "push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                "--username", self.registry.username, "--password-stdin", stdin=wrong + "\n")
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assert_no_manifest(repo, proc)
        tw.assert_no_secret(self, proc, *self.all_secrets(wrong), *self.all_secrets())

    def test_debug_verify(self):
        layout, _image = self.image()
        repo = self.repo()
        self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "v")), repo)
        proc = tw.run_tagwarden("--debug", "verify", self.target(repo, "v"),
                                "--username", self.registry.username, "--password-stdin",
                                stdin=SPECIAL_PASSWORD + "\n")
        self.assert_exit(proc, 0)
        tw.assert_no_secret(self, proc, *self.all_secrets())


if __name__ == "__main__":
    unittest.main()
