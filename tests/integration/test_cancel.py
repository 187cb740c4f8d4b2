"""Cancellation (issue 9): CI cancels a job with SIGINT/SIGTERM (GitHub Actions: SIGINT, then
SIGTERM, then SIGKILL a few seconds later; CodeBuild on timeout).

On SIGINT or SIGTERM a push stops its transfers, undoes the tags it wrote (only its own writes),
releases its locks and exits 130 (SIGINT) or 143 (SIGTERM); no journal is left. A second signal
while it undoes exits at once (128 + the signal) and keeps the journal for `push --resume`.

The fault proxy parks a request of the push (a blob upload, or its second tag PUT); the test
signals the push while it waits. The push uses an etcd lock with the default 30s lease, so a lock
that was not released is still listed by `lock list` after the process is gone.
"""

import signal
import unittest

import tw
from fault_proxy import blob_upload_path, manifest_path, tag_put_path
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401

FIRST = "1.0-dev"
SECOND = "latest"
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
STOP_WITHIN = 30  # seconds from the signal to the exit: the transfers stop, the undo is a few requests


class Cancel(TagSafetyTestCase):

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)
        self.etcd = self.start_etcd()
        self.repo_name = self.repo()
        self.target = f"{self.proxy.host}/{self.repo_name}"

    def start_push(self, layout, lock=None):
        return self.spawn_push(f"oci:{layout}", self.target, "--version", "1.0", "--env", "dev", "--tag", SECOND,
                               "--lock", lock or self.etcd.url)

    def wait_reached(self, rule, proc, what):
        if not rule.reached.wait(60):
            self.fail(f"the push never reached {what}" + tw.describe(self.finish(proc, 5)))

    def assert_cleaned_up(self, result, image):
        self.assertEqual(self.registry.tags(self.repo_name), {}, "no tag of the cancelled run remains"
                         + tw.describe(result))
        self.assertNotIn(image.digest, self.registry.manifest_digests(self.repo_name),
                         "the cancelled run's manifest is not left untagged" + tw.describe(result))
        self.assertEqual(self.held_locks(self.etcd.url), {}, "the cancelled run released its locks"
                         + tw.describe(result))
        self.assertEqual(self.etcd.keys("tagwarden/"), {}, "no lock key (or journal) is left in etcd")
        self.assertEqual(self.backend_runs(self.etcd.url), [], "no journal is left in the lock backend")
        self.assertEqual(self.journals(), {}, "no journal is left on disk")

    def test_sigterm_during_blob_uploads(self):
        layout, image = self.image("a", layers=3)
        upload = self.proxy.hold("POST", blob_upload_path(self.repo_name), timeout=90)
        proc = self.start_push(layout)
        self.wait_reached(upload, proc, "a blob upload")
        self.signal(proc, signal.SIGTERM)
        result = self.wait_exit(proc, STOP_WITHIN, "after SIGTERM during a blob upload")
        self.assert_exit(result, EXIT_SIGTERM)
        self.assertEqual(result.stdout.strip(), "", "a cancelled push prints no result" + tw.describe(result))
        self.assert_cleaned_up(result, image)
        self.assertEqual(self.proxy.requests("PUT", tag_put_path(self.repo_name)), [],
                         "no tag is written after the cancellation")

    def test_sigterm_during_tag_writes(self):
        layout, image = self.image("a")
        second = self.proxy.hold("PUT", tag_put_path(self.repo_name, SECOND), timeout=90)
        proc = self.start_push(layout)
        self.wait_reached(second, proc, "its second tag")
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image.digest})
        self.signal(proc, signal.SIGTERM)
        result = self.wait_exit(proc, STOP_WITHIN, "after SIGTERM during its tag writes")
        second.release()  # the parked PUT's client is gone: it is not forwarded
        self.assert_exit(result, EXIT_SIGTERM)
        self.assert_cleaned_up(result, image)

    def test_sigint_once(self):
        layout, image = self.image("a")
        second = self.proxy.hold("PUT", tag_put_path(self.repo_name, SECOND), timeout=90)
        proc = self.start_push(layout)
        self.wait_reached(second, proc, "its second tag")
        self.signal(proc, signal.SIGINT)
        result = self.wait_exit(proc, STOP_WITHIN, "after SIGINT during its tag writes")
        second.release()
        self.assert_exit(result, EXIT_SIGINT)
        self.assert_cleaned_up(result, image)

    def test_second_signal_while_undoing_exits_at_once_and_keeps_the_journal(self):
        # file:// lock here: the journal is on disk, where the test can read it.
        layout, image = self.image("a")
        second = self.proxy.hold("PUT", tag_put_path(self.repo_name, SECOND), timeout=90)
        # The first DELETE is the run's probe (does the registry delete?), before any tag; the second is the undo.
        undo = self.proxy.hold("DELETE", manifest_path(self.repo_name), nth=2, timeout=90)
        proc = self.start_push(layout, lock=self.lock_url)
        self.wait_reached(second, proc, "its second tag")
        self.signal(proc, signal.SIGINT)
        self.wait_for(lambda: undo.reached.is_set() or proc.poll() is not None, STOP_WITHIN,
                      "the push to undo its first tag after SIGINT")
        if not undo.reached.is_set():
            result = self.wait_exit(proc, 5, "(it never sent the undo's DELETE)")
            self.fail("after SIGINT the push must undo its first tag (a DELETE), not die" + tw.describe(result))
        self.assertIsNone(proc.poll(), "the push is waiting on its undo")
        self.signal(proc, signal.SIGTERM)
        result = self.wait_exit(proc, 5, "after a second signal: it must exit at once")
        second.release()
        undo.release()
        self.assert_exit(result, EXIT_SIGTERM)
        journals = list(self.journals().values())
        self.assertEqual(len(journals), 1, "the journal is kept for --resume" + tw.describe(result))
        self.assertIsInstance(journals[0], dict, journals[0])
        self.assertEqual(journals[0]["digest"], image.digest)
        self.assertIn(FIRST, {t["tag"] for t in journals[0]["tags"]})

        # And --resume can take it from there (finish or undo, under the same rules).
        resumed = self.run_tw("push", "--resume", self.target, "--plain-http", "--output", "json")
        self.assert_exit(resumed, 0)
        outcomes = [r["outcome"] for r in tw.parse_json(self, resumed)["resumed"]]
        self.assertEqual(len(outcomes), 1, tw.describe(resumed))
        tags = self.registry.tags(self.repo_name)
        if outcomes[0] == "finished":
            self.assertEqual(tags, {FIRST: image.digest, SECOND: image.digest})
        else:
            self.assertEqual(outcomes[0], "undone", tw.describe(resumed))
            self.assertEqual(tags, {})
        self.assertEqual(self.journals(), {})


if __name__ == "__main__":
    unittest.main()
