"""tagwarden promote REGISTRY/REPO:VERSION --from dev --to prod, against two docker-registry instances.

Images are put into the source registry with skopeo; what tagwarden wrote is read back with skopeo
(raw manifest bytes, hashed here), with the registry's storage (tags, manifests, linked blobs) and
with its access log (which requests a promotion made). What each class proves:

- PromoteWithinRepository: the same manifest bytes under VERSION-prod (same digest), idempotent
  re-runs, no blob read or written (request log), indexes promoted whole, --platform selection.
- PromoteToOtherRepository: --to-repo in the same registry mounts every blob (and falls back to a
  streamed copy when the registry answers a mount with 202); --referrers.
- PromoteAcrossRegistries: --to-repo REGISTRY/REPO streams every blob, digest-checked on the way.
- PromoteRefusals: a refused promotion (tag conflict, missing VERSION-dev, bad flags, held lock) and
  --dry-run leave no tag and make no write request.
"""

import hashlib
import json
import unittest
import urllib.parse

import tw
from fault_proxy import FaultProxy, blob_upload_path
from promotion import (OCI_INDEX, OCI_MANIFEST, PromotionTestCase, corrupt_stored_blob, fallback_tag, push_referrer,
                       setUpModule)  # noqa: F401

THREE_PLATFORMS = [("linux", "amd64"), ("linux", "arm64", "v8"), ("linux", "arm", "v7")]


def platform_of(child):
    return "/".join(child.platform)


