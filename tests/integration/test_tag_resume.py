"""A push killed with SIGKILL half-way through its tags (etcd and DynamoDB locks, --lock-ttl 5s).

The killed run pushes one image under two tags, 1.0-dev then latest; the fault proxy parks its PUT
of the second tag, the test SIGKILLs it, and the parked request is never forwarded (its client is
gone). At that point the first tag points at the image, the second does not exist, the journal is
in TAGWARDEN_STATE_DIR/journal, and the etcd lock keys (DynamoDB lock items) stay until their
lease runs out (ExpiresAt passes).

- the next push of the SAME image waits for the lease to lapse and completes (first tag
  unchanged, second created); a push of ANOTHER image to those tags is refused (exit 4), since the
  first tag holds the killed run's digest (that is right: the tag is immutable);
- `push --resume` finishes the killed run (second tag created, journal removed);
- `push --resume` undoes it when someone else took the second tag meanwhile.
"""

import os
import time
import unittest

import tw
from fault_proxy import tag_put_path
from tagsafety import TagSafetyTestCase, mentions_digest, setUpModule  # noqa: F401

TTL = "5s"
FIRST = "1.0-dev"
SECOND = "latest"


class KilledMidPush(TagSafetyTestCase):
    backend = "etcd"

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)
        if self.backend == "etcd":
            self.etcd = self.start_etcd()
            self.url = self.etcd.url
        elif self.backend == "dynamodb":
            self.ddb = self.start_dynamodb()
            self.backend_env.update(self.ddb.env())
            self.url = self.ddb.url
        else:
            self.url = self.lock_url
        self.repo_name = self.repo()
        self.target = f"{self.proxy.host}/{self.repo_name}"

    def push_args(self, *extra):
        return ["--version", "1.0", "--env", "dev", "--tag", SECOND, "--lock", self.url, "--lock-ttl", TTL, *extra]

    def kill_after_first_tag(self, layout, image):
        """Starts the push, SIGKILLs it while its second tag PUT is parked; returns its output."""
        hold = self.proxy.hold("PUT", tag_put_path(self.repo_name, SECOND), timeout=60)
        proc = self.spawn_push(f"oci:{layout}", self.target, *self.push_args())
        if not hold.reached.wait(30):
            self.fail("the push never reached its second tag" + tw.describe(self.finish(proc, 5)))
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image.digest},
                         "the first tag is written before the second")
        killed = self.kill(proc)
        self.assertEqual(killed.returncode, -9)
        hold.release()  # the parked PUT is dropped: its client is dead
        self.wait_for(lambda: any("client gone" in (r.rule or "") for r in self.proxy.requests("PUT")), 10,
                      "the proxy to drop the dead client's request")
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image.digest})

        if getattr(self, "backend", "file") in ("etcd", "dynamodb"):
            # The journal lives in the lock backend (another runner can resume it): `lock list` shows it.
            runs = self.lock_list(self.url)["runs"]
            self.assertEqual(len(runs), 1, f"the killed run's journal must be kept in the backend: {runs}")
            self.assertEqual(self.journals(), {}, "nothing on this machine's disk")
            self.assertEqual(runs[0]["digest"], image.digest)
            self.assertEqual(runs[0]["tags"], [FIRST, SECOND])
            return killed, runs[0]
        journals = self.journals()
        self.assertEqual(len(journals), 1, f"the killed run's journal must be kept: {journals}")
        journal = next(iter(journals.values()))
        self.assertIsInstance(journal, dict, journal)
        self.assertEqual(journal["digest"], image.digest)
        # "written" is recorded before each PUT is sent (the write may land even if the run dies): the
        # second tag's PUT was sent, and never arrived.
        self.assertEqual({t["tag"]: t["written"] for t in journal["tags"]}, {FIRST: True, SECOND: True})
        return killed, journal

    def resume(self, *args):
        proc = self.run_tw("push", "--resume", *args, "--plain-http", "--lock", self.url, "--lock-timeout", "60s",
                           "--output", "json")
        self.assert_exit(proc, 0)
        return tw.parse_json(self, proc)

    def kept_runs(self):
        """How many journals are kept: in the lock backend (etcd, DynamoDB) or on this machine's disk."""
        if getattr(self, "backend", "file") in ("etcd", "dynamodb"):
            return len(self.lock_list(self.url)["runs"])
        return len(self.journals())

    def held_keys(self):
        return set(self.held_locks(self.url))

    def test_next_push_waits_for_the_ttl_then_completes(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        killed, journal = self.kill_after_first_tag(layout_a, image_a)
        key = f"{self.proxy.host}/{self.repo_name}:{FIRST}"
        self.assertIn(key, self.held_keys(), "a dead holder's lock stays until its lease lapses")

        # The same image: the push waits for the lease to lapse, then the first tag is unchanged and
        # the second is created.
        start = time.monotonic()
        report = self.push_json(f"oci:{layout_a}", self.target, *self.push_args("--lock-timeout", "30s"))
        waited = time.monotonic() - start
        self.assertGreaterEqual(waited, 1.0, "the dead holder's lock was still held: the push had to wait")
        self.assertEqual(self.tag_statuses(report), {FIRST: "unchanged", SECOND: "created"})
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image_a.digest, SECOND: image_a.digest})
        self.assertEqual(self.registry.manifest_digests(self.repo_name), {image_a.digest})

        # Another image is refused: the first tag holds the killed run's digest.
        other = self.push(f"oci:{layout_b}", self.target, *self.push_args("--lock-timeout", "30s"))
        self.assert_exit(other, tw.EXIT_TAG_CONFLICT)
        self.assertTrue(mentions_digest(other.stderr, image_a.digest), tw.describe(other))
        self.assertEqual(self.registry.manifest_digests(self.repo_name), {image_a.digest})

        # The killed run's journal is still there; resuming it now finds its work done.
        resumed = self.resume()["resumed"]
        self.assertEqual(len(resumed), 1, resumed)
        self.assertEqual(resumed[0]["outcome"], "finished")
        self.assertEqual(resumed[0]["runId"], journal["runId"])
        self.assertEqual(self.journals(), {})

    def test_resume_finishes_the_killed_run(self):
        layout_a, image_a = self.image("a")
        killed, journal = self.kill_after_first_tag(layout_a, image_a)

        # A filter naming another repository leaves the journal alone.
        untouched = self.resume(f"{self.proxy.host}/some/other-repo")
        self.assertEqual(untouched["resumed"], [])
        self.assertEqual(self.kept_runs(), 1)

        resumed = self.resume(self.target)["resumed"]
        self.assertEqual(len(resumed), 1, resumed)
        run = resumed[0]
        self.assertEqual(run["outcome"], "finished")
        self.assertEqual(run["runId"], journal["runId"])
        self.assertEqual(run["digest"], image_a.digest)
        self.assertEqual(run["repository"], self.target)
        statuses = {t["tag"]: t["status"] for t in run["tags"]}
        self.assertEqual(statuses.get(SECOND), "created", run)
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image_a.digest, SECOND: image_a.digest})
        self.assertEqual(self.registry.manifest_digests(self.repo_name), {image_a.digest})
        self.assertEqual(self.journals(), {}, "a finished run's journal is removed")
        self.assertEqual(self.held_keys(), set(), "resume releases the locks it took")
        self.assertEqual(self.resume()["resumed"], [], "nothing is left to resume")

    def test_resume_undoes_the_run_when_its_next_tag_was_taken(self):
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        killed, journal = self.kill_after_first_tag(layout_a, image_a)

        # Meanwhile another pipeline takes the second tag (after the dead holder's lease lapses).
        taken = self.push_json(f"oci:{layout_b}", f"{self.target}:{SECOND}", "--lock", self.url,
                               "--lock-timeout", "30s")
        self.assertEqual(taken["tags"], [{"tag": SECOND, "status": "created"}])

        resumed = self.resume()["resumed"]
        self.assertEqual(len(resumed), 1, resumed)
        self.assertEqual(resumed[0]["outcome"], "undone")
        self.assertEqual(resumed[0]["runId"], journal["runId"])
        self.assertIn(FIRST, {t["tag"] for t in resumed[0]["tags"]})
        self.assertEqual(self.registry.tags(self.repo_name), {SECOND: image_b.digest},
                         "the killed run's first tag is taken back; the other pipeline's tag stays")
        self.assertEqual(self.registry.manifest_digests(self.repo_name), {image_b.digest},
                         "the killed run's manifest is not left untagged")
        self.assertEqual(self.journals(), {})


