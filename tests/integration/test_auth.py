"""Credentials against a docker-registry with htpasswd (bcrypt) Basic auth.

Every way the contract offers: --username with --password-stdin, docker config.json ``auths``,
``credsStore`` and ``credHelpers`` running a real docker-credential-<name> program from PATH.
"""

import os
import unittest

import tw
from fixtures import RegistryTestCase, setUpModule  # noqa: F401


class PushWithCredentials(RegistryTestCase):
    registry_mode = "htpasswd"

    def secrets(self, password=None):
        password = self.registry.password if password is None else password
        return password, tw.basic_auth(self.registry.username, password)

    def docker_config(self, config):
        return tw.write_docker_config(os.path.join(self.tmp, "docker-config"), config)

    def helper_env(self, name, credentials):
        """PATH with a docker-credential-NAME helper first; returns (env additions, helper log file)."""
        bin_dir = os.path.join(self.tmp, "helper-bin")
        log = os.path.join(self.tmp, f"{name}.log")
        tw.write_credential_helper(bin_dir, name, credentials, log_file=log)
        return {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")}, log

    def test_username_and_password_stdin(self):
        layout, image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                "--username", self.registry.username, "--password-stdin",
                                stdin=self.registry.password + "\n")
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, image.manifest_digest)
        self.assertEqual(self.registry.tags(repo), {"1.0.0": digest})
        tw.assert_no_secret(self, proc, *self.secrets())

    def test_password_stdin_without_trailing_newline(self):
        layout, image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                "--username", self.registry.username, "--password-stdin",
                                stdin=self.registry.password)
        self.assertEqual(self.assert_pushed(proc, repo), image.manifest_digest)

    def test_docker_config_auths(self):
        layout, image = self.image()
        repo = self.repo()
        config_dir = self.docker_config({"auths": {self.host: {
            "auth": tw.basic_auth(self.registry.username, self.registry.password)}}})
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                env={"DOCKER_CONFIG": config_dir})
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, image.manifest_digest)
        tw.assert_no_secret(self, proc, *self.secrets())
        proc = tw.run_tagwarden("verify", self.target(repo, "1.0.0"), env={"DOCKER_CONFIG": config_dir})
        self.assert_exit(proc, 0)

    def test_docker_config_creds_store_helper(self):
        layout, image = self.image()
        repo = self.repo()
        env, log = self.helper_env("twstore", {self.host: (self.registry.username, self.registry.password)})
        env["DOCKER_CONFIG"] = self.docker_config({"credsStore": "twstore"})
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), env=env)
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, image.manifest_digest)
        calls = tw.read_helper_log(log)
        self.assertTrue(calls, "docker-credential-twstore was never run")
        self.assertTrue(all(c["action"] == "get" for c in calls), calls)
        self.assertTrue(any(self.host in c["server"] for c in calls), f"the helper must be asked for {self.host}: {calls}")
        tw.assert_no_secret(self, proc, *self.secrets())

    def test_programs_it_runs_get_the_environment_it_was_given(self):
        # tagwarden re-executes itself with GNUTLS_NO_IMPLICIT_INIT (and a marker) set, to spare the memory
        # GnuTLS's load-time initialisation costs; the re-executed process removes both, so a credential
        # helper sees neither, and a value the user set is left alone.
        layout, _image = self.image()
        for i, given in enumerate(({}, {"GNUTLS_NO_IMPLICIT_INIT": "1"})):
            repo = self.repo()
            env, log = self.helper_env(f"twenv{i}", {self.host: (self.registry.username, self.registry.password)})
            env["DOCKER_CONFIG"] = self.docker_config({"credHelpers": {self.host: f"twenv{i}"}})
            env.update(given)
            proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), env=env)
            self.assert_pushed(proc, repo)
            calls = tw.read_helper_log(log)
            self.assertTrue(calls, "the helper was never run")
            self.assertEqual([c["gnutls_env"] for c in calls], [given] * len(calls))

    def test_docker_config_cred_helpers_per_registry(self):
        layout, image = self.image()
        repo = self.repo()
        env, log = self.helper_env("twhelper", {self.host: (self.registry.username, self.registry.password)})
        # credHelpers for this registry wins over the global credsStore (which names no installed helper).
        env["DOCKER_CONFIG"] = self.docker_config({"credsStore": "not-installed",
                                                   "credHelpers": {self.host: "twhelper"}})
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), env=env)
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, image.manifest_digest)
        self.assertTrue(tw.read_helper_log(log), "docker-credential-twhelper was never run")

    def test_flags_win_over_docker_config(self):
        layout, image = self.image()
        repo = self.repo()
        config_dir = self.docker_config({"auths": {self.host: {"auth": tw.basic_auth("nobody", "wrong")}}})
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                "--username", self.registry.username, "--password-stdin",
                                stdin=self.registry.password + "\n", env={"DOCKER_CONFIG": config_dir})
        self.assertEqual(self.assert_pushed(proc, repo), image.manifest_digest)

    def test_wrong_password_exit_7_nothing_stored_no_secret(self):
        layout, _image = self.image()
        repo = self.repo()
        wrong = "Wr0ng-" + self.registry.password[::-1]
        for debug in ([], ["--debug"]):
            with self.subTest(debug=bool(debug)):
                proc = tw.run_tagwarden(*debug, "push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                        "--username", self.registry.username, "--password-stdin",
                                        stdin=wrong + "\n")
                self.assert_exit(proc, tw.EXIT_AUTH)
                self.assert_no_manifest(repo, proc)
                self.assertEqual(self.registry.layer_digests(repo), set())
                tw.assert_no_secret(self, proc, *self.secrets(wrong))
                self.assert_stderr_mentions(proc, "auth", "credential", "unauthorized", "denied")

    def test_wrong_password_in_docker_config_exit_7(self):
        layout, _image = self.image()
        repo = self.repo()
        wrong = "not-" + self.registry.password
        config_dir = self.docker_config({"auths": {self.host: {"auth": tw.basic_auth(self.registry.username, wrong)}}})
        proc = tw.run_tagwarden("--debug", "push", f"oci:{layout}", self.target(repo, "1.0.0"),
                                env={"DOCKER_CONFIG": config_dir})
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assert_no_manifest(repo, proc)
        tw.assert_no_secret(self, proc, *self.secrets(wrong))

    def test_no_credentials_exit_7(self):
        layout, _image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"))
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assert_no_manifest(repo, proc)

    def test_helper_without_entry_exit_7(self):
        layout, _image = self.image()
        repo = self.repo()
        env, _log = self.helper_env("twempty", {})
        env["DOCKER_CONFIG"] = self.docker_config({"credsStore": "twempty"})
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), env=env)
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assert_no_manifest(repo, proc)

    def test_verify_with_credentials(self):
        layout, _image = self.image()
        repo = self.repo()
        self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "v")), repo)
        self.assert_exit(self.verify(self.target(repo, "v")), 0)
        proc = tw.run_tagwarden("verify", self.target(repo, "v"),
                                "--username", self.registry.username, "--password-stdin", stdin="bad\n")
        self.assert_exit(proc, tw.EXIT_AUTH)


if __name__ == "__main__":
    unittest.main()
