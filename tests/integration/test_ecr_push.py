"""Pushes, promotions and copies against the ECR test bed.

Copies out of ECR: blob GETs are redirected to object storage (S3), and the credentials that ECR's
registry endpoint issued must not follow the redirect (the bed's S3 stand-in rejects any Authorization
header with S3's 400, as the real one does). Also: tagwarden authenticates to ECR with
GetAuthorizationToken through the AWS credential chain, with no docker config and no helper."""

import json
import os
import tempfile
import unittest

import make_image
import tw
from ecr_testbed import EcrTestbed
from registry import Registry


class EcrPushPromoteCopy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bed = EcrTestbed()
        cls.bed.start()
        cls.plain = Registry("plain")
        cls.plain.start()
        cls.work = tempfile.mkdtemp(prefix="tw-ecr-copy-")
        cls.layout = os.path.join(cls.work, "img")
        make_image.make_image(cls.layout, layers=2, layer_size=50000, seed=7)
        cls.bed.create_repository("team/app", lifecycle_policy=json.dumps({"rules": [{
            "rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                             "countUnit": "days", "countNumber": 1},
            "action": {"type": "expire"}}]}))

    @classmethod
    def tearDownClass(cls):
        cls.plain.stop()
        cls.bed.stop()

    def env(self):
        env = dict(self.bed.env())
        env["TAGWARDEN_STATE_DIR"] = os.path.join(self.work, "state")
        env["TAGWARDEN_LOCK"] = "file://" + os.path.join(self.work, "locks")
        return env

    def test_push_to_ecr_then_copy_out_without_credentials_on_the_redirect(self):
        pushed = tw.run_tagwarden("push", f"oci:{self.layout}", f"{self.bed.registry_host}/team/app",
                                  "--version", "1.0", "--env", "dev", "--plain-http", "--output", "json",
                                  env=self.env())
        tw.assert_exit(self, pushed, 0)
        digest = json.loads(pushed.stdout)["digest"]
        self.assertEqual([i["imageDigest"] for i in self.bed.describe_images("team/app")], [digest])
        # ECR's Basic credentials came from GetAuthorizationToken.
        self.assertTrue(self.bed.api_calls(operation="GetAuthorizationToken"))

        blobs_before = len(self.bed.blob_requests())
        copied = tw.run_tagwarden("push", f"docker://{self.bed.registry_host}/team/app:1.0-dev",
                                  f"{self.plain.host}/copied", "--tag", "x", "--plain-http", "--output", "json",
                                  env=self.env())
        tw.assert_exit(self, copied, 0)
        self.assertEqual(json.loads(copied.stdout)["digest"], digest)
        served = self.bed.blob_requests()[blobs_before:]
        # Every blob came through the redirect to object storage, which refuses Authorization headers.
        self.assertEqual(len([r for r in served if r.method == "GET"]), 3, served)
        self.assertTrue(all(r.status == 200 for r in served), [(r.method, r.uri, r.status, r.note) for r in served])
        tw.assert_no_secret(self, copied, self.bed.login_password(), self.bed.secret_access_key)
        self.assertEqual(self.bed.errors, [])

    def push(self, layout, repo, *args):
        return tw.run_tagwarden("push", f"oci:{layout}", f"{self.bed.registry_host}/{repo}", "--plain-http",
                                "--output", "json", *args, env=self.env())

    def test_immutable_repository_refuses_overwrite_before_any_upload(self):
        self.bed.create_repository("team/immutable", mutability="IMMUTABLE", lifecycle_policy=json.dumps({"rules": [{
            "rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                             "countUnit": "days", "countNumber": 1},
            "action": {"type": "expire"}}]}))
        tw.assert_exit(self, self.push(self.layout, "team/immutable", "--tag", "v1"), 0)
        other = os.path.join(self.work, "other")
        make_image.make_image(other, layers=1, layer_size=20000, seed=99)
        mark = self.bed.mark()
        moved = self.push(other, "team/immutable", "--tag", "v1", "--allow-overwrite")
        tw.assert_exit(self, moved, 4)
        self.assertIn("immutable", moved.stderr)
        uploads = [r for r in self.bed.requests(since=mark) if r.method in ("POST", "PUT", "PATCH")]
        self.assertEqual(uploads, [], "nothing may be uploaded for a tag ECR will refuse")

    def test_confirm_with_preview_reports_agreement(self):
        proc = self.push(self.layout, "team/app", "--tag", "preview", "--confirm-with-preview")
        tw.assert_exit(self, proc, 0)
        guards = {g["check"]: g for g in json.loads(proc.stdout)["guards"]}
        self.assertEqual(guards["preview"]["status"], "passed", guards)
        self.assertTrue(self.bed.api_calls(operation="StartLifecyclePolicyPreview"))

    def test_promote_in_ecr_keeps_the_digest_and_moves_no_blob(self):
        pushed = self.push(self.layout, "team/app", "--version", "2.0", "--env", "dev")
        tw.assert_exit(self, pushed, 0)
        digest = json.loads(pushed.stdout)["digest"]
        mark = self.bed.mark()
        promoted = tw.run_tagwarden("promote", f"{self.bed.registry_host}/team/app:2.0", "--from", "dev", "--to",
                                    "prod", "--plain-http", "--output", "json", env=self.env())
        tw.assert_exit(self, promoted, 0)
        self.assertEqual(json.loads(promoted.stdout)["digest"], digest)
        blob_traffic = [r for r in self.bed.requests(since=mark) if "/blobs/" in r.path and r.method != "HEAD"]
        self.assertEqual(blob_traffic, [])
        tags = {t for i in self.bed.describe_images("team/app") if i["imageDigest"] == digest
                for t in i.get("imageTags", [])}
        self.assertIn("2.0-prod", tags)

    def test_policy_simulate_reads_an_ecr_repository(self):
        pushed = self.push(self.layout, "team/app", "--tag", "simulated")
        tw.assert_exit(self, pushed, 0)
        digest = json.loads(pushed.stdout)["digest"]
        sim = tw.run_tagwarden("policy", "simulate", "--repo", f"{self.bed.registry_host}/team/app",
                               "--output", "json", env=self.env())
        tw.assert_exit(self, sim, 0)
        images = {i["imageDigest"]: i for i in json.loads(sim.stdout)["images"]}
        self.assertEqual(images[digest]["action"], "keep")
        self.assertIn("simulated", images[digest]["imageTags"])
        # Another policy over the same images: expire everything older than... every image pushed now is 0 days
        # old, so a count rule keeping one image expires all but the newest.
        policy = os.path.join(self.work, "keep-one.json")
        with open(policy, "w") as f:
            json.dump({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                                    "countNumber": 1}, "action": {"type": "expire"}}]}, f)
        sim = tw.run_tagwarden("policy", "simulate", "--repo", f"{self.bed.registry_host}/team/app", "--policy", policy,
                               "--output", "json", env=self.env())
        tw.assert_exit(self, sim, 0)
        actions = [i["action"] for i in json.loads(sim.stdout)["images"]]
        if len(actions) > 1:
            self.assertIn("expire", actions)
        self.assertEqual(actions.count("keep"), 1)
        not_ecr = tw.run_tagwarden("policy", "simulate", "--repo", f"{self.plain.host}/x", env=self.env())
        tw.assert_exit(self, not_ecr, 2)
        self.assertIn("not an Amazon ECR registry", not_ecr.stderr)

    def test_promotion_into_a_full_repository_is_refused_and_leaves_no_tag(self):
        from ecr_images import SeedImage
        policy_text = json.dumps({"rules": [{
            "rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                             "countUnit": "days", "countNumber": 1},
            "action": {"type": "expire"}}]})
        self.bed.create_repository("team/full", lifecycle_policy=policy_text)
        seed_layout = os.path.join(self.work, "seed")
        SeedImage(self.bed, seed_layout, make_image.make_image(seed_layout, layers=1, layer_size=2048, seed=5)).fill(
            "team/full", 9)
        pushed = self.push(self.layout, "team/app", "--version", "3.0", "--env", "dev")
        tw.assert_exit(self, pushed, 0)
        mark = self.bed.mark()
        promoted = tw.run_tagwarden("promote", f"{self.bed.registry_host}/team/app:3.0", "--from", "dev", "--to",
                                    "prod", "--to-repo", "team/full", "--plain-http", "--quota", "10",
                                    env=self.env())
        tw.assert_exit(self, promoted, 3)
        self.assertIn("9 of 10", promoted.stderr)
        # Judged on the images read under the tag locks while the blobs were copied: the copy is stopped
        # (or its blobs stay referenced by nothing), and no manifest and no tag are written.
        writes = [r for r in self.bed.requests(since=mark) if "/manifests/" in r.path and r.method in ("PUT", "DELETE")]
        self.assertEqual(writes, [])
        self.assertIn("no manifest or tag was written", promoted.stderr)
        self.assertEqual(self.bed.image_count("team/full"), 9)


if __name__ == "__main__":
    unittest.main()