class KilledMidPushDynamoDb(KilledMidPush):
    """The same with dynamodb:// locks on moto: the dead holder's items stay until ExpiresAt passes."""
    backend = "dynamodb"

    def test_dead_holders_items_expire_and_are_taken_over(self):
        layout_a, image_a = self.image("a")
        self.kill_after_first_tag(layout_a, image_a)
        keys = {f"{self.proxy.host}/{self.repo_name}:{tag}" for tag in (FIRST, SECOND)}
        # The run's journal is an item of the same table too (Kind "journal"), beside its lock items.
        items = {item["LockKey"]: item for item in self.ddb.items() if item.get("Kind") != "journal"}
        self.assertEqual(set(items), keys, "the killed run's lock items are left behind")
        self.assertEqual(len([i for i in self.ddb.items() if i.get("Kind") == "journal"]), 1)
        self.assertEqual({item["TtlSeconds"] for item in items.values()}, {5})
        expires = max(item["ExpiresAt"] for item in items.values())
        self.assertGreater(expires, time.time(), "the dead holder's lease is still running")
        refused_before = len([c for c in self.ddb.calls("PutItem") if c[1] == 400])
        report = self.push_json(f"oci:{layout_a}", self.target, *self.push_args("--lock-timeout", "30s"))
        self.assertGreaterEqual(time.time(), expires, "the lock was taken only after the dead holder's ExpiresAt")
        self.assertEqual(self.tag_statuses(report), {FIRST: "unchanged", SECOND: "created"})
        self.assertEqual([i for i in self.ddb.items() if i.get("Kind") != "journal"], [],
                         "the takeover's lock items are deleted when it finishes (the killed run's journal stays)")
        refused = [c for c in self.ddb.calls("PutItem") if c[1] == 400]
        self.assertGreater(len(refused), refused_before, "the next push was refused while the lease ran")