class PromoteWithinRepository(PromotionTestCase):

    def test_same_digest_new_tag_and_rerun_unchanged(self):
        repo = self.repo()
        image = self.seed(repo)
        ref = f"{self.host}/{repo}:1.0.0"

        report = self.promote_json(ref)
        digest = image.digest
        self.assertEqual(report["digest"], digest, "the promoted digest is the dev image's digest")
        self.assertEqual(report["sourceDigest"], digest)
        self.assertIs(report["digestChanged"], False)
        self.assertEqual(report["promotedFrom"], f"{self.host}/{repo}:1.0.0-dev")
        self.assertEqual(report["repository"], f"{self.host}/{repo}")
        self.assertEqual(report["mediaType"], OCI_MANIFEST)
        self.assertEqual(report["referrersCopied"], 0)
        self.assertIs(report["verified"], True)
        self.assert_tag_statuses(report, {"1.0.0-prod": "created"})
        self.assert_blobs(report, uploaded_bytes=0, mounted_bytes=0)

        # skopeo reads the very bytes the dev tag has under the prod tag.
        self.assertEqual(self.raw(self.registry, f"{repo}:1.0.0-prod"), self.raw(self.registry, f"{repo}:1.0.0-dev"))
        self.assertEqual(self.raw_digest(self.registry, f"{repo}:1.0.0-prod"), digest)
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": digest, "1.0.0-prod": digest})
        self.assertEqual(self.registry.manifest_digests(repo), {digest}, "no new manifest revision")

        # Re-runs are idempotent: exit 0, "unchanged", nothing written.
        mark = self.mark()
        again = self.promote_json(ref)
        self.assertEqual(again["digest"], digest)
        self.assert_tag_statuses(again, {"1.0.0-prod": "unchanged"})
        self.assertEqual(self.writes(self.registry, mark), [], "a re-run writes nothing")
        text = self.promote(ref)
        self.assert_exit(text, tw.EXIT_OK)
        self.assertEqual(text.stdout.splitlines(), [f"{self.host}/{repo}@{digest}"], tw.describe(text))
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": digest, "1.0.0-prod": digest})

    def test_request_log_shows_no_blob_transfer(self):
        repo = self.repo()
        image = self.seed(repo, layers=4)
        mark = self.mark()
        proc = self.promote(f"{self.host}/{repo}:1.0.0")
        self.assert_exit(proc, tw.EXIT_OK)
        requests = self.since(self.registry, mark)
        self.assertEqual(self.blob_transfers(self.registry, mark), [],
                         f"a same-repository promotion must not GET, POST, PATCH or PUT a blob: {requests}")
        # The log is really read: the one write is the manifest PUT under the new tag.
        self.assertEqual([(r.method, r.path) for r in self.writes(self.registry, mark)],
                         [("PUT", f"/v2/{repo}/manifests/1.0.0-prod")], requests)
        blob_heads = {r.path.rsplit("/", 1)[1] for r in requests if r.method == "HEAD" and "/blobs/" in r.path}
        self.assertLessEqual(blob_heads, set(image.blob_digests), "only the image's blobs are looked at (HEAD)")
        self.assertEqual(self.registry.tags(repo)["1.0.0-prod"], image.digest)

    def test_index_promoted_whole(self):
        repo = self.repo()
        index = self.seed(repo, index=True)
        mark = self.mark()
        report = self.promote_json(f"{self.host}/{repo}:1.0.0")
        self.assertEqual(report["digest"], index.digest, "the index keeps its digest")
        self.assertEqual(report["mediaType"], OCI_INDEX)
        self.assertIs(report["digestChanged"], False)
        self.assertEqual(self.raw_digest(self.registry, f"{repo}:1.0.0-prod"), index.digest)
        listed = [m["digest"] for m in json.loads(self.raw(self.registry, f"{repo}:1.0.0-prod"))["manifests"]]
        self.assertEqual(listed, index.manifest_digests)
        for child in index.children:
            self.assertEqual(self.raw_digest(self.registry, f"{repo}@{child.digest}"), child.digest, platform_of(child))
        self.assertEqual(self.registry.manifest_digests(repo), {index.digest, *index.manifest_digests})
        self.assertEqual(self.blob_transfers(self.registry, mark), [], self.since(self.registry, mark))

    def test_one_platform_promotes_that_child_manifest(self):
        repo = self.repo()
        index = self.seed(repo, index=True, platforms=THREE_PLATFORMS)
        arm64 = index.children[1]
        report = self.promote_json(f"{self.host}/{repo}:1.0.0", "--platform", "linux/arm64")
        self.assertEqual(report["digest"], arm64.digest, "one platform: the child manifest itself, never a new index")
        self.assertEqual(report["mediaType"], OCI_MANIFEST)
        self.assertIs(report["digestChanged"], True)
        self.assertEqual(report["sourceDigest"], index.digest)
        self.assert_tag_statuses(report, {"1.0.0-prod": "created"})
        self.assertEqual(self.raw_digest(self.registry, f"{repo}:1.0.0-prod"), arm64.digest)
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": index.digest, "1.0.0-prod": arm64.digest})

    def test_two_platforms_make_a_new_index_of_exactly_those(self):
        repo = self.repo()
        index = self.seed(repo, index=True, platforms=THREE_PLATFORMS)
        amd64, arm64, arm = index.children
        dest = self.repo("prod")
        report = self.promote_json(f"{self.host}/{repo}:1.0.0", "--platform", "linux/amd64", "--platform",
                                   "linux/arm64/v8", "--to-repo", dest)
        new_digest = report["digest"]
        self.assertNotEqual(new_digest, index.digest)
        self.assertIs(report["digestChanged"], True)
        self.assertEqual(report["sourceDigest"], index.digest)
        self.assertEqual(report["mediaType"], OCI_INDEX)

        raw = self.raw(self.registry, f"{dest}:1.0.0-prod")
        self.assertEqual(hashlib.sha256(raw).hexdigest(), new_digest.split(":", 1)[1])
        doc = json.loads(raw)
        self.assertEqual(doc["mediaType"], OCI_INDEX)
        children = {m["digest"]: m.get("platform") for m in doc["manifests"]}
        self.assertEqual(set(children), {amd64.digest, arm64.digest}, json.dumps(doc, indent=2))
        self.assertEqual(len(doc["manifests"]), 2, json.dumps(doc, indent=2))
        self.assertEqual(children[arm64.digest], {"os": "linux", "architecture": "arm64", "variant": "v8"})
        for child in (amd64, arm64):
            self.assertEqual(self.raw_digest(self.registry, f"{dest}@{child.digest}"), child.digest)
        # The platform left out is not copied: neither its manifest nor its blobs.
        self.assertEqual(self.registry.manifest_digests(dest), {new_digest, amd64.digest, arm64.digest})
        self.assertEqual(self.registry.layer_digests(dest), set(amd64.blob_digests) | set(arm64.blob_digests))
        self.assertTrue(set(arm.blob_digests).isdisjoint(self.registry.layer_digests(dest)))
        self.assert_blobs(report, mounted=len(amd64.blobs) + len(arm64.blobs))
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": index.digest}, "the source repository is untouched")


