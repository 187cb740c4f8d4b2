"""Flaky networks and slow registries (issue 10): one retry policy with Retry-After everywhere, a
low-speed limit that turns a stalled transfer into a retry, and an overall --timeout after which a run
stops, undoes its tags, releases its locks and exits 8.
"""

import random
import re
import threading
import time
import unittest

import tw
from fault_proxy import Rule, blob_upload_path, tag_put_path
from tagsafety import ProxiedRegistryCase, setUpModule  # noqa: F401


class HostileNetwork(ProxiedRegistryCase):


    def test_timeout_stops_a_hung_push_and_undoes_its_tags(self):
        layout, image = self.image("a")
        repo = self.repo()
        self.proxy.hold("PUT", tag_put_path(repo, "latest"), timeout=120)
        start = time.monotonic()
        proc = self.push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev", "--tag", "latest",
                         "--timeout", "4s", "--lock", self.lock_url)
        elapsed = time.monotonic() - start
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertIn("--timeout of 4s passed", proc.stderr, tw.describe(proc))
        self.assertLess(elapsed, 60, "the run must end near its --timeout, not when the registry answers")
        self.assertEqual(self.registry.tags(repo), {}, "the first tag is undone" + tw.describe(proc))
        self.assertEqual(self.held_locks(self.lock_url), {})
        self.assertEqual(self.journals(), {})

    def test_timeout_from_the_environment_and_bad_values(self):
        layout, _image = self.image("a")
        repo = self.repo()
        bad = self.push(f"oci:{layout}", self.target(repo, "x"), env={"TAGWARDEN_TIMEOUT": "soon"})
        self.assert_exit(bad, tw.EXIT_USAGE)
        self.assertIn("TAGWARDEN_TIMEOUT", bad.stderr)
        self.assertEqual(self.proxy.requests(), [], "refused before any request")
        self.proxy.hold("POST", blob_upload_path(repo), timeout=120)
        hung = self.push(f"oci:{layout}", self.target(repo, "x"), env={"TAGWARDEN_TIMEOUT": "3s"})
        self.assert_exit(hung, tw.EXIT_NETWORK)
        self.assertIn("TAGWARDEN_TIMEOUT of 3s passed", hung.stderr, tw.describe(hung))

    def test_a_stalled_upload_is_retried_by_the_low_speed_limit(self):
        layout, image = self.image("a")
        repo = self.repo()
        # The first upload's body is taken and never answered: curl's low-speed limit must end the wait.
        self.proxy.hold("PUT", r"^/v2/.+/blobs/uploads/.+$", times=1, timeout=120)
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), env={"TAGWARDEN_STALL_TIMEOUT": "2s"})
        self.assert_exit(proc, 0)
        self.assertIn("retrying", proc.stderr, tw.describe(proc))
        self.assertEqual(self.registry.tags(repo), {"1.0": image.digest})

    def test_retry_after_is_honoured_in_upload_sequences_and_manifest_puts(self):
        layout, image = self.image("a")
        repo = self.repo()
        self.proxy.fail("POST", blob_upload_path(repo), status=429, times=1, headers={"Retry-After": "2"})
        self.proxy.fail("PUT", tag_put_path(repo, "1.0"), status=429, times=1, headers={"Retry-After": "1"},
                        body=b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}')
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), "--jobs", "1")
        self.assert_exit(proc, 0)
        self.assertIn("retrying in 2000 ms", proc.stderr, tw.describe(proc))
        self.assertIn("retrying in 1000 ms", proc.stderr, tw.describe(proc))
        self.assertEqual(self.registry.tags(repo), {"1.0": image.digest})

    def test_an_enormous_retry_after_does_not_crash(self):
        layout, _image = self.image("a")
        repo = self.repo()
        self.proxy.fail("POST", blob_upload_path(repo), status=503, headers={"Retry-After": "9" * 40})
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), "--timeout", "3s")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertIn("--timeout of 3s passed", proc.stderr, tw.describe(proc))

    def test_a_hundred_pushes_through_a_ten_percent_fault_rate_all_complete(self):
        # 10% of all requests fail, evenly: 503, 429 with Retry-After, a connection dropped before the request
        # reaches the registry, and an answer lost after the registry did the work. Every push must complete
        # with the right digest (seeded, so a failure can be replayed).
        rng = random.Random(20261203)
        lock = threading.Lock()

        def chance(_method, _path, _headers):
            with lock:
                return rng.random() < 0.025

        for kind in ({"status": 503}, {"status": 429, "headers": {"Retry-After": "1"}}, {"drop": True}, {"lose": True}):
            self.proxy.add_rule(Rule(None, r"^/v2/.+", match=chance, **kind))
        images = [self.image(name) for name in ("a", "b", "c")]
        repo = self.repo()
        for i in range(100):
            layout, image = images[i % len(images)]
            proc = self.push(f"oci:{layout}", self.target(repo, f"t{i}"))
            self.assert_exit(proc, 0)
            self.assertEqual(self.registry.tags(repo).get(f"t{i}"), image.digest, tw.describe(proc))
        faults = [r for r in self.proxy.requests() if r.rule]
        self.assertGreater(len(faults), 50, "the proxy injected faults")

    def test_every_request_failing_ends_in_exit_8_within_the_timeout_and_no_tag(self):
        layout, _image = self.image("a")
        repo = self.repo()
        self.proxy.fail(None, r"^/v2/.+/(manifests|blobs)/", status=503)
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), "--tag", "latest", "--timeout", "20s")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertEqual(self.registry.tags(repo), {})

    def test_distribution_tag_invalid_is_not_a_tag_conflict(self):
        # docker-registry's TAG_INVALID ("manifest tag did not match URI") is a malformed request; only ECR's
        # TAG_INVALID on an immutable tag is a conflict (exit 4, covered by the ECR tests).
        layout, _image = self.image("a")
        repo = self.repo()
        self.proxy.fail("PUT", tag_put_path(repo, "1.0"), status=400,
                        body=b'{"errors":[{"code":"TAG_INVALID","message":"manifest tag did not match URI"}]}')
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"))
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertIn("TAG_INVALID", proc.stderr)
        self.assertEqual(self.registry.tags(repo), {})

    def test_a_registry_reporting_another_digest_is_a_verification_failure(self):
        layout, _image = self.image("a")
        repo = self.repo()
        self.proxy.fail("PUT", tag_put_path(repo, "1.0"), status=201, body=b"",
                        headers={"Docker-Content-Digest": "sha256:" + "0" * 64})
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"))
        self.assert_exit(proc, tw.EXIT_VERIFY)
        self.assertIn("altered the manifest", proc.stderr, tw.describe(proc))
        self.assertEqual(self.registry.tags(repo), {})

    def test_an_oversized_manifest_answer_is_refused_not_read_whole(self):
        layout, image = self.image("a")
        repo = self.repo()
        self.push_json(f"oci:{layout}", self.target(repo, "1.0"))
        self.proxy.fail("GET", rf"^/v2/{re.escape(repo)}/manifests/", status=200, body=b" " * (20 * 1024 * 1024))
        proc = self.run_tw("verify", self.target(repo, "1.0"), "--plain-http")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertIn("exceeds", proc.stderr, tw.describe(proc))

    def test_a_manifest_nested_thousands_deep_is_refused_not_a_crash(self):
        layout, _image = self.image("a")
        repo = self.repo()
        self.push_json(f"oci:{layout}", self.target(repo, "1.0"))
        deep = b'{"schemaVersion": 2, "manifests": ' + b"[" * 100000 + b"]" * 100000 + b"}"
        self.proxy.fail("GET", rf"^/v2/{re.escape(repo)}/manifests/", status=200, body=deep,
                        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
        proc = self.run_tw("verify", self.target(repo, "1.0"), "--plain-http")
        self.assertIn(proc.returncode, (tw.EXIT_VERIFY, tw.EXIT_NETWORK, tw.EXIT_USAGE), tw.describe(proc))
        self.assertIn("error:", proc.stderr)

    def test_an_endless_link_pagination_is_an_error_not_a_hang(self):
        layout, image = self.image("a")
        repo = self.repo()
        self.push_json(f"oci:{layout}", self.target(repo, "0.9"))  # the repository exists: its tags are listed
        self.proxy.extra_response_headers.append(
            (re.compile(rf"^/v2/{re.escape(repo)}/tags/list$"), {"Link": f'</v2/{repo}/tags/list?n=1000>; rel="next"'}))
        # A declared quota makes the quota guard count the images, which reads the tag list.
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), "--quota", "100")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertIn("loops", proc.stderr, tw.describe(proc))
        self.assertEqual(self.registry.tags(repo), {"0.9": image.digest})


if __name__ == "__main__":
    unittest.main()
