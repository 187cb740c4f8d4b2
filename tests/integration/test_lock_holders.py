"""Lock holders, for the file, etcd and DynamoDB (moto) backends: a push that waits past --lock-timeout exits 5 naming
the holder (pid, host, CI run URL); `lock list` shows the holder while it holds; `lock release KEY`
needs --force; and a holder whose lock is force-released stops before writing any tag (fencing).

A holder is a real push parked by the fault proxy right after it took its locks: the proxy holds
its second lookup of the root manifest by digest, which comes after the locks and before any manifest
(the first is the guards' read-only check, before any upload).
"""

import json
import socket
import time
import unittest

import tw
from fault_proxy import digest_ref_path, tag_put_path
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401

GITHUB_ENV = {"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "acme/shop",
              "GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "2"}
GITHUB_URL = "https://github.example/acme/shop/actions/runs/4242"


class LockHolderTests:
    """Mixed into one TestCase per backend; ``lock_backend()`` returns the lock URL."""

    ci_env = GITHUB_ENV
    ci_url = GITHUB_URL

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)
        self.url = self.lock_backend()

    def target(self, repo):
        return f"{self.proxy.host}/{repo}"

    def start_holder(self, repo, layout, image, extra_env=None, lock_url=None, ttl="10s"):
        """A push of ``image`` to REPO:1.0-dev, parked after taking its lock; returns (Popen, hold rule)."""
        hold = self.proxy.hold("HEAD", digest_ref_path(repo, image.digest), nth=2, timeout=90)
        holder = self.spawn_push(f"oci:{layout}", self.target(repo), "--version", "1.0", "--env", "dev",
                                 "--output", "json", "--lock", lock_url or self.url, "--lock-ttl", ttl,
                                 env=extra_env)
        if not hold.reached.wait(30):
            self.fail("the holder never reached the point after its locks" + tw.describe(self.finish(holder, 5)))
        return holder, hold

    def key(self, repo, tag="1.0-dev"):
        return f"{self.proxy.host}/{repo}:{tag}"

    def test_timeout_names_the_holder_and_list_shows_it(self):
        repo = self.repo()
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        holder, hold = self.start_holder(repo, layout_a, image_a, extra_env=self.ci_env)

        listed = self.lock_list(self.url)
        self.assertIn(self.key(repo), {entry["key"] for entry in listed["locks"]}, json.dumps(listed, indent=2))
        entry = next(e for e in listed["locks"] if e["key"] == self.key(repo))
        self.assertEqual(entry["owner"]["pid"], holder.pid)
        self.assertEqual(entry["owner"]["host"], socket.gethostname())
        self.assertTrue(entry["owner"]["ciUrl"].startswith(self.ci_url), entry)
        self.assertTrue(entry["owner"]["runId"])
        self.assertIs(entry["held"], True)
        self.assertEqual(entry["ttlSeconds"], 10)
        self.assertLessEqual(abs(entry["acquiredEpoch"] - time.time()), 60)
        self.assertTrue(listed["backend"])

        start = time.monotonic()
        waiter = self.push(f"oci:{layout_b}", self.target(repo), "--version", "1.0", "--env", "dev",
                           "--lock", self.url, "--lock-timeout", "2s")
        elapsed = time.monotonic() - start
        self.assert_exit(waiter, tw.EXIT_LOCK)
        self.assertGreaterEqual(elapsed, 2.0, "the waiter must wait --lock-timeout before giving up")
        self.assertLess(elapsed, 30, "the waiter must give up after about --lock-timeout")
        self.assert_stderr_mentions(waiter, f"pid {holder.pid}")
        self.assert_stderr_mentions(waiter, self.ci_url)
        self.assert_stderr_mentions(waiter, socket.gethostname())
        self.assert_stderr_mentions(waiter, "1.0-dev")
        self.assertEqual(self.registry.tags(repo), {}, "the waiter wrote nothing")
        self.assertNotIn(image_b.digest, self.registry.manifest_digests(repo))

        # The timeout from the environment, and from tagwarden.yaml, the same way.
        for env, cwd in (({"TAGWARDEN_LOCK_TIMEOUT": "1s"}, None), (None, self.workdir("lock_timeout: 1s\n"))):
            start = time.monotonic()
            waiter = self.push(f"oci:{layout_b}", self.target(repo), "--version", "1.0", "--env", "dev",
                               "--lock", self.url, env=env, cwd=cwd)
            self.assert_exit(waiter, tw.EXIT_LOCK)
            self.assertLess(time.monotonic() - start, 30, "the configured timeout applies, not the 60s default")
            self.assert_stderr_mentions(waiter, f"pid {holder.pid}")

        hold.release()
        done = self.finish(holder)
        self.assert_exit(done, 0)
        self.assertEqual(tw.parse_json(self, done)["tags"], [{"tag": "1.0-dev", "status": "created"}])
        self.assertEqual(self.registry.tags(repo), {"1.0-dev": image_a.digest})
        self.assertEqual(self.held_locks(self.url), {}, "the holder released its lock when it finished")

    def test_release_needs_force_then_fences_the_holder(self):
        repo = self.repo()
        layout_a, image_a = self.image("a")
        holder, hold = self.start_holder(repo, layout_a, image_a)

        refused = self.run_tw("lock", "release", self.key(repo), "--lock", self.url)
        self.assert_exit(refused, tw.EXIT_USAGE)
        self.assert_stderr_mentions(refused, "--force")
        self.assertIn(self.key(repo), self.held_locks(self.url), "without --force the lock stays")

        released = self.run_tw("lock", "release", self.key(repo), "--force", "--lock", self.url)
        self.assert_exit(released, 0)
        self.assertNotIn(self.key(repo), self.held_locks(self.url))

        hold.release()
        fenced = self.finish(holder)
        self.assert_exit(fenced, tw.EXIT_LOCK)
        self.assert_stderr_mentions(fenced, "lock")
        self.assertEqual(self.proxy.requests("PUT", tag_put_path(repo)), [],
                         "a holder that lost its lock must not write a tag" + tw.describe(fenced))
        self.assertEqual(self.registry.tags(repo), {})
        self.assertEqual(self.registry.manifest_digests(repo), set())
        self.assertEqual(self.journals(), {}, tw.describe(fenced))

        # The tag is free for the next push.
        report = self.push_json(f"oci:{layout_a}", self.target(repo), "--version", "1.0", "--env", "dev",
                                "--lock", self.url)
        self.assertEqual(report["tags"], [{"tag": "1.0-dev", "status": "created"}])

    def test_fencing_before_the_second_tag(self):
        # The lock is taken away while the first tag's PUT is in flight (its fencing check has
        # passed): the first tag gets written, the check before the second tag fails, and the run
        # exits 5. Undo writes need the lock too, so the first tag stays (reported) with its journal,
        # and `push --resume` finishes the run once the lock can be taken again.
        repo = self.repo()
        layout_a, image_a = self.image("a")
        hold = self.proxy.hold("PUT", tag_put_path(repo, "1.0-dev"), timeout=90)
        holder = self.spawn_push(f"oci:{layout_a}", self.target(repo), "--version", "1.0", "--env", "dev",
                                 "--tag", "latest", "--lock", self.url)
        if not hold.reached.wait(30):
            self.fail("the push never reached its first tag" + tw.describe(self.finish(holder, 5)))
        released = self.run_tw("lock", "release", self.key(repo), "--force", "--lock", self.url)
        self.assert_exit(released, 0)
        hold.release()
        fenced = self.finish(holder)
        self.assert_exit(fenced, tw.EXIT_LOCK)
        self.assertEqual(self.proxy.requests("PUT", tag_put_path(repo, "latest")), [],
                         "no tag may be written after the lock was lost" + tw.describe(fenced))
        self.assertEqual(self.registry.tags(repo), {"1.0-dev": image_a.digest},
                         "without the lock nothing is undone" + tw.describe(fenced))
        self.assertIn("left tag", fenced.stderr, tw.describe(fenced))
        self.assertIn("lock", fenced.stderr.split("left tag", 1)[1], tw.describe(fenced))
        resumed = self.run_tw("push", "--resume", "--plain-http", "--lock", self.url, "--output", "json")
        self.assert_exit(resumed, 0)
        outcomes = [r["outcome"] for r in json.loads(resumed.stdout)["resumed"]]
        self.assertEqual(outcomes, ["finished"], tw.describe(resumed))
        self.assertEqual(self.registry.tags(repo), {"1.0-dev": image_a.digest, "latest": image_a.digest})

    def test_release_of_an_unknown_lock_is_a_usage_error(self):
        proc = self.run_tw("lock", "release", f"{self.proxy.host}/nothing/here:1", "--force", "--lock", self.url)
        self.assert_exit(proc, tw.EXIT_USAGE)

    def test_list_without_locks(self):
        listed = self.lock_list(self.url)
        self.assertEqual(listed["locks"], [])

    def test_lock_url_from_environment_and_config(self):
        # The backend URL reaches `lock list` from TAGWARDEN_LOCK and from `lock:` in tagwarden.yaml.
        repo = self.repo()
        layout_a, image_a = self.image("a")
        holder, hold = self.start_holder(repo, layout_a, image_a)
        # (backend_env: credentials a backend needs, e.g. DynamoDB's; empty for file and etcd)
        from_env = tw.run_tagwarden("lock", "list", "--output", "json",
                                    env={**self.backend_env, "TAGWARDEN_LOCK": self.url})
        from_file = tw.run_tagwarden("lock", "list", "--output", "json", env=dict(self.backend_env),
                                     cwd=self.workdir(f"lock: '{self.url}'\n"))
        for proc in (from_env, from_file):
            self.assert_exit(proc, 0)
            self.assertIn(self.key(repo), {e["key"] for e in tw.parse_json(self, proc)["locks"]}, tw.describe(proc))
        hold.release()
        self.assert_exit(self.finish(holder), 0)