class PromoteToOtherRepository(PromotionTestCase):

    def test_to_repo_mounts_every_blob(self):
        repo, dest = self.repo(), self.repo("prod")
        image = self.seed(repo, layers=3)
        mark = self.mark()
        report = self.promote_json(f"{self.host}/{repo}:1.0.0", "--to-repo", dest)
        self.assertEqual(report["repository"], f"{self.host}/{dest}")
        self.assertEqual(report["digest"], image.digest)
        self.assertIs(report["digestChanged"], False)
        self.assert_blobs(report, mounted=len(image.blobs), mounted_bytes=image.blob_bytes, uploaded_bytes=0)
        self.assertEqual(self.raw_digest(self.registry, f"{dest}:1.0.0-prod"), image.digest)
        self.assertEqual(self.registry.tags(dest), {"1.0.0-prod": image.digest})
        self.assertEqual(self.registry.layer_digests(dest), set(image.blob_digests))
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": image.digest}, "no prod tag in the source repository")

        mounts = self.mounts(self.registry, mark, dest)
        self.assertEqual(len(mounts), len(image.blobs), self.since(self.registry, mark))
        for r in mounts:
            self.assertEqual(urllib.parse.parse_qs(r.uri.split("?", 1)[1]).get("from"), [repo], r)
        # A mount reads no blob and uploads none: no GET of a blob, no PATCH/PUT of an upload.
        mount_uris = {r.uri for r in mounts}
        moved = [r for r in self.blob_transfers(self.registry, mark) if r.uri not in mount_uris]
        self.assertEqual(moved, [], self.since(self.registry, mark))

        again = self.promote_json(f"{self.host}/{repo}:1.0.0", "--to-repo", dest)
        self.assert_tag_statuses(again, {"1.0.0-prod": "unchanged"})
        self.assert_blobs(again, existing=len(image.blobs))

    def test_mount_answered_with_202_falls_back_to_a_copy(self):
        # The registry may answer a mount by opening an ordinary upload session (202) instead of
        # mounting; the proxy answers the first mount that way, so that blob must be copied.
        repo, dest = self.repo(), self.repo("prod")
        image = self.seed(repo, layers=3)
        with FaultProxy(self.host) as proxy:
            # Like a registry that declines to mount: 202 and the Location of a (here unknown) upload session.
            rule = proxy.fail("POST", blob_upload_path(dest), status=202, times=1, body=b"",
                              headers={"Location": f"/v2/{dest}/blobs/uploads/00000000-0000-0000-0000-000000000000"})
            report = self.promote_json(f"{proxy.host}/{repo}:1.0.0", "--to-repo", dest, "--jobs", "1")
            self.assertEqual(rule.count, 1, proxy.requests())
        self.assertEqual(report["digest"], image.digest)
        self.assert_blobs(report, mounted=len(image.blobs) - 1, uploaded=1)
        self.assertEqual(self.registry.layer_digests(dest), set(image.blob_digests))
        self.assertEqual(self.registry.tags(dest), {"1.0.0-prod": image.digest})
        self.assertEqual(self.raw_digest(self.registry, f"{dest}:1.0.0-prod"), image.digest)

    def _image_with_referrer(self, repo):
        image = self.seed(repo)
        referrer, data, payload = push_referrer(self.registry, repo, image.manifest)
        return image, referrer, data, payload

    def test_referrers_copied_only_with_the_flag(self):
        repo = self.repo()
        image, referrer, data, payload = self._image_with_referrer(repo)

        plain = self.repo("plain")
        report = self.promote_json(f"{self.host}/{repo}:1.0.0", "--to-repo", plain)
        self.assertEqual(report["referrersCopied"], 0)
        self.assertNotIn(referrer["digest"], self.registry.manifest_digests(plain), "no --referrers: none copied")

        dest = self.repo("signed")
        report = self.promote_json(f"{self.host}/{repo}:1.0.0", "--to-repo", dest, "--referrers")
        self.assertEqual(report["digest"], image.digest)
        self.assertEqual(report["referrersCopied"], 1, json.dumps(report, indent=2))
        self.assertIn(referrer["digest"], self.registry.manifest_digests(dest))
        status, content_type, stored = self.registry.get_manifest(dest, referrer["digest"])
        self.assertEqual(status, 200)
        self.assertEqual(stored, data, "the referrer is copied byte for byte")
        self.assertEqual(content_type, OCI_MANIFEST)
        self.assertEqual(json.loads(stored)["subject"]["digest"], image.digest)
        self.assertIn(payload, self.registry.layer_digests(dest), "the referrer's blobs come along")
        self.assertEqual(self.registry.tags(dest).get("1.0.0-prod"), image.digest)

    def test_referrers_findable_in_destination_by_the_fallback_tag(self):
        # docker-registry 2.8 has no referrers API: a client finds the referrers of a digest only through
        # the fallback tag sha256-<hex>, which the OCI distribution spec has the pushing client update.
        repo, dest = self.repo(), self.repo("signed")
        image, referrer, _data, _payload = self._image_with_referrer(repo)
        self.promote_json(f"{self.host}/{repo}:1.0.0", "--to-repo", dest, "--referrers")
        tag = fallback_tag(image.digest)
        status, _type, body = self.registry.get_manifest(dest, tag)
        self.assertEqual(status, 200, f"{dest}:{tag} must list the copied referrer; tags are "
                                      f"{sorted(self.registry.tags(dest))}")
        listed = [m["digest"] for m in json.loads(body)["manifests"]]
        self.assertEqual(listed, [referrer["digest"]])


