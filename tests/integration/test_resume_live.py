"""`push --resume` leaves a live run alone, and `--dry-run` never writes (issue 9).

- A run is parked at its second tag PUT, alive and holding its tag locks; its journal is there to
  be found. `push --resume` must leave it alone: outcome `skipped` (its locks are held by the live
  run that wrote it), nothing written, journal untouched; the live run then completes normally.
  Today resume waits for the locks (exit 5 after --lock-timeout), and had it got them it would act
  on the journal as it read it before waiting.
  Once with the file:// lock (one machine, one state dir) and once with etcd on two runners.
- `push --resume --dry-run` after a run was SIGKILLed after its first tag: `would-finish`, and
  after someone took the second tag `would-undo`; either way the registry's tags and the journal
  are unchanged and no write request reaches the registry.
"""

import unittest

import tw
from fault_proxy import tag_put_path
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401

FIRST = "1.0-dev"
SECOND = "latest"
WRITES = ("PUT", "POST", "PATCH", "DELETE")


class ResumeWhileTheRunIsAlive(TagSafetyTestCase):
    backend = "file"

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)
        self.repo_name = self.repo()
        self.target = f"{self.proxy.host}/{self.repo_name}"
        if self.backend == "etcd":
            self.url = self.start_etcd().url
            self.live_env, self.resume_env = self.runner("live"), self.runner("other")
        else:
            self.url = self.lock_url
            self.live_env = self.resume_env = None

    def runs(self):
        if self.backend == "file":
            return list(self.journals().values())
        return self.backend_runs(self.url)

    def test_resume_skips_a_run_whose_locks_its_live_writer_holds(self):
        layout, image = self.image("a")
        second = self.proxy.hold("PUT", tag_put_path(self.repo_name, SECOND), timeout=90)
        # A write may take a third of the lease (at most 30 s) before it is abandoned and retried; with the
        # default 30 s TTL the parked PUT would be retried (and pass) after 10 s, while a slow resume (a
        # sanitizer build) may still be waiting for the locks. A 120 s TTL keeps the live run parked for 30 s.
        live = self.spawn_push(f"oci:{layout}", self.target, "--version", "1.0", "--env", "dev", "--tag", SECOND,
                               "--lock", self.url, "--lock-ttl", "120s", "--output", "json", env=self.live_env)
        if not second.reached.wait(60):
            self.fail("the live run never reached its second tag" + tw.describe(self.finish(live, 5)))
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image.digest})
        self.assertEqual(len(self.runs()), 1, "the live run's journal is there to be found")
        mark = self.proxy.mark()

        proc = self.run_tw("push", "--resume", "--plain-http", "--lock", self.url, "--lock-timeout", "10s",
                           "--output", "json", env=self.resume_env)
        self.assert_exit(proc, 0)
        resumed = tw.parse_json(self, proc)["resumed"]
        self.assertEqual(len(resumed), 1, "resume reports the live run's journal" + tw.describe(proc))
        self.assertEqual(resumed[0]["outcome"], "skipped", tw.describe(proc))
        self.assertEqual(resumed[0]["digest"], image.digest)
        writes = [r for r in self.proxy.requests(since=mark) if r.method in WRITES]
        self.assertEqual(writes, [], "resume wrote nothing" + tw.describe(proc))
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image.digest})
        self.assertIsNone(live.poll(), "the live run is still running")

        second.release()
        result = self.finish(live)
        self.assert_exit(result, 0)
        self.assertEqual(self.tag_statuses(tw.parse_json(self, result)), {FIRST: "created", SECOND: "created"})
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image.digest, SECOND: image.digest})
        self.assertEqual(self.runs(), [], "the live run removed its journal when it finished")


class ResumeWhileTheRunIsAliveEtcd(ResumeWhileTheRunIsAlive):
    backend = "etcd"


class ResumeDryRun(TagSafetyTestCase):

    def test_dry_run_writes_nothing(self):
        registry = self.start_registry()
        proxy = self.start_proxy(registry)
        repo = self.repo()
        target = f"{proxy.host}/{repo}"
        layout_a, image_a = self.image("a")
        layout_b, image_b = self.image("b")
        hold = proxy.hold("PUT", tag_put_path(repo, SECOND), timeout=60)
        proc = self.spawn_push(f"oci:{layout_a}", target, "--version", "1.0", "--env", "dev", "--tag", SECOND)
        if not hold.reached.wait(60):
            self.fail("the push never reached its second tag" + tw.describe(self.finish(proc, 5)))
        self.kill(proc)
        hold.release()
        self.wait_for(lambda: any("client gone" in (r.rule or "") for r in proxy.requests("PUT")), 10,
                      "the proxy to drop the dead client's request")
        journal_before = self.raw_journals()
        self.assertEqual(len(journal_before), 1)

        def dry_run(expected_outcome):
            tags_before = registry.tags(repo)
            mark = proxy.mark()
            run = self.run_tw("push", "--resume", target, "--dry-run", "--plain-http", "--output", "json")
            self.assert_exit(run, 0)
            resumed = tw.parse_json(self, run)["resumed"]
            self.assertEqual([r["outcome"] for r in resumed], [expected_outcome], tw.describe(run))
            writes = [r for r in proxy.requests(since=mark) if r.method in WRITES]
            self.assertEqual(writes, [], "--dry-run sends no write to the registry" + tw.describe(run))
            self.assertEqual(registry.tags(repo), tags_before, "--dry-run changes no tag" + tw.describe(run))
            self.assertEqual(self.raw_journals(), journal_before, "--dry-run leaves the journal as it is"
                             + tw.describe(run))

        dry_run("would-finish")
        self.assertEqual(registry.tags(repo), {FIRST: image_a.digest})

        # Someone takes the second tag: now the run can only be undone, and a dry run says so.
        self.push_json(f"oci:{layout_b}", f"{target}:{SECOND}")
        dry_run("would-undo")
        self.assertEqual(registry.tags(repo), {FIRST: image_a.digest, SECOND: image_b.digest})

        # The real resume then undoes it.
        real = self.run_tw("push", "--resume", target, "--plain-http", "--output", "json")
        self.assert_exit(real, 0)
        self.assertEqual([r["outcome"] for r in tw.parse_json(self, real)["resumed"]], ["undone"])
        self.assertEqual(registry.tags(repo), {SECOND: image_b.digest})
        self.assertEqual(self.journals(), {})


if __name__ == "__main__":
    unittest.main()