class FileLockHolders(LockHolderTests, TagSafetyTestCase):

    def lock_backend(self):
        return self.lock_url

    def test_lock_ttl_below_five_seconds_is_refused(self):
        # The same floor from the flag, the environment and tagwarden.yaml (backend-independent).
        layout_a, _image_a = self.image("a")
        repo = self.repo()
        cases = [(["--lock-ttl", "1s"], None, None),
                 ([], {"TAGWARDEN_LOCK_TTL": "1s"}, None),
                 ([], None, self.workdir("lock_ttl: 1s\n"))]
        for args, env, cwd in cases:
            with self.subTest(args=args, env=env, config=bool(cwd)):
                proc = self.push(f"oci:{layout_a}", self.target(repo), "--version", "1.0", "--env", "dev",
                                 "--lock", self.url, *args, env=env, cwd=cwd)
                self.assert_exit(proc, tw.EXIT_USAGE)
        self.assertEqual(self.registry.tags(repo), {})


class EtcdLockHolders(LockHolderTests, TagSafetyTestCase):
    ci_env = {"CODEBUILD_BUILD_ID": "shop-build:0b9c2e1a-1111-2222-3333-444455556666", "AWS_REGION": "eu-west-1"}
    ci_url = ("https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/shop-build/build/"
              "shop-build:0b9c2e1a-1111-2222-3333-444455556666")

    def lock_backend(self):
        self.etcd = self.start_etcd()
        return self.etcd.url

    def test_lock_key_lives_in_etcd_with_a_lease(self):
        repo = self.repo()
        layout_a, image_a = self.image("a")
        holder, hold = self.start_holder(repo, layout_a, image_a)
        records = self.etcd.kvs("tagwarden/locks/")
        self.assertEqual([r["key"] for r in records], [f"tagwarden/locks/{self.key(repo)}"])
        lease = records[0]["lease"]
        self.assertNotIn(lease, ("", "0"), "the lock key must be attached to a lease")
        self.assertGreater(self.etcd.lease_ttl(lease), 0)
        self.assertEqual(json.loads(records[0]["value"])["owner"]["pid"], holder.pid)
        hold.release()
        self.assert_exit(self.finish(holder), 0)
        self.assertEqual(self.etcd.keys("tagwarden/"), {}, "release revokes the lease and so the key")
        self.assertLess(self.etcd.lease_ttl(lease), 0, "the lease is revoked, not left to expire")

    def test_lost_lease_aborts_before_tagging(self):
        # etcd is reached through a second fault proxy; once the holder is parked, its keep-alives
        # fail, the lease runs out (5s) and etcd deletes the key: the holder must not tag.
        from fault_proxy import FaultProxy
        etcd_proxy = FaultProxy(self.etcd.host)
        etcd_proxy.start()
        self.addCleanup(etcd_proxy.stop)
        repo = self.repo()
        layout_a, image_a = self.image("a")
        holder, hold = self.start_holder(repo, layout_a, image_a, lock_url=f"etcd://{etcd_proxy.host}", ttl="5s")
        self.assertEqual(len(self.etcd.keys("tagwarden/locks/")), 1)
        etcd_proxy.fail("POST", r"^/v3/lease/keepalive$", status=503)
        self.wait_for(lambda: not self.etcd.keys("tagwarden/locks/"), 30, "the holder's lease to expire")
        hold.release()
        lost = self.finish(holder)
        self.assert_exit(lost, tw.EXIT_LOCK)
        self.assertEqual(self.proxy.requests("PUT", tag_put_path(repo)), [], tw.describe(lost))
        self.assertEqual(self.registry.tags(repo), {})
        self.assertEqual(self.registry.manifest_digests(repo), set())