class PromoteAcrossRegistries(PromotionTestCase):

    def test_blobs_stream_to_another_registry(self):
        repo = self.repo()
        image = self.seed(repo, layers=3, layer_size=96 * 1024)
        dest_repo = "copy/" + self.repo("prod").replace("/", "-")
        dest = f"{self.other.host}/{dest_repo}"
        src_mark, dst_mark = self.mark(), self.mark(self.other)
        report = self.promote_json(f"{self.host}/{repo}:1.0.0", "--to-repo", dest)
        self.assertEqual(report["repository"], dest)
        self.assertEqual(report["digest"], image.digest)
        self.assertIs(report["digestChanged"], False)
        self.assertEqual(report["promotedFrom"], f"{self.host}/{repo}:1.0.0-dev")
        self.assert_blobs(report, uploaded=len(image.blobs), uploaded_bytes=image.blob_bytes, mounted_bytes=0)
        self.assertEqual(self.raw_digest(self.other, f"{dest_repo}:1.0.0-prod"), image.digest)
        self.assertEqual(self.other.tags(dest_repo), {"1.0.0-prod": image.digest})
        self.assertEqual(self.other.layer_digests(dest_repo), set(image.blob_digests))
        self.assertEqual(self.other.pending_uploads(dest_repo), [])
        self.assertEqual(self.writes(self.registry, src_mark), [], "the source registry is only read")
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": image.digest})
        got = [r for r in self.since(self.registry, src_mark) if r.method == "GET" and "/blobs/" in r.path]
        self.assertEqual(len(got), len(image.blobs), "each blob is read from the source once")
        self.assertEqual([r for r in self.since(self.other, dst_mark) if r.method == "GET" and "/blobs/" in r.path],
                         [], "nothing is read back from the destination but sizes (HEAD)")
        self.assert_pulls_back(self.other, f"{dest_repo}:1.0.0-prod", image.digest, image)

        again = self.promote_json(f"{self.host}/{repo}:1.0.0", "--to-repo", dest)
        self.assert_tag_statuses(again, {"1.0.0-prod": "unchanged"})
        self.assert_blobs(again, existing=len(image.blobs), existing_bytes=image.blob_bytes)

    def test_index_to_another_registry(self):
        repo = self.repo()
        index = self.seed(repo, index=True)
        dest_repo = self.repo("prod")
        report = self.promote_json(f"{self.host}/{repo}:1.0.0", "--to-repo", f"{self.other.host}/{dest_repo}")
        self.assertEqual(report["digest"], index.digest)
        self.assert_blobs(report, uploaded=len(index.blobs))
        self.assertEqual(self.raw_digest(self.other, f"{dest_repo}:1.0.0-prod"), index.digest)
        for child in index.children:
            self.assertEqual(self.raw_digest(self.other, f"{dest_repo}@{child.digest}"), child.digest)
        self.assertEqual(self.other.manifest_digests(dest_repo), {index.digest, *index.manifest_digests})
        self.assert_pulls_back(self.other, f"{dest_repo}:1.0.0-prod", index.digest, index)

    def test_referrers_to_another_registry(self):
        repo, dest_repo = self.repo(), self.repo("prod")
        image = self.seed(repo)
        referrer, data, payload = push_referrer(self.registry, repo, image.manifest)
        report = self.promote_json(f"{self.host}/{repo}:1.0.0", "--to-repo", f"{self.other.host}/{dest_repo}",
                                   "--referrers")
        self.assertEqual(report["referrersCopied"], 1, json.dumps(report, indent=2))
        status, _type, stored = self.other.get_manifest(dest_repo, referrer["digest"])
        self.assertEqual((status, stored), (200, data))
        self.assertIn(payload, self.other.layer_digests(dest_repo))

    def test_corrupt_source_blob_is_refused_on_the_way(self):
        repo = self.repo()
        image = self.seed(repo, layers=2, layer_size=128 * 1024)
        corrupted = image.layers[1].digest
        corrupt_stored_blob(self.registry, corrupted)
        dest_repo = self.repo("prod")
        proc = self.promote(f"{self.host}/{repo}:1.0.0", "--to-repo", f"{self.other.host}/{dest_repo}")
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_stderr_names_digest(proc, corrupted)
        self.assertEqual(self.other.tags(dest_repo), {}, tw.describe(proc))
        self.assertEqual(self.other.manifest_digests(dest_repo), set())
        self.assertNotIn(corrupted, self.other.blob_digests(), "the corrupt bytes are not stored under the digest")


