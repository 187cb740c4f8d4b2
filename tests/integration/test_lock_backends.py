"""Lock backends as an operator meets them: a backend that does not answer is its own error (exit 8,
"lock backend unreachable"), not contention after --lock-timeout; `tagwarden lock init` prepares a
DynamoDB table (on-demand, TTL on ExpiresAt) that a push then locks with; `tagwarden lock list` shows
the runs left behind (journals beside the locks in etcd and DynamoDB, on disk for file://); the file://
backend refuses a directory others may write and takes a lock on a 239-character repository at once.
"""

import json
import os
import time
import unittest

import tw
from dynamodb import DynamoDb
from tagsafety import TagSafetyTestCase, setUpModule  # noqa: F401


def journal_document(registry, repository, digest, tags):
    """A push journal as src/push writes it (only the fields `lock list` reads matter here)."""
    return json.dumps({"version": 1, "registry": registry, "repository": repository, "digest": digest,
                       "tags": [{"tag": t, "previous": None, "written": i == 0} for i, t in enumerate(tags)]})


RUN_ID = "0123456789abcdef0123456789abcdef"
DIGEST = "sha256:" + "ab" * 32
OWNER = {"host": "runner-9", "pid": 31337, "runId": RUN_ID, "ciUrl": "https://github.example/acme/shop/actions/runs/77"}
EXPIRES = 1_900_000_000


