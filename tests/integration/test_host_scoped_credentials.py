"""Credentials go only to the registry's own host (issue 10).

A registry's upload Location is rewritten by a proxy to point at a second loopback host (127.0.0.2),
which records every request's headers and forwards it to the same registry. tagwarden must send the
registry's credentials there never: with an anonymous registry the upload then simply works; with a
registry that wants credentials the push stops with a clear auth error (exit 7) instead of handing the
password to another host.
"""

import unittest

import tw
from fault_proxy import FaultProxy
from fixtures import setUpModule  # noqa: F401
from tagsafety import TagSafetyTestCase

SECOND_HOST = "127.0.0.2"


class UploadLocationOnAnotherHost(TagSafetyTestCase):

    def start_pair(self, mode):
        registry = self.start_registry(mode)
        first = FaultProxy(registry.host)
        first.start()
        self.addCleanup(first.stop)
        second = FaultProxy(registry.host, bind=SECOND_HOST)
        second.start()
        self.addCleanup(second.stop)
        # Uploads started through the first host continue on the second.
        first.rewrite_location = lambda value: value.replace(f"http://{first.host}", f"http://{second.host}")
        return registry, first, second

    def test_anonymous_registry_upload_continues_on_the_other_host_without_credentials(self):
        registry, first, second = self.start_pair("plain")
        layout, image = self.image("a")
        repo = self.repo()
        proc = self.push(f"oci:{layout}", f"{first.host}/{repo}:1.0")
        self.assert_exit(proc, 0)
        self.assertEqual(registry.tags(repo), {"1.0": image.digest})
        uploads = second.requests("PUT")
        self.assertTrue(uploads, "the blob uploads went through the second host")
        self.assertFalse([r for r in second.requests() if "authorization" in r.headers])

    def test_credentials_never_reach_the_other_host(self):
        registry, first, second = self.start_pair("htpasswd")
        layout, image = self.image("a")
        repo = self.repo()
        proc = self.push(f"oci:{layout}", f"{first.host}/{repo}:1.0", "--username", registry.username,
                         "--password-stdin", stdin=registry.password + "\n")
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assertIn("not the registry", proc.stderr, tw.describe(proc))
        self.assertIn(SECOND_HOST, proc.stderr)
        self.assertTrue(second.requests(), "the upload was tried on the second host")
        leaked = [r for r in second.requests() if "authorization" in r.headers]
        self.assertEqual(leaked, [], "no credentials may reach another host")
        self.assertTrue([r for r in first.requests() if "authorization" in r.headers],
                        "the registry itself did get them")
        tw.assert_no_secret(self, proc, registry.password, tw.basic_auth(registry.username, registry.password))
        self.assertEqual(registry.tags(repo), {})


if __name__ == "__main__":
    unittest.main()
