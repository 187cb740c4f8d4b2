"""The tag race, for every lock backend: 16 separate tagwarden processes push 16 different images
to the same tag of the same repository at once. Exactly one wins; every other exits 4 (naming the
winning digest) or 5 (naming the holder); the tag points at the winner; the registry holds exactly
one manifest revision in the repository (nothing untagged); re-running the winner is "unchanged".

To make sure the locks decide the race (and not the preflight tag check, which a slow starter
could lose early), the fault proxy parks every racer's first "does the tag exist?" request until
all 16 have asked, then lets them go at once: every racer sees the tag absent and uploads its
blobs, and all 16 meet at the lock.
"""

import os
import re
import time
import unittest

import tw
from fault_proxy import FaultProxy, blob_upload_path, tag_put_path
from tagsafety import TagSafetyTestCase, mentions_digest, setUpModule  # noqa: F401

RACERS = 16
TAG = "1.0.0-dev"


class TagRace(TagSafetyTestCase):

    def race(self, lock_url):
        registry = self.start_registry()
        proxy = self.start_proxy(registry)
        repo = self.repo()
        images = [self.image(f"racer-{i}") for i in range(RACERS)]
        self.assertEqual(len({image.digest for _layout, image in images}), RACERS, "16 different images")

        barrier = proxy.hold("HEAD", tag_put_path(repo, TAG), times=RACERS, timeout=120)
        target = f"{proxy.host}/{repo}"
        procs = [self.spawn_push(f"oci:{layout}", target, "--version", "1.0.0", "--env", "dev",
                                 "--output", "json", "--lock", lock_url, "--lock-timeout", "120s")
                 for layout, _image in images]
        pids = {proc.pid for proc in procs}
        try:
            self.wait_for(lambda: barrier.count >= RACERS or any(p.poll() is not None for p in procs), 90,
                          "every racer to ask whether the tag exists")
        finally:
            barrier.release()
        results = [self.finish(proc) for proc in procs]
        outputs = "".join(tw.describe(r) for r in results)
        self.assertEqual(barrier.count, RACERS, "every racer must reach the tag check together" + outputs)

        winners = [r for r in results if r.returncode == 0]
        self.assertEqual(len(winners), 1, "exactly one racer may win" + outputs)
        winner = winners[0]
        report = tw.parse_json(self, winner)
        winning_digest = report["digest"]
        self.assertEqual(report["tags"], [{"tag": TAG, "status": "created"}])
        self.assertIn(winning_digest, {image.digest for _layout, image in images})

        for loser in results:
            if loser is winner:
                continue
            self.assertIn(loser.returncode, (tw.EXIT_TAG_CONFLICT, tw.EXIT_LOCK),
                          "a loser exits 4 (tag conflict) or 5 (lock not acquired)" + tw.describe(loser))
            self.assertEqual(loser.stdout.strip(), "", "a loser prints no result" + tw.describe(loser))
            if loser.returncode == tw.EXIT_TAG_CONFLICT:
                self.assertTrue(mentions_digest(loser.stderr, winning_digest),
                                "a tag conflict must name the winning digest" + tw.describe(loser))
            else:
                named = {int(pid) for pid in re.findall(r"pid (\d+)", loser.stderr)}
                self.assertTrue(named & pids, "a lock failure must name the holder's pid" + tw.describe(loser))

        # The locks decided: every racer passed the tag check and uploaded its own blobs.
        self.assertGreaterEqual(len(proxy.requests("POST", blob_upload_path(repo))), RACERS, outputs)
        # Only the winner wrote a manifest; nothing is left untagged.
        self.assertEqual(len(proxy.requests("PUT", tag_put_path(repo))), 1, outputs)
        self.assertEqual(registry.tags(repo), {TAG: winning_digest})
        self.assertEqual(registry.manifest_digests(repo), {winning_digest},
                         "the registry must hold exactly one manifest revision: no loser's image untagged")
        self.assertEqual(self.journals(), {}, "no run may leave a journal")
        self.assertEqual(self.held_locks(lock_url), {}, "every lock is released")

        # Re-running the winner is idempotent.
        winner_layout = next(layout for layout, image in images if image.digest == winning_digest)
        again = self.push_json(f"oci:{winner_layout}", target, "--version", "1.0.0", "--env", "dev",
                               "--lock", lock_url)
        self.assertEqual(again["tags"], [{"tag": TAG, "status": "unchanged"}])
        self.assertEqual(registry.manifest_digests(repo), {winning_digest})
        return registry, repo

    def test_race_file_backend(self):
        self.race(self.lock_url)
        self.assertEqual([n for n in self.lock_files() if n.endswith(".lock")], [],
                         "a released file lock leaves no lock file")

    def test_race_etcd_backend(self):
        etcd = self.start_etcd()
        self.race(etcd.url)
        self.assertEqual(etcd.keys("tagwarden/"), {}, "every etcd lock key is gone (leases revoked)")

    def test_race_dynamodb_backend(self):
        ddb = self.start_dynamodb()
        self.backend_env.update(ddb.env())
        self.race(ddb.url)
        self.assertEqual(ddb.items(), [], "every DynamoDB lock item is deleted on release")
        # DynamoDB decided: every racer sent a conditional PutItem and some were refused.
        puts = ddb.calls("PutItem")
        self.assertGreaterEqual(len(puts), RACERS, puts)
        self.assertIn(400, {status for _op, status in puts}, f"no PutItem lost its condition: {puts}")

    def test_overlapping_tags_in_opposite_order_do_not_deadlock(self):
        # A pushes tags x and y, B pushes y and x. Both are let past the tag check together, and
        # etcd is reached through a second proxy that parks the first lock transaction of each
        # until both have sent theirs. Taken in tag order, A would hold x and B y, each waiting
        # for the other until the lock timeout (both exit 5); taken in sorted order both ask for
        # x first: one wins, the other is refused with exit 4 right after.
        registry = self.start_registry()
        proxy = self.start_proxy(registry)
        etcd = self.start_etcd()
        etcd_proxy = FaultProxy(etcd.host)
        etcd_proxy.start()
        self.addCleanup(etcd_proxy.stop)
        lock_url = f"etcd://{etcd_proxy.host}"
        repo = self.repo()
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        checks = proxy.hold("HEAD", tag_put_path(repo, "x"), times=2, timeout=60)
        first_locks = etcd_proxy.hold("POST", r"^/v3/kv/txn$", times=2, timeout=60)
        a = self.spawn_push(f"oci:{layout_a}", f"{proxy.host}/{repo}:x", "--tag", "y",
                            "--lock", lock_url, "--lock-timeout", "15s")
        b = self.spawn_push(f"oci:{layout_b}", f"{proxy.host}/{repo}:y", "--tag", "x",
                            "--lock", lock_url, "--lock-timeout", "15s")
        try:
            for rule, what in ((checks, "both pushes to check their tags"),
                               (first_locks, "both pushes to ask for their first lock")):
                self.wait_for(lambda: rule.count >= 2 or a.poll() is not None or b.poll() is not None, 60, what)
                rule.release()
        finally:
            checks.release()
            first_locks.release()
        start = time.monotonic()
        results = [self.finish(a), self.finish(b)]
        elapsed = time.monotonic() - start
        outputs = "".join(tw.describe(r) for r in results)
        self.assertEqual(first_locks.count, 2, outputs)
        self.assertEqual(sorted(r.returncode for r in results), [0, tw.EXIT_TAG_CONFLICT],
                         "one push wins, the other is refused (a deadlock ends in two lock timeouts)" + outputs)
        self.assertLess(elapsed, 12, "no deadlock: the loser did not sit out its lock timeout")
        winner = image_a if results[0].returncode == 0 else image_b
        self.assertEqual(registry.tags(repo), {"x": winner.digest, "y": winner.digest})
        self.assertEqual(registry.manifest_digests(repo), {winner.digest})

    def lock_files(self):
        return sorted(os.listdir(self.lock_dir)) if os.path.isdir(self.lock_dir) else []


if __name__ == "__main__":
    unittest.main()
