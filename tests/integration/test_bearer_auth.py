"""Bearer token authentication (distribution's token spec) against a real docker-registry behind a token
front (tests/support/token_auth.py): the challenge, the token request with Basic credentials to the realm,
`token` or `access_token`, a refresh when the registry rejects a used-up token, and credentials that never
go to the registry's own endpoints."""

import json

import tw
from fixtures import RegistryTestCase, setUpModule  # noqa: F401 (unittest finds setUpModule here)
from token_auth import TokenAuthFront

PASSWORD = "b3arer-S3cret-pass"


class BearerAuth(RegistryTestCase):
    def run_push(self, front, tag, *args, password=PASSWORD, repo="team/app", layers=2):
        layout, _ = self.image(layers=layers)
        return tw.run_tagwarden("push", f"oci:{layout}", f"{front.host}/{repo}:{tag}", "--output", "json",
                                "--username", "ci", "--password-stdin", *args, stdin=password + "\n",
                                env={"TAGWARDEN_STATE_DIR": self.tmp, "TAGWARDEN_LOCK": f"file://{self.tmp}/locks"})

    def test_token_flow_push_and_verify(self):
        with TokenAuthFront(self.registry.host, "ci", PASSWORD) as front:
            proc = self.run_push(front, "1.0")
            tw.assert_exit(self, proc, 0)
            self.assertTrue(json.loads(proc.stdout)["verified"])
            scopes = [s for scopes, ok in front.token_requests if ok for s in scopes]
            self.assertIn("repository:team/app:pull,push", scopes)
            # Basic credentials went to the realm only; the registry saw Bearer tokens (or nothing, before a
            # challenge), never Basic.
            self.assertNotIn("Basic", front.registry_auth)
            self.assertIn("Bearer", front.registry_auth)
            tw.assert_no_secret(self, proc, PASSWORD)

    def test_access_token_field(self):
        with TokenAuthFront(self.registry.host, "ci", PASSWORD, token_field="access_token") as front:
            tw.assert_exit(self, self.run_push(front, "1.1"), 0)

    def test_used_up_token_is_refreshed(self):
        # Each token serves 3 registry requests: a push needs several, so the client must take the 401,
        # fetch a new token and resend.
        with TokenAuthFront(self.registry.host, "ci", PASSWORD, uses_per_token=3) as front:
            proc = self.run_push(front, "1.2")
            tw.assert_exit(self, proc, 0)
            self.assertGreater(len([1 for _, ok in front.token_requests if ok]), 2)

    def test_refresh_under_parallel_uploads(self):
        # Every token serves one request, and four workers upload at once: each 401 is answered by a token
        # the retry uses before any other worker can spend it. (A token shared as soon as it was fetched could
        # be used up by another worker first, and the retry's second 401 read as rejected credentials: CI
        # saw that once under ASan with three uses per token.)
        with TokenAuthFront(self.registry.host, "ci", PASSWORD, uses_per_token=1) as front:
            for n in range(3):
                proc = self.run_push(front, f"1.5-{n}", "--jobs", "4", layers=8)
                tw.assert_exit(self, proc, 0)
                self.assertTrue(json.loads(proc.stdout)["verified"])
            self.assertTrue(all(ok for _, ok in front.token_requests))

    def test_wrong_password_is_an_auth_failure(self):
        with TokenAuthFront(self.registry.host, "ci", PASSWORD) as front:
            proc = self.run_push(front, "1.3", "--debug", password="not-the-" + PASSWORD, repo="team/denied")
            tw.assert_exit(self, proc, 7)
            self.assertIn("authentication", proc.stderr)
            tw.assert_no_secret(self, proc, "not-the-" + PASSWORD)
            self.assertFalse(self.registry.manifest_digests("team/denied"))

    def test_deletes_ask_for_the_delete_action(self):
        # Undo needs DELETE, which token registries grant only to the `delete` action: the run's probe (and
        # any undo) asks for it, in a token of its own; pushes and pulls never carry it.
        with TokenAuthFront(self.registry.host, "ci", PASSWORD) as front:
            proc = self.run_push(front, "1.4", "--tag", "extra")
            tw.assert_exit(self, proc, 0)
            requested = [scopes for scopes, ok in front.token_requests if ok]
            self.assertIn(["repository:team/app:pull,push", "repository:team/app:delete"], requested, requested)
            self.assertIn(["repository:team/app:pull,push"], requested, requested)


if __name__ == "__main__":
    import unittest
    unittest.main()