class KilledMidPushFileLock(TagSafetyTestCase):
    """With flock the kernel frees a dead holder's lock at once: resume needs no wait."""

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)
        self.url = self.lock_url
        self.repo_name = self.repo()
        self.target = f"{self.proxy.host}/{self.repo_name}"

    push_args = KilledMidPush.push_args
    kill_after_first_tag = KilledMidPush.kill_after_first_tag
    resume = KilledMidPush.resume
    held_keys = KilledMidPush.held_keys

    def test_resume_finishes_at_once(self):
        layout_a, image_a = self.image("a")
        self.kill_after_first_tag(layout_a, image_a)
        self.assertEqual(self.held_keys(), set(), "a dead holder holds no flock")
        start = time.monotonic()
        resumed = self.resume()["resumed"]
        self.assertLess(time.monotonic() - start, 20)
        self.assertEqual([r["outcome"] for r in resumed], ["finished"])
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image_a.digest, SECOND: image_a.digest})
        self.assertEqual(self.journals(), {})

    def test_killed_before_its_first_tag(self):
        # The journal is saved before the first manifest write: a run killed while its first tag's
        # PUT is in flight is known to resume, which writes both tags.
        layout_a, image_a = self.image("a")
        hold = self.proxy.hold("PUT", tag_put_path(self.repo_name, FIRST), timeout=60)
        proc = self.spawn_push(f"oci:{layout_a}", self.target, *self.push_args())
        if not hold.reached.wait(30):
            self.fail("the push never reached its first tag" + tw.describe(self.finish(proc, 5)))
        self.kill(proc)
        hold.release()
        self.wait_for(lambda: any("client gone" in (r.rule or "") for r in self.proxy.requests("PUT")), 10,
                      "the proxy to drop the dead client's request")
        self.assertEqual(self.registry.tags(self.repo_name), {})
        journals = list(self.journals().values())
        self.assertEqual(len(journals), 1, "the journal must exist before the first manifest write")
        self.assertEqual({t["tag"]: t["written"] for t in journals[0]["tags"]}, {FIRST: True, SECOND: False},
                         "the first PUT was sent: the journal says it may have landed")
        resumed = self.resume()["resumed"]
        self.assertEqual([r["outcome"] for r in resumed], ["finished"])
        self.assertEqual({t["tag"]: t["status"] for t in resumed[0]["tags"]}, {FIRST: "created", SECOND: "created"})
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image_a.digest, SECOND: image_a.digest})
        self.assertEqual(self.journals(), {})

    def test_resume_state_dir_from_config(self):
        # `state_dir:` in tagwarden.yaml is where journals go (and where resume finds them).
        layout_a, image_a = self.image("a")
        state = os.path.join(self.tmp, "state-from-config")
        cwd = self.workdir(f"state_dir: '{state}'\n")
        hold = self.proxy.hold("PUT", tag_put_path(self.repo_name, SECOND), timeout=60)
        proc = self.spawn_push(f"oci:{layout_a}", self.target, *self.push_args(), cwd=cwd,
                               env={"TAGWARDEN_STATE_DIR": None})
        if not hold.reached.wait(30):
            self.fail("the push never reached its second tag" + tw.describe(self.finish(proc, 5)))
        self.kill(proc)
        hold.release()
        self.assertEqual(len(os.listdir(os.path.join(state, "journal"))), 1)
        self.assertEqual(self.journals(), {}, "TAGWARDEN_STATE_DIR was unset for this run")
        resumed = tw.run_tagwarden("push", "--resume", "--plain-http", "--lock", self.url, "--output", "json",
                                   cwd=cwd)
        self.assert_exit(resumed, 0)
        self.assertEqual([r["outcome"] for r in tw.parse_json(self, resumed)["resumed"]], ["finished"])
        self.assertEqual(os.listdir(os.path.join(state, "journal")), [])


if __name__ == "__main__":
    unittest.main()
