"""Copies out of ECR: blob GETs are redirected to object storage (S3), and the credentials that ECR's
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


class CopyOutOfEcr(unittest.TestCase):
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


if __name__ == "__main__":
    unittest.main()
