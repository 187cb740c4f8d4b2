"""tagwarden against a docker-registry serving HTTPS with a certificate from a CA the tests generate."""

import unittest

import interop
import tw
from fixtures import RegistryTestCase, setUpModule  # noqa: F401


class PushTls(RegistryTestCase):
    registry_mode = "tls"

    def test_push_with_ca_file(self):
        layout, image = self.image()
        repo = self.repo()
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0.0"), "--tag", "latest")  # adds --ca-file
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, image.manifest_digest)
        self.assertEqual(self.registry.tags(repo), {"1.0.0": digest, "latest": digest})
        self.assertEqual(interop.inspect(self.registry, f"{repo}:1.0.0")["Digest"], digest)
        self.assert_exit(self.verify(self.target(repo, "1.0.0")), 0)

    def test_every_request_is_http_1_1(self):
        # The registry offers HTTP/2 (ALPN h2); tagwarden asks for HTTP/1.1, which pushed big blobs over TLS
        # in about half the time (bench/RESULTS.md, push-tls).
        layout, _image = self.image(layers=3)
        repo = self.repo()
        mark = len(self.registry.requests())
        self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "1.0.0")), repo)
        seen = self.registry.requests()[mark:]
        self.assertTrue(any(r.method == "PUT" for r in seen), seen)
        protocols = {f"{r.method} {r.path}": r.protocol for r in seen if r.protocol != "HTTP/1.1"}
        self.assertEqual(protocols, {}, "requests not sent over HTTP/1.1")

    def test_push_without_ca_file_fails_on_the_certificate(self):
        layout, _image = self.image()
        repo = self.repo()
        mark = len(self.registry.requests())
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"))
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assert_stderr_mentions(proc, "certificate")
        self.assert_no_manifest(repo, proc)
        # An untrusted HTTPS registry is not silently retried over plain HTTP with the image.
        writes = [r for r in self.registry.requests()[mark:] if r.method in ("POST", "PUT", "PATCH")]
        self.assertEqual(writes, [], "nothing may be written to a registry whose certificate failed")

    def test_verify_without_ca_file_fails_on_the_certificate(self):
        layout, _image = self.image()
        repo = self.repo()
        self.assert_pushed(self.push(f"oci:{layout}", self.target(repo, "v")), repo)
        proc = tw.run_tagwarden("verify", self.target(repo, "v"))
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assert_stderr_mentions(proc, "certificate")

    def test_wrong_ca_file_is_refused(self):
        # A CA file that is not the registry's: the chain does not verify.
        import registry as registry_module
        other_ca, _cert, _key = registry_module.make_tls_material(f"{self.tmp}/other-ca", "another CA")
        layout, _image = self.image()
        repo = self.repo()
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), "--ca-file", other_ca)
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assert_stderr_mentions(proc, "certificate")
        self.assert_no_manifest(repo, proc)

    def test_missing_ca_file_is_bad_input(self):
        layout, _image = self.image()
        repo = self.repo()
        missing = f"{self.tmp}/no-such-ca.crt"
        proc = tw.run_tagwarden("push", f"oci:{layout}", self.target(repo, "1.0.0"), "--ca-file", missing)
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_stderr_mentions(proc, "no-such-ca.crt")
        self.assert_no_manifest(repo, proc)


class PushTlsWithHtpasswd(RegistryTestCase):
    registry_mode = "htpasswd+tls"

    def test_push_with_ca_file_and_credentials(self):
        layout, image = self.image()
        repo = self.repo()
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0.0"))  # --ca-file, --username, --password-stdin
        digest = self.assert_pushed(proc, repo)
        self.assertEqual(digest, image.manifest_digest)
        tw.assert_no_secret(self, proc, self.registry.password,
                            tw.basic_auth(self.registry.username, self.registry.password))
        self.assert_exit(self.verify(self.target(repo, "1.0.0")), 0)


if __name__ == "__main__":
    unittest.main()