class LockBackendTests(TagSafetyTestCase):

    def push_once(self, repo, lock_url, *args, timeout=tw.DEFAULT_TIMEOUT):
        layout, _image = self.image("a")
        registry = self.start_registry()
        start = time.monotonic()
        proc = self.push(f"oci:{layout}", f"{registry.host}/{repo}", "--tag", "t", "--lock", lock_url, *args,
                         timeout=timeout)
        return proc, time.monotonic() - start

    # -- unreachable ------------------------------------------------------------------------------

    def test_stopped_etcd_is_unreachable_not_contention(self):
        etcd = self.start_etcd()
        url = etcd.url
        etcd.stop()
        proc, elapsed = self.push_once(self.repo(), url, "--lock-timeout", "60s")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assert_stderr_mentions(proc, "lock backend unreachable")
        self.assert_stderr_mentions(proc, url)
        self.assertLess(elapsed, 30, "an unreachable backend must not be waited for like a held lock" + tw.describe(proc))

        listed = self.run_tw("lock", "list", "--lock", url)
        self.assert_exit(listed, tw.EXIT_NETWORK)
        self.assert_stderr_mentions(listed, "lock backend unreachable")

    def test_stopped_dynamodb_is_unreachable_not_contention(self):
        ddb = self.start_dynamodb()
        self.backend_env.update(ddb.env())
        url = ddb.url
        ddb.stop()
        proc, elapsed = self.push_once(self.repo(), url, "--lock-timeout", "60s")
        self.assert_exit(proc, tw.EXIT_NETWORK)
        self.assert_stderr_mentions(proc, "lock backend unreachable")
        self.assertLess(elapsed, 30, "an unreachable backend must not be waited for like a held lock" + tw.describe(proc))

    # -- lock init --------------------------------------------------------------------------------

    def test_lock_init_creates_the_dynamodb_table_with_ttl(self):
        ddb = DynamoDb(create_table=False)
        ddb.start()
        self.addCleanup(ddb.stop)
        self.backend_env.update(ddb.env())
        self.assertEqual(ddb.tables(), [])

        missing, _elapsed = self.push_once(self.repo("before"), ddb.url)
        self.assert_exit(missing, tw.EXIT_USAGE)
        self.assert_stderr_mentions(missing, "tagwarden lock init 'dynamodb://tagwarden-locks?region=us-east-1")
        self.assert_stderr_mentions(missing, "aws dynamodb create-table --table-name tagwarden-locks")

        first = self.run_tw("lock", "init", ddb.url)
        self.assert_exit(first, tw.EXIT_OK)
        self.assertIn("created the DynamoDB lock table tagwarden-locks", first.stdout, tw.describe(first))
        self.assertEqual(len(first.stdout.strip().splitlines()), 1, "one line saying what it did")
        self.assertEqual(ddb.tables(), ["tagwarden-locks"])
        table = ddb.client().describe_table(TableName="tagwarden-locks")["Table"]
        self.assertEqual(table["KeySchema"], [{"AttributeName": "LockKey", "KeyType": "HASH"}])
        self.assertEqual(table["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
        self.assertEqual(table["TableStatus"], "ACTIVE")
        self.assertEqual(ddb.time_to_live(), {"TimeToLiveStatus": "ENABLED", "AttributeName": "ExpiresAt"})

        second = self.run_tw("lock", "init", ddb.url)
        self.assert_exit(second, tw.EXIT_OK)
        self.assertIn("exists", second.stdout, tw.describe(second))
        self.assertIn("TTL on ExpiresAt already enabled", second.stdout, tw.describe(second))

        proc, _elapsed = self.push_once(self.repo(), ddb.url)
        self.assert_exit(proc, tw.EXIT_OK)
        self.assertIn(("PutItem", 200), ddb.calls("PutItem"), "the push took its lock in the new table")

    def test_lock_init_file_creates_a_private_directory(self):
        lock_dir = os.path.join(self.tmp, "new", "locks")
        proc = self.run_tw("lock", "init", "file://" + lock_dir)
        self.assert_exit(proc, tw.EXIT_OK)
        self.assertIn("created the lock directory", proc.stdout, tw.describe(proc))
        self.assertEqual(os.stat(lock_dir).st_mode & 0o7777, 0o700)

    # -- lock list shows runs left behind ----------------------------------------------------------

    def assert_run_listed(self, lock_url):
        listed = self.lock_list(lock_url)
        self.assertEqual(listed["locks"], [], json.dumps(listed, indent=2))
        self.assertEqual(listed["runs"], [{
            "runId": RUN_ID, "owner": OWNER, "registry": "r.example", "repository": "team/app", "digest": DIGEST,
            "tags": ["1.0-dev", "1.0-prod"], "expiresAt": "2030-03-17T17:46:40Z"}], json.dumps(listed, indent=2))
        text = self.run_tw("lock", "list", "--lock", lock_url)
        self.assert_exit(text, tw.EXIT_OK)
        line = f"run {RUN_ID} on r.example/team/app@{DIGEST} (tags 1.0-dev, 1.0-prod) left by pid 31337 on runner-9"
        self.assertIn(line, text.stdout, tw.describe(text))
        self.assertIn("(https://github.example/acme/shop/actions/runs/77)", text.stdout)
        self.assertIn("resume with: tagwarden push --resume r.example/team/app", text.stdout)

    def document(self):
        return journal_document("r.example", "team/app", DIGEST, ["1.0-dev", "1.0-prod"])

    def test_lock_list_shows_runs_left_in_etcd(self):
        etcd = self.start_etcd()
        etcd.put(f"tagwarden/journals/{RUN_ID}",
                 json.dumps({"runId": RUN_ID, "owner": OWNER, "expiresEpoch": EXPIRES, "journal": self.document()}))
        self.assert_run_listed(etcd.url)

    def test_lock_list_shows_runs_left_in_dynamodb(self):
        ddb = self.start_dynamodb()
        self.backend_env.update(ddb.env())
        ddb.put_item({"LockKey": f"journal#{RUN_ID}", "Kind": "journal", "RunId": RUN_ID, "Document": self.document(),
                      "OwnerHost": OWNER["host"], "OwnerPid": OWNER["pid"], "OwnerRunId": RUN_ID,
                      "OwnerCiUrl": OWNER["ciUrl"], "ExpiresAt": EXPIRES})
        self.assert_run_listed(ddb.url)

    def test_lock_list_shows_runs_left_on_disk_for_file_locks(self):
        os.makedirs(self.journal_dir(), exist_ok=True)
        with open(os.path.join(self.journal_dir(), f"{RUN_ID}.json"), "w") as f:
            json.dump({"runId": RUN_ID, "owner": OWNER, "expiresEpoch": EXPIRES, "journal": self.document()}, f)
        self.assert_run_listed(self.lock_url)

    # -- file:// hardening ------------------------------------------------------------------------

    def test_file_lock_directory_writable_by_others_is_refused(self):
        shared = os.path.join(self.tmp, "shared-locks")
        os.makedirs(shared)
        os.chmod(shared, 0o777)
        proc, elapsed = self.push_once(self.repo(), "file://" + shared, "--lock-timeout", "60s")
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_stderr_mentions(proc, "writable by group or others")
        self.assert_stderr_mentions(proc, f"chmod 700 {shared}")
        self.assertLess(elapsed, 30, tw.describe(proc))

    def test_file_lock_on_a_239_character_repository_is_taken_at_once(self):
        repo = "team/" + "a" * 234
        self.assertEqual(len(repo), 239)
        proc, elapsed = self.push_once(repo, self.lock_url, "--lock-timeout", "60s")
        self.assert_exit(proc, tw.EXIT_OK)
        self.assertNotIn("File name too long", proc.stderr)
        self.assertLess(elapsed, 30, tw.describe(proc))


if __name__ == "__main__":
    unittest.main()
