"""Safety where CI really runs (issue 9): the lock guard in CI, cancellation by signal, journals that
live with the lock so another runner can resume, and an undo that keeps a promotion of the same digest.
(`lock init` and an unreachable backend: test_lock_backends.py.)

Each "runner" is a separate tagwarden process with its own TMPDIR and TAGWARDEN_STATE_DIR, as two CI
machines would be; what they share is the registry and the lock backend.
"""

import json
import os
import signal
import time
import unittest

import tw
from fault_proxy import blob_upload_path, manifest_path, tag_put_path
from tagsafety import ProxiedRegistryCase, setUpModule  # noqa: F401

CI = {"CI": "true", "GITHUB_ACTIONS": "true"}


class CiSafety(ProxiedRegistryCase):


    def runner(self, name):
        """The environment of one CI runner: its own /tmp and state directory, CI markers set."""
        root = os.path.join(self.tmp, "runner-" + name)
        os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
        os.makedirs(os.path.join(root, "state"), exist_ok=True)
        return {**CI, "TMPDIR": os.path.join(root, "tmp"), "TAGWARDEN_STATE_DIR": os.path.join(root, "state")}

    # -- the lock guard -------------------------------------------------------------------------

    def test_default_lock_is_refused_in_ci_for_a_registry_whose_tags_move(self):
        layout, image = self.image("a")
        repo = self.repo()
        env = {**self.runner("one"), "TAGWARDEN_LOCK": None}
        refused = self.push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev", env=env)
        self.assert_exit(refused, tw.EXIT_GUARD)
        self.assertIn("lock", refused.stderr)
        self.assertIn("--lock dynamodb://", refused.stderr)
        self.assertIn("lock init", refused.stderr)
        self.assertEqual(self.registry.tags(repo), {})
        self.assertEqual(self.proxy.requests("POST"), [], "refused before any upload")
        # Outside CI the default lock is fine; in CI an explicit file:// lock is accepted, with a warning.
        accepted = self.push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev",
                             "--lock", "file://" + os.path.join(self.tmp, "shared-locks"), env=env)
        self.assert_exit(accepted, 0)
        self.assertIn("this machine only", accepted.stderr)
        self.assertEqual(self.registry.tags(repo), {"1.0-dev": image.digest})

    # -- two spellings of one registry share a lock -------------------------------------------------

    def test_two_spellings_of_one_registry_contend_for_one_lock(self):
        # registry.test and REGISTRY.TEST are one registry (host names ignore case); both reach the proxy
        # through TAGWARDEN_RESOLVE pins. A run holding 1.0-dev under one spelling blocks the other.
        port = self.proxy.host.rsplit(":", 1)[1]
        pins = {"TAGWARDEN_RESOLVE": f"registry.test:{port}:127.0.0.1,REGISTRY.TEST:{port}:127.0.0.1"}
        layout, image = self.image("a")
        repo = self.repo()
        hold = self.proxy.hold("PUT", tag_put_path(repo, "1.0-dev"), timeout=60)
        first = self.spawn_push(f"oci:{layout}", f"registry.test:{port}/{repo}", "--version", "1.0", "--env", "dev",
                                "--lock", self.lock_url, env=pins)
        if not hold.reached.wait(30):
            self.fail("the first push never reached its tag" + tw.describe(self.finish(first, 5)))
        second = self.push(f"oci:{layout}", f"REGISTRY.TEST:{port}/{repo}", "--version", "1.0", "--env", "dev",
                           "--lock", self.lock_url, "--lock-timeout", "2s", env=pins)
        self.assert_exit(second, tw.EXIT_LOCK)
        self.assertIn(f"registry.test:{port}/{repo}:1.0-dev", second.stderr, tw.describe(second))
        hold.release()
        self.assert_exit(self.finish(first, 60), 0)
        self.assertEqual(self.registry.tags(repo), {"1.0-dev": image.digest})

    def test_the_lock_timeout_runs_only_once_the_upload_has_ended(self):
        # The tag locks are taken beside the upload; --lock-timeout must keep meaning "how long to wait
        # for a held lock", not "how long the upload may take". The first run holds 1.0-dev (its tag PUT
        # is parked); the second, with --lock-timeout 2s, is parked in its upload phase for longer than
        # that while the lock is held; then the first finishes and the second's upload ends: it takes the
        # free lock and finds the tag already on its image (unchanged), instead of timing out.
        layout, image = self.image("a")
        repo = self.repo()
        tag_hold = self.proxy.hold("PUT", tag_put_path(repo, "1.0-dev"), timeout=60)
        first = self.spawn_push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev",
                                "--lock", self.lock_url)
        if not tag_hold.reached.wait(30):
            self.fail("the first push never reached its tag" + tw.describe(self.finish(first, 5)))
        blob_hold = self.proxy.hold("HEAD", rf"^/v2/{repo}/blobs/sha256:[0-9a-f]{{64}}$", timeout=60)
        second = self.spawn_push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev",
                                 "--lock", self.lock_url, "--lock-timeout", "2s", "--output", "json")
        if not blob_hold.reached.wait(30):
            self.fail("the second push never checked a blob" + tw.describe(self.finish(second, 5)))
        time.sleep(3.5)  # longer than --lock-timeout, with the lock held by the first run all along
        self.assertIsNone(second.poll(), "the second push gave up on the lock while it was still uploading")
        tag_hold.release()
        self.assert_exit(self.finish(first, 60), 0)
        blob_hold.release()
        result = self.finish(second, 60)
        self.assert_exit(result, 0)
        self.assertEqual(tw.parse_json(self, result)["tags"], [{"tag": "1.0-dev", "status": "unchanged"}])
        self.assertEqual(self.registry.tags(repo), {"1.0-dev": image.digest})

    # -- fencing covers every retry -----------------------------------------------------------------

    def test_a_retried_tag_write_is_fenced_again(self):
        # The first PUT of the tag passed its fence and is in flight when the lock is taken away; it then
        # fails with a 500. The retry must ask the lock again and stop: exactly one PUT reaches the proxy.
        layout, image = self.image("a")
        repo = self.repo()
        rule = self.hold_then_fail(self.proxy, "PUT", tag_put_path(repo, "1.0-dev"), status=500)
        proc = self.spawn_push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev",
                               "--lock", self.lock_url)
        if not rule.reached.wait(30):
            self.fail("the push never reached its tag" + tw.describe(self.finish(proc, 5)))
        key = f"{self.proxy.host}/{repo}:1.0-dev"
        self.assert_exit(self.run_tw("lock", "release", key, "--force", "--lock", self.lock_url), 0)
        rule.release()
        done = self.finish(proc, 60)
        self.assert_exit(done, tw.EXIT_LOCK)
        self.assertEqual(len(self.proxy.requests("PUT", tag_put_path(repo, "1.0-dev"))), 1,
                         "a retry after the lock was lost must not be sent" + tw.describe(done))
        self.assertEqual(self.registry.tags(repo), {})

    # -- undo never deletes what it did not write ----------------------------------------------------

    def test_a_failed_push_keeps_a_promotion_of_the_same_digest(self):
        # The push writes 1.0-dev, then fails on latest (5xx after retries). Between the two, a promotion
        # tagged the same digest 1.0-prod. The undo may not delete the manifest (that would take 1.0-prod
        # with it): the prod tag and the image stay, and the push reports the tag it had to leave.
        layout, image = self.image("a")
        repo = self.repo()
        # HEADs of latest: preflight, again under the lock, and right before its PUT (the 3rd): park that one.
        hold = self.proxy.hold("HEAD", manifest_path(repo, "latest"), nth=3, timeout=60)
        self.proxy.fail("PUT", tag_put_path(repo, "latest"), status=500)
        proc = self.spawn_push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev",
                               "--tag", "latest", "--lock", self.lock_url)
        if not hold.reached.wait(30):
            self.fail("the push never reached its second tag" + tw.describe(self.finish(proc, 5)))
        promoted = self.run_tw("promote", self.target(repo, "1.0"), "--from", "dev", "--to", "prod", "--plain-http",
                               "--lock", self.lock_url)
        self.assert_exit(promoted, 0)
        hold.release()
        failed = self.finish(proc, 120)
        self.assert_exit(failed, tw.EXIT_NETWORK)
        tags = self.registry.tags(repo)
        self.assertEqual(tags.get("1.0-prod"), image.digest, "the promotion survives the undo" + tw.describe(failed))
        self.assertIn(image.digest, self.registry.manifest_digests(repo), tw.describe(failed))
        self.assertNotIn("latest", tags)
        self.assertIn("left tag", failed.stderr)
        self.assertIn("1.0-prod", failed.stderr.split("left tag", 1)[1], tw.describe(failed))

    # -- cancellation ---------------------------------------------------------------------------

    def cancel_at(self, method, path, sig):
        layout, image = self.image("a")
        repo = self.repo()
        hold = self.proxy.hold(method, path(repo), timeout=60)
        proc = self.spawn_push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev",
                               "--tag", "latest", "--lock", self.lock_url)
        if not hold.reached.wait(30):
            self.fail("the push never reached the held request" + tw.describe(self.finish(proc, 5)))
        os.kill(proc.pid, sig)
        done = self.finish(proc, 60)
        hold.release()
        return repo, image, done

    def test_sigterm_during_tag_writes_undoes_the_run_and_exits_143(self):
        repo, image, done = self.cancel_at("PUT", lambda r: tag_put_path(r, "latest"), signal.SIGTERM)
        self.assert_exit(done, 143)
        self.assertIn("SIGTERM", done.stderr)
        self.assertEqual(self.registry.tags(repo), {}, "no tag of the cancelled run remains" + tw.describe(done))
        self.assertEqual(self.registry.manifest_digests(repo), set(), tw.describe(done))
        self.assertEqual(self.held_locks(self.lock_url), {}, "the locks are released")
        self.assertEqual(self.journals(), {}, "a clean undo removes the journal")

    def test_sigint_during_uploads_exits_130_with_nothing_written(self):
        repo, image, done = self.cancel_at("POST", lambda r: blob_upload_path(r), signal.SIGINT)
        self.assert_exit(done, 130)
        self.assertEqual(self.registry.tags(repo), {})
        self.assertEqual(self.registry.manifest_digests(repo), set())
        self.assertEqual(self.held_locks(self.lock_url), {})

    # -- journals beside the lock: resume on another runner --------------------------------------

    def killed_on_runner_one(self, lock_url, layout, repo):
        hold = self.proxy.hold("PUT", tag_put_path(repo, "latest"), timeout=60)
        proc = self.spawn_push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev",
                               "--tag", "latest", "--lock", lock_url, "--lock-ttl", "5s",
                               env=self.runner("one"))
        if not hold.reached.wait(30):
            self.fail("the push never reached its second tag" + tw.describe(self.finish(proc, 5)))
        self.kill(proc)
        hold.release()
        self.wait_for(lambda: any("client gone" in (r.rule or "") for r in self.proxy.requests("PUT")), 10,
                      "the proxy to drop the dead client's request")

    def resume_on_runner_two(self, lock_url):
        proc = self.run_tw("push", "--resume", "--plain-http", "--lock", lock_url, "--lock-timeout", "60s",
                           "--output", "json", env=self.runner("two"))
        self.assert_exit(proc, 0)
        return tw.parse_json(self, proc)["resumed"]

    def check_resumed_elsewhere(self, lock_url):
        layout, image = self.image("a")
        repo = self.repo()
        self.killed_on_runner_one(lock_url, layout, repo)
        self.assertEqual(self.registry.tags(repo), {"1.0-dev": image.digest})
        listed = tw.parse_json(self, self.run_tw("lock", "list", "--lock", lock_url, "--output", "json",
                                                  env=self.runner("two")))
        self.assertEqual([(r["repository"], r["digest"]) for r in listed["runs"]], [(repo, image.digest)],
                         "runner two sees the run left behind in the lock backend")
        resumed = self.resume_on_runner_two(lock_url)
        self.assertEqual([r["outcome"] for r in resumed], ["finished"], resumed)
        self.assertEqual(self.registry.tags(repo), {"1.0-dev": image.digest, "latest": image.digest})
        self.assertEqual(self.resume_on_runner_two(lock_url), [], "the journal is gone once finished")

    def test_a_run_killed_on_one_runner_is_finished_on_another_etcd(self):
        self.check_resumed_elsewhere(self.start_etcd().url)

    def test_a_run_killed_on_one_runner_is_finished_on_another_dynamodb(self):
        ddb = self.start_dynamodb()
        self.backend_env.update(ddb.env())
        self.check_resumed_elsewhere(ddb.url)


if __name__ == "__main__":
    unittest.main()
