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


class PresignedRedirects(TagSafetyTestCase):
    """Blob GETs redirected to presigned URLs (as ECR and Docker Hub send them to object storage): the
    token in the query must appear nowhere, --debug logs and error messages included."""

    TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789"
    SIGNATURE = "d2f1c0ffee0123456789abcdefdeadbeef0123456789abcdef0123456789abcd"

    def setUp(self):
        super().setUp()
        self.source = self.start_registry()
        self.destination = self.start_registry()
        self.front = FaultProxy(self.source.host)
        self.front.start()
        self.addCleanup(self.front.stop)
        self.storage = FaultProxy(self.source.host, bind=SECOND_HOST)
        self.storage.start()
        self.addCleanup(self.storage.stop)
        layout, self.img = self.image("a")
        self.repo_name = self.repo()
        self.push_json(f"oci:{layout}", f"{self.front.host}/{self.repo_name}:1.0")
        info = self.img
        for blob in [info.config, *info.layers]:
            path = f"/v2/{self.repo_name}/blobs/{blob.digest}"
            presigned = (f"http://{self.storage.host}{path}?X-Amz-Security-Token={self.TOKEN}"
                         f"&X-Amz-Signature={self.SIGNATURE}&X-Amz-Expires=600")
            self.front.fail("GET", "^" + path + "$", status=307, headers={"Location": presigned})

    def copy(self, *extra):
        return self.run_tw("--debug", "push", f"docker://{self.front.host}/{self.repo_name}:1.0",
                           f"{self.destination.host}/{self.repo_name}:1.0", "--plain-http", *extra)

    def test_a_copy_through_presigned_redirects_prints_no_token(self):
        proc = self.copy()
        self.assert_exit(proc, 0)
        self.assertTrue(self.storage.requests("GET"), "the blobs came from the redirect target")
        self.assertIn("X-Amz", "".join(r.uri for r in self.storage.requests("GET")))
        tw.assert_no_secret(self, proc, self.TOKEN, self.SIGNATURE)

    def test_a_failing_presigned_url_is_reported_without_its_token(self):
        self.storage.fail("GET", r"^/v2/.+/blobs/", status=500)
        proc = self.copy("--timeout", "60s")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(SECOND_HOST, proc.stderr, tw.describe(proc))
        tw.assert_no_secret(self, proc, self.TOKEN, self.SIGNATURE)

    def test_a_redirect_target_asking_for_credentials_gets_none(self):
        self.storage.fail("GET", r"^/v2/.+/blobs/", status=401,
                          headers={"WWW-Authenticate": f'Basic realm="http://{self.storage.host}/"'})
        proc = self.copy()
        self.assert_exit(proc, tw.EXIT_AUTH)
        self.assertIn("not the registry", proc.stderr, tw.describe(proc))
        self.assertFalse([r for r in self.storage.requests() if "authorization" in r.headers])


class RedirectLoop(TagSafetyTestCase):

    def test_a_redirect_loop_is_an_error(self):
        source = self.start_registry()
        destination = self.start_registry()
        front = self.start_proxy(source)
        layout, img = self.image("a")
        repo = self.repo()
        self.push_json(f"oci:{layout}", f"{front.host}/{repo}:1.0")
        for blob in [img.config, *img.layers]:
            path = f"/v2/{repo}/blobs/{blob.digest}"
            front.fail("GET", "^" + path + "$", status=302, headers={"Location": f"http://{front.host}{path}"})
        proc = self.run_tw("push", f"docker://{front.host}/{repo}:1.0", f"{destination.host}/{repo}:1.0",
                           "--plain-http", "--timeout", "60s")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertIn("redirects", proc.stderr, tw.describe(proc))
        self.assertEqual(destination.tags(repo), {})


if __name__ == "__main__":
    unittest.main()
