"""SIGKILL at seeded random moments (issue 10): 50 pushes and promotions killed anywhere. After each, every
tag of the run is absent or names a complete image (read back by skopeo, an independent reader), and the
next run completes. Finally `push --resume` settles every journal the killed runs left.
"""

import json
import os
import random
import signal
import subprocess
import time
import unittest

import tw
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401


class KilledAnywhere(TagSafetyTestCase):

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()

    def complete_or_absent(self, repo, tag, expected):
        tags = self.registry.tags(repo)
        if tag not in tags:
            return
        self.assertEqual(tags[tag], expected, f"{tag} names another image")
        inspected = subprocess.run(["skopeo", "inspect", "--tls-verify=false",
                                    f"docker://{self.registry.host}/{repo}:{tag}"], capture_output=True, text=True)
        self.assertEqual(inspected.returncode, 0, f"{repo}:{tag} is not a complete image: {inspected.stderr}")

    def test_fifty_runs_killed_at_random_moments(self):
        rng = random.Random(31337)
        images = [self.image(name) for name in ("a", "b")]
        repo = self.repo()
        for i in range(50):
            layout, image = images[i % 2]
            version = f"1.{i}"
            promote = i % 5 == 4
            if promote:
                # Promote the previous version's dev build to prod.
                version = f"1.{i - 1}"
                _layout, image = images[(i - 1) % 2]
                args = ["promote", f"{self.registry.host}/{repo}:{version}", "--from", "dev", "--to", "prod"]
                tags = [f"{version}-prod"]
            else:
                args = ["push", f"oci:{layout}", f"{self.registry.host}/{repo}", "--version", version, "--env", "dev",
                        "--tag", f"build-{i}"]
                tags = [f"{version}-dev", f"build-{i}"]
            args += ["--plain-http", "--lock", self.lock_url]
            proc = self.spawn(*args)
            time.sleep(rng.uniform(0.0, 0.35))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            for tag in tags:
                self.complete_or_absent(repo, tag, image.digest)
            again = self.run_tw(*args)
            self.assert_exit(again, 0)
            for tag in tags:
                self.assertEqual(self.registry.tags(repo).get(tag), image.digest, tw.describe(again))
        settled = self.run_tw("push", "--resume", "--plain-http", "--lock", self.lock_url, "--output", "json")
        self.assert_exit(settled, 0)
        for run in json.loads(settled.stdout)["resumed"]:
            self.assertIn(run["outcome"], ("finished", "undone"), run)
        # A run killed inside its journal's write leaves NAME.json.tmp: the intent of a write never sent,
        # ignored by every reader and swept once old. Every journal proper is settled.
        self.assertEqual({k: v for k, v in self.journals().items() if not k.endswith(".tmp")}, {},
                         "every journal is settled")


if __name__ == "__main__":
    unittest.main()