class PromoteRefusals(PromotionTestCase):

    def test_prod_tag_on_another_digest_exit_4_and_unchanged(self):
        repo = self.repo()
        dev = self.seed(repo, env="dev")
        prod = self.seed(repo, env="prod")
        mark = self.mark()
        proc = self.promote(f"{self.host}/{repo}:1.0.0")
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assert_stderr_names_digest(proc, prod.digest)
        self.assertEqual(proc.stdout.strip(), "", tw.describe(proc))
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": dev.digest, "1.0.0-prod": prod.digest})
        self.assertEqual(self.writes(self.registry, mark), [], self.since(self.registry, mark))

    def test_prod_tag_on_another_digest_in_other_repo_exit_4_nothing_moved(self):
        repo, dest = self.repo(), self.repo("prod")
        dev = self.seed(repo, env="dev")
        prod = self.seed(dest, env="prod")
        mark = self.mark()
        proc = self.promote(f"{self.host}/{repo}:1.0.0", "--to-repo", dest)
        self.assert_exit(proc, tw.EXIT_TAG_CONFLICT)
        self.assertEqual(self.registry.tags(dest), {"1.0.0-prod": prod.digest})
        self.assertEqual(self.registry.manifest_digests(dest), {prod.digest})
        self.assertEqual(self.registry.layer_digests(dest), set(prod.blob_digests), "refused before any blob")
        self.assertEqual(self.writes(self.registry, mark), [], self.since(self.registry, mark))
        self.assertNotIn(dev.digest, self.registry.manifest_digests(dest))

    def test_missing_dev_tag_exit_2_and_nothing_written(self):
        repo = self.repo()
        image = self.seed(repo, version="1.0.0")
        for extra in ([], ["--to-repo", self.repo("prod")], ["--to-repo", f"{self.other.host}/{self.repo('x')}"]):
            with self.subTest(extra=extra):
                marks = self.mark(), self.mark(self.other)
                proc = self.promote(f"{self.host}/{repo}:2.0.0", *extra)
                self.assert_exit(proc, tw.EXIT_USAGE)
                self.assertIn("2.0.0-dev", proc.stderr, tw.describe(proc))
                self.assertEqual(self.writes(self.registry, marks[0]) + self.writes(self.other, marks[1]), [])
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": image.digest})
        self.assert_no_manifest(self.repo("prod"))
        self.assertEqual(self.other.manifest_digests(self.repo("x")), set())

    def test_bad_flags_exit_2_and_nothing_written(self):
        repo = self.repo()
        image = self.seed(repo, layers=1)
        index_repo = self.repo("multi")
        self.seed(index_repo, index=True)
        cases = {
            "same environment": (f"{self.host}/{repo}:1.0.0", ["--to", "dev"]),
            "unknown platform": (f"{self.host}/{index_repo}:1.0.0", ["--platform", "linux/s390x"]),
            "platform of a single image": (f"{self.host}/{repo}:1.0.0", ["--platform", "linux/amd64"]),
            "digest instead of version": (f"{self.host}/{repo}@{image.digest}", []),
            "tag in --to-repo": (f"{self.host}/{repo}:1.0.0", ["--to-repo", f"{self.repo('x')}:v1"]),
        }
        for name, (ref, extra) in cases.items():
            with self.subTest(name):
                mark = self.mark()
                args = ["promote", ref, "--from", "dev", "--lock", self.lock_url, *extra]
                if "--to" not in extra:
                    args += ["--to", "prod"]
                proc = self.run_tw(*args)
                self.assert_exit(proc, tw.EXIT_USAGE)
                self.assertEqual(self.writes(self.registry, mark), [], self.since(self.registry, mark))
        self.assertEqual(set(self.registry.tags(repo)), {"1.0.0-dev"})
        self.assertEqual(set(self.registry.tags(index_repo)), {"1.0.0-dev"})

    def test_held_lock_exit_5_and_no_tag(self):
        repo = self.repo()
        image = self.seed(repo)
        key = f"{self.host}/{repo}:1.0.0-prod"
        self.hold_lock(key)
        mark = self.mark()
        proc = self.promote(f"{self.host}/{repo}:1.0.0", "--lock-timeout", "1s")
        self.assert_exit(proc, tw.EXIT_LOCK)
        self.assertIn(key, proc.stderr, tw.describe(proc))
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": image.digest})
        self.assertEqual(self.writes(self.registry, mark), [], self.since(self.registry, mark))

    def test_dev_image_missing_a_blob_is_refused_cleanly(self):
        # The dev image lost a layer (a lifecycle rule or garbage collection): the registry refuses the
        # manifest under the new tag. Nothing was written, so there is nothing to roll back or resume.
        repo = self.repo()
        image = self.seed(repo)
        missing = image.layers[0].digest
        self.registry.delete_blob(repo, missing)
        proc = self.promote(f"{self.host}/{repo}:1.0.0")
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": image.digest})
        self.assertNotIn("ROLLBACK INCOMPLETE", proc.stderr,
                         "no tag was written, none needs undoing" + tw.describe(proc))
        self.assertEqual(self.journals(), [], "no journal is left for `push --resume`" + tw.describe(proc))
        self.assertIn(proc.returncode, (tw.EXIT_USAGE, tw.EXIT_VERIFY),
                      "a broken source image is bad input (as with --to-repo) or a failed verification, "
                      "not a registry fault to retry" + tw.describe(proc))
        self.assert_stderr_names_digest(proc, missing)

    def test_failed_verification_leaves_no_prod_tag(self):
        # Every blob HEAD answers 404, so the promotion's verification fails: exit 6 and, as for every
        # refusal, VERSION-prod must not be left behind.
        repo = self.repo()
        image = self.seed(repo)
        with FaultProxy(self.host) as proxy:
            proxy.fail("HEAD", rf"^/v2/{repo}/blobs/", status=404)
            proc = self.promote(f"{proxy.host}/{repo}:1.0.0")
        self.assert_exit(proc, tw.EXIT_VERIFY)
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": image.digest},
                         "the prod tag must not survive a failed verification" + tw.describe(proc))
        self.assertEqual(self.journals(), [], tw.describe(proc))

    def test_dry_run_writes_nothing(self):
        repo = self.repo()
        image = self.seed(repo)
        targets = {
            "same repository": ([], self.registry, repo),
            "other repository": (["--to-repo", self.repo("prod")], self.registry, self.repo("prod")),
            "other registry": (["--to-repo", f"{self.other.host}/{self.repo('prod')}"], self.other, self.repo("prod")),
        }
        for name, (extra, registry, dest) in targets.items():
            with self.subTest(name):
                marks = self.mark(), self.mark(self.other)
                report = self.promote_json(f"{self.host}/{repo}:1.0.0", "--dry-run", *extra)
                self.assertIs(report["dryRun"], True)
                self.assertEqual(report["digest"], image.digest)
                self.assertIsNot(report.get("verified"), True, "nothing was verified in a dry run")
                self.assertEqual([t["tag"] for t in report["tags"]], ["1.0.0-prod"])
                self.assertNotIn(report["tags"][0]["status"], ("created", "unchanged"), json.dumps(report))
                writes = self.writes(self.registry, marks[0]) + self.writes(self.other, marks[1])
                self.assertEqual(writes, [], f"--dry-run must not write: {writes}")
                self.assertNotIn("1.0.0-prod", registry.tags(dest))
                self.assertEqual(registry.manifest_digests(dest), {image.digest} if dest == repo else set())
        self.assertEqual(self.registry.tags(repo), {"1.0.0-dev": image.digest})


