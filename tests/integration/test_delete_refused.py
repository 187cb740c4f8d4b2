"""All or none where the registry refuses DELETE (issue 10): docker-registry in its DEFAULT configuration
(storage.delete.enabled false, every DELETE answered 405 UNSUPPORTED).

tagwarden probes before it writes tags; without DELETE it cannot take a tag back, so it verifies the image
right after its first tag: a later failure leaves the tags written so far on that complete, verified image,
says so, keeps the journal (a later --resume can finish the run), and `push --resume --abandon RUN_ID`
drops a run that will never be finished on purpose.
"""

import json
import subprocess
import unittest

import tw
from fault_proxy import tag_put_path
from tagsafety import ProxiedRegistryCase, setUpModule  # noqa: F401


class DeleteRefused(ProxiedRegistryCase):
    registry_delete = False

    def test_a_successful_push_says_it_was_not_all_or_none_capable(self):
        layout, image = self.image("a")
        repo = self.repo()
        report = self.push_json(f"oci:{layout}", self.target(repo, "a"), "--tag", "b")
        self.assertFalse(report["allOrNone"])
        self.assertEqual(self.registry.tags(repo), {"a": image.digest, "b": image.digest})
        deletes = self.proxy.requests("DELETE")
        self.assertEqual([r.status for r in deletes], [405], "one probe, refused by the default registry")

    def test_a_failed_second_tag_leaves_the_first_on_the_verified_image_and_resume_finishes(self):
        layout, image = self.image("a")
        repo = self.repo()
        rule = self.proxy.fail("PUT", tag_put_path(repo, "b"), status=500)
        proc = self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assertIn("refuses DELETE", proc.stderr, tw.describe(proc))
        self.assertIn("left tag", proc.stderr)
        self.assertEqual(self.registry.tags(repo), {"a": image.digest})
        # The tag left behind names a complete image: read back independently with skopeo.
        inspected = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                                    f"docker://{self.registry.host}/{repo}:a"], capture_output=True, text=True)
        self.assertEqual(inspected.returncode, 0, inspected.stderr)
        verified = self.run_tw("verify", self.target(repo, "a"), "--plain-http")
        self.assert_exit(verified, 0)
        self.assertEqual(len(self.journals()), 1, "the run's own tag remains: its journal is kept")
        self.proxy.remove_rule(rule)
        resumed = self.run_tw("push", "--resume", "--plain-http", "--lock", self.lock_url, "--output", "json")
        self.assert_exit(resumed, 0)
        self.assertEqual([r["outcome"] for r in json.loads(resumed.stdout)["resumed"]], ["finished"])
        self.assertEqual(self.registry.tags(repo), {"a": image.digest, "b": image.digest})

    def test_a_run_that_cannot_be_undone_can_be_abandoned(self):
        layout, image = self.image("a")
        layout_b, image_b = self.image("b")
        repo = self.repo()
        rule = self.proxy.fail("PUT", tag_put_path(repo, "b"), status=500)
        self.assert_exit(self.push(f"oci:{layout}", self.target(repo, "a"), "--tag", "b"), tw.EXIT_NETWORK)
        self.proxy.remove_rule(rule)
        # Someone else takes tag b: the run can no longer be finished, and undoing it needs a DELETE.
        self.push_json(f"oci:{layout_b}", self.target(repo, "b"))
        stuck = self.run_tw("push", "--resume", "--plain-http", "--lock", self.lock_url)
        self.assert_exit(stuck, tw.EXIT_NETWORK)
        self.assertIn("could not be undone completely", stuck.stderr, tw.describe(stuck))
        run_id = json.loads(self.run_tw("lock", "list", "--lock", self.lock_url, "--output", "json").stdout)["runs"][0]["runId"]
        misuse = self.run_tw("push", "--abandon", run_id)
        self.assert_exit(misuse, tw.EXIT_USAGE)
        unknown = self.run_tw("push", "--resume", "--abandon", "no-such-run", "--lock", self.lock_url)
        self.assert_exit(unknown, tw.EXIT_USAGE)
        abandoned = self.run_tw("push", "--resume", "--abandon", run_id, "--lock", self.lock_url, "--output", "json")
        self.assert_exit(abandoned, 0)
        self.assertEqual(json.loads(abandoned.stdout)["abandoned"]["runId"], run_id)
        self.assertIn("abandoned run", abandoned.stderr)
        self.assertEqual(self.journals(), {})
        again = self.run_tw("push", "--resume", "--plain-http", "--lock", self.lock_url, "--output", "json")
        self.assert_exit(again, 0)
        self.assertEqual(json.loads(again.stdout)["resumed"], [])
        self.assertEqual(self.registry.tags(repo), {"a": image.digest, "b": image_b.digest})


if __name__ == "__main__":
    unittest.main()
