"""What a guarded write to ECR costs (issue 13, "safety that costs nothing"), on the ECR test bed.

A guarded push or promotion reads each fact once: GetAuthorizationToken (the data plane's password),
DescribeRepositories (tag mutability), GetLifecyclePolicy, Service Quotas L-03A36CE1 (GetServiceQuota,
GetAWSDefaultServiceQuota only when that fails) and DescribeImages (every page at maxResults 1000: one
fact), read once, under the tag locks, beside the upload. With --guards-first the images are read before
the upload too, so DescribeImages (every page, and nothing else) is read twice: the documented cost of
judging every guard before the first byte. The repository holds 1,200 images (two pages), seeded by
ecr_seed.

--output json reports the wall time of each phase in "timings" (guards, lockWait, upload, manifests,
verify), which never add up to more than durationSeconds. Times are never asserted.
"""

import collections
import os
import unittest

import ecr_seed
import make_image
import tw
from ecr_images import UNTAGGED_14_DAYS, GuardEcrCase, start_module_bed, stop_module_bed

_state = {}
BIG = "calls/big"
IMAGES = 1200  # two DescribeImages pages at maxResults 1000 (twelve at the default 100); the tests add a few
PAGES = 2
PHASES = ("guards", "lockWait", "upload", "manifests", "verify")


def setUpModule():  # noqa: N802 (unittest's name)
    start_module_bed(_state, "tw-guard-calls-")
    bed = _state["bed"]
    bed.create_repository(BIG, lifecycle_policy=UNTAGGED_14_DAYS)
    layout = os.path.join(_state["tmp"], "seed")
    info = make_image.make_image(layout, layers=1, layer_size=1024, seed="calls-seed")
    ecr_seed.seed_repository(bed, BIG, IMAGES, layout, info)


def tearDownModule():  # noqa: N802
    stop_module_bed(_state)


class Case(GuardEcrCase):
    state = _state

    def calls_during(self, run):
        """(process, Counter of control-plane operations, [calls]) of ``run()``."""
        before = len(self.bed.api_calls())
        proc = run()
        calls = self.bed.api_calls()[before:]
        return proc, collections.Counter(c.operation for c in calls), calls

    def assert_one_call_per_fact(self, proc, counts, quota_calls=None, image_reads=1):
        expected = {
            "GetAuthorizationToken": 1,
            "DescribeRepositories": 1,
            "GetLifecyclePolicy": 1,
            "GetServiceQuota": 1,
            # every page, once (under the tag locks, beside the upload); twice with --guards-first
            "DescribeImages": PAGES * image_reads,
        }
        expected.update(quota_calls or {})
        self.assertEqual(dict(counts), expected, "control-plane calls of one guarded write, by operation" +
                         tw.describe(proc))

    def assert_timings(self, report, proc):
        self.assertIn("timings", report, "--output json reports the phases" + tw.describe(proc))
        timings = report["timings"]
        self.assertEqual(sorted(timings), sorted(PHASES), tw.describe(proc))
        for phase in PHASES:
            value = timings[phase]
            self.assertIsInstance(value, (int, float), f"timings.{phase}" + tw.describe(proc))
            self.assertNotIsInstance(value, bool)
            self.assertGreaterEqual(value, 0, f"timings.{phase}" + tw.describe(proc))
        # Both are whole milliseconds in seconds; compare them as such (no float sum drift).
        total_ms = sum(round(timings[p] * 1000) for p in PHASES)
        self.assertLessEqual(total_ms, round(report["durationSeconds"] * 1000),
                             "the phases do not overlap: their sum is at most the run's duration" + tw.describe(proc))
        # Measured, not zeros: the guards read ECR over HTTP, which takes at least a millisecond.
        self.assertGreater(timings["guards"], 0, "the guards read ECR: that takes time" + tw.describe(proc))