class DynamoDbLockHolders(LockHolderTests, TagSafetyTestCase):
    """The same tests with dynamodb://TABLE?region=us-east-1&endpoint=<moto> (tests/support/dynamodb.py).

    The CI variables set AWS_REGION=eu-west-1 for the CodeBuild URL: the lock table lives in the
    URL's region (us-east-1), so the URL's region must win over AWS_REGION for the lock calls.
    """
    ci_env = EtcdLockHolders.ci_env
    ci_url = EtcdLockHolders.ci_url

    def lock_backend(self):
        self.ddb = self.start_dynamodb()
        self.backend_env.update(self.ddb.env())
        return self.ddb.url

    def test_lock_item_lives_in_dynamodb(self):
        repo = self.repo()
        layout_a, image_a = self.image("a")
        before = int(time.time())
        holder, hold = self.start_holder(repo, layout_a, image_a)
        items = self.ddb.items()
        self.assertEqual([i["LockKey"] for i in items], [self.key(repo)], items)
        item = items[0]
        self.assertEqual(item["OwnerPid"], holder.pid)
        self.assertEqual(item["OwnerHost"], socket.gethostname())
        self.assertTrue(item.get("LeaseToken"), item)
        self.assertTrue(item.get("OwnerRunId"), item)
        self.assertEqual(item["TtlSeconds"], 10)
        self.assertTrue(before - 2 <= item["AcquiredAt"] <= time.time() + 2, item)
        self.assertGreater(item["ExpiresAt"], time.time(), "the lease runs into the future")
        self.assertLessEqual(item["ExpiresAt"], time.time() + 10 + 2, "ExpiresAt is at most a TTL ahead")
        hold.release()
        self.assert_exit(self.finish(holder), 0)
        self.assertEqual(self.ddb.items(), [], "release deletes the item")
        deletes = self.ddb.calls("DeleteItem")
        self.assertIn(("DeleteItem", 200), deletes, deletes)

    def test_heartbeat_extends_the_lease(self):
        # A holder parked longer than its TTL keeps the lock: UpdateItem moves ExpiresAt on.
        repo = self.repo()
        layout_a, image_a = self.image("a")
        holder, hold = self.start_holder(repo, layout_a, image_a, ttl="5s")
        first = self.ddb.item(self.key(repo))
        self.wait_for(lambda: (self.ddb.item(self.key(repo)) or {}).get("ExpiresAt", 0) > first["ExpiresAt"] + 1,
                      15, "a heartbeat to move ExpiresAt")
        while time.time() < first["ExpiresAt"] + 1.5:  # past the first lease's end
            time.sleep(0.2)
        now = self.ddb.item(self.key(repo))
        self.assertEqual(now["LeaseToken"], first["LeaseToken"], "the same lease, renewed")
        self.assertGreater(now["ExpiresAt"], time.time(), "still held after more than its TTL")
        hold.release()
        done = self.finish(holder)
        self.assert_exit(done, 0)
        self.assertEqual(self.registry.tags(repo), {"1.0-dev": image_a.digest})

    def test_lost_heartbeat_aborts_before_tagging(self):
        # DynamoDB is reached through a fault proxy that fails every UpdateItem (the heartbeat) once the
        # holder is parked; the lease runs out (5s) and the fencing check (a consistent GetItem) must
        # then stop the holder before any tag.
        from fault_proxy import FaultProxy
        ddb_proxy = FaultProxy(self.ddb.host)
        ddb_proxy.start()
        self.addCleanup(ddb_proxy.stop)
        repo = self.repo()
        layout_a, image_a = self.image("a")
        holder, hold = self.start_holder(repo, layout_a, image_a, lock_url=self.ddb.lock_url(ddb_proxy.url), ttl="5s")
        self.assertEqual(self.ddb.keys(), [self.key(repo)])
        heartbeats = ddb_proxy.fail("POST", r"^/$", status=500, body=json.dumps(
            {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "injected"}).encode(),
            match=lambda _m, _p, headers: headers.get("X-Amz-Target", "").endswith(".UpdateItem"))
        self.wait_for(lambda: all(i["ExpiresAt"] < time.time() for i in self.ddb.items()), 30,
                      "the holder's lease to expire")
        hold.release()
        lost = self.finish(holder)
        self.assert_exit(lost, tw.EXIT_LOCK)
        self.assertGreater(heartbeats.count, 0, "the holder's heartbeats went through the proxy and failed")
        self.assertEqual(self.proxy.requests("PUT", tag_put_path(repo)), [], tw.describe(lost))
        self.assertEqual(self.registry.tags(repo), {})
        self.assertEqual(self.registry.manifest_digests(repo), set())

    def test_expired_item_of_a_dead_holder_is_taken_over(self):
        # An item whose ExpiresAt has passed (a holder that died) does not block: the conditional
        # PutItem's "ExpiresAt < :now" lets the next push take it at once.
        repo = self.repo()
        layout_a, image_a = self.image("a")
        now = int(time.time())
        self.ddb.put_item({"LockKey": self.key(repo), "LeaseToken": "dead-holder", "AcquiredAt": now - 120,
                           "ExpiresAt": now - 60, "TtlSeconds": 60, "OwnerPid": 999999, "OwnerHost": "gone"})
        self.assertEqual(self.held_locks(self.url), {}, "an expired item is listed as not held")
        start = time.monotonic()
        report = self.push_json(f"oci:{layout_a}", self.target(repo), "--version", "1.0", "--env", "dev",
                                "--lock", self.url, "--lock-timeout", "30s")
        self.assertLess(time.monotonic() - start, 20, "no wait for an expired lock")
        self.assertEqual(report["tags"], [{"tag": "1.0-dev", "status": "created"}])
        self.assertEqual(self.ddb.items(), [], "the taken-over item is released (deleted) at the end")

    def test_missing_table_names_the_create_table_command(self):
        # tagwarden never creates the table: a missing one is an error giving the command, nothing is pushed.
        repo = self.repo()
        layout_a, _image_a = self.image("a")
        url = self.ddb.lock_url(table="no-such-table")
        proc = self.push(f"oci:{layout_a}", self.target(repo), "--version", "1.0", "--env", "dev", "--lock", url)
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_stderr_mentions(proc, "aws dynamodb create-table --table-name no-such-table")
        self.assertEqual(self.ddb.tables(), [self.ddb.table], "tagwarden must not create a table")
        self.assertEqual(self.registry.tags(repo), {})
        self.assertEqual(self.registry.manifest_digests(repo), set())


if __name__ == "__main__":
    unittest.main()