class PromoteWithCredentials(PromotionTestCase):
    """Both registries need Basic auth: the source's credentials come from the docker config, the
    destination's from --username/--password-stdin; neither password is ever printed."""

    registry_mode = "htpasswd"
    other_mode = "htpasswd"

    def docker_config(self, registry):
        return tw.write_docker_config(f"{self.tmp}/docker-{registry.port}", {
            "auths": {registry.host: {"auth": tw.basic_auth(registry.username, registry.password)}}})

    def promote_to_other(self, repo, dest_repo, source_config):
        env = {"DOCKER_CONFIG": source_config} if source_config else None
        return self.run_tw("promote", f"{self.host}/{repo}:1.0.0", "--from", "dev", "--to", "prod",
                           "--lock", self.lock_url, "--to-repo", f"{self.other.host}/{dest_repo}",
                           "--username", self.other.username, "--password-stdin", "--output", "json",
                           stdin=self.other.password + "\n", env=env)

    def test_cross_registry_with_credentials_for_each(self):
        repo, dest_repo = self.repo(), self.repo("prod")
        image = self.seed(repo)
        proc = self.promote_to_other(repo, dest_repo, self.docker_config(self.registry))
        self.assert_exit(proc, tw.EXIT_OK)
        tw.assert_no_secret(self, proc, self.registry.password, self.other.password)
        report = tw.parse_json(self, proc)
        self.assertEqual(report["digest"], image.digest)
        self.assert_blobs(report, uploaded=len(image.blobs))
        self.assertEqual(self.raw_digest(self.other, f"{dest_repo}:1.0.0-prod"), image.digest)

    def test_source_without_credentials_exit_7_and_nothing_written(self):
        repo, dest_repo = self.repo(), self.repo("prod")
        self.seed(repo)
        mark = self.mark(self.other)
        proc = self.promote_to_other(repo, dest_repo, None)
        self.assert_exit(proc, tw.EXIT_AUTH)
        tw.assert_no_secret(self, proc, self.registry.password, self.other.password)
        self.assertEqual(self.writes(self.other, mark), [])
        self.assertEqual(self.other.tags(dest_repo), {})


if __name__ == "__main__":
    unittest.main()