class GuardedPushCalls(Case):

    def test_push_to_a_repository_of_1200_images_reads_each_fact_once(self):
        layout, info = self.image()
        held = self.bed.image_count(BIG)  # IMAGES, and what the other tests of the module pushed
        self.assertGreaterEqual(held, IMAGES)
        mark = self.mark()
        proc, counts, _calls = self.calls_during(
            lambda: self.push(layout, self.target(BIG), "--version", "1.0.0", "--env", "dev", "--output", "json"))
        tw.assert_exit(self, proc, 0)
        self.assert_one_call_per_fact(proc, counts)
        report = tw.parse_json(self, proc)
        self.assert_timings(report, proc)
        self.assertGreater(report["timings"]["upload"], 0, "two blobs were uploaded" + tw.describe(proc))
        self.assertIn(f"holds {held} of", self.guards(proc)["quota"][1], "every image counted, both pages")
        self.assertIn(f"read under the tag locks: {held} image(s), {PAGES} DescribeImages page(s)",
                      proc.stderr, "the read says what it costs" + tw.describe(proc))
        self.mark()
        requests = self.bed.requests(since=mark)
        puts = [r for r in requests if r.method == "PUT" and "/manifests/" in r.path]
        self.assertEqual(len(puts), 1, "one manifest write: the image under its tag" + tw.describe(proc))
        posts = [r for r in requests if r.method == "POST" and r.path.endswith("/blobs/uploads/")]
        self.assertEqual(len(posts), len(info.blob_digests), "each blob uploaded once" + tw.describe(proc))
        self.assertNoBedErrors()

    def test_denied_service_quotas_fall_back_once(self):
        layout, _info = self.image()
        self.bed.deny_service_quotas()
        self.addCleanup(self.bed.deny_service_quotas, False)
        proc, counts, calls = self.calls_during(
            lambda: self.push(layout, self.target(BIG), "--version", "1.0.1", "--env", "dev", "--output", "json"))
        tw.assert_exit(self, proc, 0)
        self.assert_one_call_per_fact(proc, counts, {"GetAWSDefaultServiceQuota": 1})
        self.assertEqual([c.status for c in calls if c.service == "servicequotas"], [400, 400])
        self.assertIn("documented_default", self.guards(proc)["quota"][1])

    def test_guards_first_reads_the_images_before_the_upload_and_again_under_the_locks(self):
        layout, _info = self.image()
        held = self.bed.image_count(BIG)
        mark = self.mark()
        proc, counts, calls = self.calls_during(
            lambda: self.push(layout, self.target(BIG), "--version", "1.0.4", "--env", "dev", "--guards-first",
                              "--output", "json"))
        tw.assert_exit(self, proc, 0)
        self.assert_one_call_per_fact(proc, counts, image_reads=2)
        self.assertIn(f"read again under the tag locks: {held} image(s), {PAGES} DescribeImages page(s)",
                      proc.stderr, tw.describe(proc))
        # Every guard before the first byte: the first read's pages all came before the first upload.
        self.mark()
        first_post = min(r.time for r in self.bed.requests(since=mark)
                         if r.method == "POST" and r.path.endswith("/blobs/uploads/"))
        pages = sorted(c.time for c in calls if c.operation == "DescribeImages")
        self.assertLess(pages[PAGES - 1], first_post, "the first read ends before the upload starts" + tw.describe(proc))
        self.assert_timings(tw.parse_json(self, proc), proc)

    def test_a_refused_image_status_filter_is_not_sent_again_under_the_locks(self):
        layout, _info = self.image()
        self.bed.refuse_image_status_filter()
        self.addCleanup(self.bed.refuse_image_status_filter, False)
        proc, counts, calls = self.calls_during(
            lambda: self.push(layout, self.target(BIG), "--version", "1.0.2", "--env", "dev", "--output", "json"))
        tw.assert_exit(self, proc, 0)
        refused = [c for c in calls if c.operation == "DescribeImages" and c.status != 200]
        self.assertEqual(len(refused), 1, "the refused filter is learned once per run" + tw.describe(proc))
        self.assertEqual(counts["DescribeImages"], 1 + PAGES, tw.describe(proc))
        self.assertEqual(proc.stderr.count("refused the imageStatus filter"), 1, "said once" + tw.describe(proc))

    def test_promotion_into_the_big_repository_reads_each_fact_once(self):
        source = self.create("calls/source")
        layout, info = self.image()
        tw.assert_exit(self, self.push(layout, self.target(source), "--version", "2.0.0", "--env", "dev"), 0)
        proc, counts, _calls = self.calls_during(
            lambda: self.run_tw("promote", self.target(source, "2.0.0"), "--from", "dev", "--to", "prod",
                                "--to-repo", BIG, "--output", "json"))
        tw.assert_exit(self, proc, 0)
        self.assert_one_call_per_fact(proc, counts)
        report = tw.parse_json(self, proc)
        self.assertEqual(report["digest"], info.manifest_digest)
        self.assert_timings(report, proc)

    def test_dry_run_reports_timings_without_writing(self):
        layout, _info = self.image()
        proc, counts, _calls = self.calls_during(
            lambda: self.push(layout, self.target(BIG), "--version", "1.0.3", "--env", "dev", "--dry-run",
                              "--output", "json"))
        tw.assert_exit(self, proc, 0)
        # No lock: the images once, beside the existence checks.
        self.assertEqual(counts["DescribeImages"], PAGES, tw.describe(proc))
        report = tw.parse_json(self, proc)
        self.assert_timings(report, proc)
        self.assertEqual(report["timings"]["manifests"], 0)
        self.assertEqual(report["timings"]["verify"], 0)


if __name__ == "__main__":
    unittest.main()
