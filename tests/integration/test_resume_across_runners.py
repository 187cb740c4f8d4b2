"""A run killed on one CI runner is finished by `push --resume` on another (issue 9).

A CI runner is ephemeral: its `~/.local/state` dies with it. With `--lock etcd://…` or
`--lock dynamodb://…` the run's journal lives in the lock backend, beside the locks, so another
runner (here: another TMPDIR and another TAGWARDEN_STATE_DIR) finds it and finishes it.

- runner A pushes one image under `1.0-dev` and `latest`; the fault proxy parks its PUT of
  `latest`; the test SIGKILLs it. Runner B runs `push --resume --lock URL` and finishes the run.
- the same with a multi-platform index, killed while it writes the index's child manifests (its
  second child's PUT parked): the journal must hold the children's bytes too, or the registry
  refuses the index.

Runner A's lease (`--lock-ttl 5s`) must lapse before B can take the locks. `tagwarden lock list
--lock URL --output json` lists the run left behind under "runs" until it is finished.
"""

import unittest

import make_image
import tw
from fault_proxy import digest_ref_path, tag_put_path
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401

TTL = "5s"
FIRST = "1.0-dev"
SECOND = "latest"


class AcrossRunnersEtcd(TagSafetyTestCase):
    backend = "etcd"

    def setUp(self):
        super().setUp()
        self.registry = self.start_registry()
        self.proxy = self.start_proxy(self.registry)
        if self.backend == "etcd":
            self.etcd = self.start_etcd()
            self.url = self.etcd.url
        else:
            self.ddb = self.start_dynamodb()
            self.backend_env.update(self.ddb.env())
            self.url = self.ddb.url
        self.repo_name = self.repo()
        self.target = f"{self.proxy.host}/{self.repo_name}"
        self.runner_a = self.runner("a")
        self.runner_b = self.runner("b")

    def kill_on_runner_a(self, layout, hold, what):
        proc = self.spawn_push(f"oci:{layout}", self.target, "--version", "1.0", "--env", "dev", "--tag", SECOND,
                               "--lock", self.url, "--lock-ttl", TTL, env=self.runner_a)
        if not hold.reached.wait(60):
            self.fail(f"the push never reached {what}" + tw.describe(self.finish(proc, 5)))
        self.kill(proc)
        hold.release()
        self.wait_for(lambda: any("client gone" in (r.rule or "") for r in self.proxy.requests("PUT")), 10,
                      "the proxy to drop the dead client's request")
        return proc.pid

    def resume_on_runner_b(self, *args):
        proc = self.run_tw("push", "--resume", *args, "--plain-http", "--lock", self.url, "--lock-timeout", "60s",
                           "--output", "json", env=self.runner_b)
        self.assert_exit(proc, 0)
        return proc, tw.parse_json(self, proc)

    def assert_finished(self, proc, report, digest):
        resumed = report["resumed"]
        self.assertEqual(len(resumed), 1, "runner B must find the run runner A left in the lock backend"
                         + tw.describe(proc))
        run = resumed[0]
        self.assertEqual(run["outcome"], "finished", run)
        self.assertEqual(run["digest"], digest)
        self.assertEqual(run["repository"], self.target)
        self.assertEqual({t["tag"]: t["status"] for t in run["tags"]}.get(SECOND), "created", run)
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: digest, SECOND: digest})
        verified = self.run_tw("verify", f"{self.registry.host}/{self.repo_name}:{SECOND}", "--plain-http")
        self.assert_exit(verified, 0)
        self.assertEqual(self.backend_runs(self.url), [], "a finished run is gone from the backend")
        self.assertEqual(self.held_locks(self.url), {}, "resume released its locks")
        again = self.resume_on_runner_b()[1]
        self.assertEqual(again["resumed"], [], "nothing is left to resume")

    def assert_listed(self, runs, digest, killed_pid):
        self.assertEqual(len(runs), 1, f"lock list must show the run left behind: {runs}")
        run = runs[0]
        self.assertEqual(run["digest"], digest, run)
        self.assertIn(run["repository"], (self.repo_name, self.target), run)
        self.assertIn(FIRST, [t if isinstance(t, str) else t.get("tag") for t in run["tags"]], run)
        self.assertEqual(str(run["owner"].get("pid")), str(killed_pid), run)
        self.assertIn("expiresAt", run)

    def test_killed_after_its_first_tag_is_finished_elsewhere(self):
        layout, image = self.image("a")
        hold = self.proxy.hold("PUT", tag_put_path(self.repo_name, SECOND), timeout=60)
        killed_pid = self.kill_on_runner_a(layout, hold, "its second tag")
        self.assertEqual(self.registry.tags(self.repo_name), {FIRST: image.digest})
        on_disk = self.journals(self.runner_a["TAGWARDEN_STATE_DIR"])
        runs = self.backend_runs(self.url)

        proc, report = self.resume_on_runner_b()
        self.assert_finished(proc, report, image.digest)
        self.assert_listed(runs, image.digest, killed_pid)
        self.assertEqual(on_disk, {}, "with a shared lock backend the journal is kept there, not on runner A's disk")

    def test_index_killed_while_writing_its_children_is_finished_elsewhere(self):
        layout = f"{self.tmp}/images/index"
        index = make_image.make_index(layout, platforms=(("linux", "amd64"), ("linux", "arm64"), ("linux", "s390x")),
                                      layers=1, layer_size=2048, seed=f"{self.id()}-index")
        hold = self.proxy.hold("PUT", digest_ref_path(self.repo_name), nth=2, timeout=60)
        self.kill_on_runner_a(layout, hold, "its second child manifest")
        self.assertEqual(self.registry.tags(self.repo_name), {})
        written = self.registry.manifest_digests(self.repo_name)
        self.assertEqual(len(written), 1, f"one child manifest was written before the kill: {written}")
        self.assertLess(written, set(index.manifest_digests))

        proc, report = self.resume_on_runner_b()
        self.assert_finished(proc, report, index.digest)
        self.assertEqual(self.registry.manifest_digests(self.repo_name), {index.digest, *index.manifest_digests})


class AcrossRunnersDynamoDb(AcrossRunnersEtcd):
    backend = "dynamodb"


if __name__ == "__main__":
    unittest.main()
