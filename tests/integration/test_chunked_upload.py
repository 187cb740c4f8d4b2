"""Chunked, resumable blob uploads, and the upload a declined mount opens (issue 13).

Blobs at or above TAGWARDEN_CHUNK_THRESHOLD go up as POST, PATCH (Content-Range) per
TAGWARDEN_CHUNK_SIZE, PUT ?digest=. When a PATCH fails (the connection drops, a 5xx), tagwarden asks
the registry how much it holds (GET on the upload URL, its Range header) and goes on from there: a
failure costs at most one chunk, never the whole blob. Here against a real docker-registry behind the
fault proxy, with 1 MiB chunks of an 8 MiB layer; the image is read back by skopeo.
"""

import os
import unittest

import interop
import tw
from fault_proxy import Rule, blob_upload_path
from tagsafety import ProxiedRegistryCase, setUpModule  # noqa: F401

MIB = 1024 * 1024
SESSION = r"^/v2/.+/blobs/uploads/.+$"
CHUNKED = {"TAGWARDEN_CHUNK_THRESHOLD": "1MiB", "TAGWARDEN_CHUNK_SIZE": "1MiB"}


def content_ranges(requests):
    return [r.headers.get("content-range") for r in requests]


def chunk_ranges(size, chunk=MIB):
    """The Content-Range of each PATCH of a blob of ``size`` bytes in ``chunk``-byte chunks."""
    return [f"{start}-{min(start + chunk, size) - 1}" for start in range(0, size, chunk)]


class ChunkedUpload(ProxiedRegistryCase):

    def big_image(self):
        return self.image("big", layers=1, layer_size=8 * MIB)

    def patches(self, repo):
        """The PATCHes the registry received (forwarded by the proxy)."""
        return [r for r in self.proxy.requests("PATCH", SESSION) if f"/v2/{repo}/" in r.path and r.forwarded]

    def assert_pushed(self, repo, image, proc):
        self.assert_exit(proc, 0)
        self.assertEqual(self.registry.tags(repo), {"1.0": image.digest})
        self.assertEqual(interop.remote_digest(self.registry, f"{repo}:1.0"), image.digest,
                         "skopeo reads back the pushed manifest")
        # skopeo copies every blob out, checking each digest.
        interop.copy_from_registry(self.registry, f"{repo}:1.0", os.path.join(self.tmp, "pulled") + ":1.0")

    def test_big_blobs_go_up_in_chunks(self):
        layout, image = self.big_image()
        repo = self.repo()
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), env=CHUNKED)
        self.assert_pushed(repo, image, proc)
        ranges = content_ranges(self.patches(repo))
        size = image.layers[0].size
        self.assertGreater(size, 4 * MIB)
        self.assertEqual(ranges, chunk_ranges(size), "1 MiB PATCHes, in order" + tw.describe(proc))
        # The small blobs (config) go in one PUT, as before.
        self.assertEqual(len(self.proxy.requests("POST", blob_upload_path(repo))), 2)

    def test_a_dropped_chunk_is_resumed_not_restarted(self):
        layout, image = self.big_image()
        repo = self.repo()
        # The fourth PATCH's connection drops after its body was sent; the registry never got it.
        drop = self.proxy.drop("PATCH", SESSION, nth=4, times=1)
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), env=CHUNKED)
        self.assert_pushed(repo, image, proc)
        self.assertTrue(drop.reached.is_set())
        self.assertIn("resuming at byte 3145728", proc.stderr, tw.describe(proc))
        forwarded = content_ranges(self.patches(repo))
        self.assertEqual(forwarded, chunk_ranges(image.layers[0].size),
                         "every chunk reached the registry once; nothing was sent again from zero")
        status = [r for r in self.proxy.requests("GET", SESSION)]
        self.assertEqual(len(status), 1, "one GET asked the registry where the upload stood")
        self.assertEqual(len(self.proxy.requests("POST", blob_upload_path(repo))), 2,
                         "no new upload session for the big blob")

    def test_a_failing_chunk_is_retried_from_the_registrys_count(self):
        layout, image = self.big_image()
        repo = self.repo()
        self.proxy.fail("PATCH", SESSION, status=503, nth=3, times=2)
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), env=CHUNKED)
        self.assert_pushed(repo, image, proc)
        self.assertEqual(content_ranges(self.patches(repo)), chunk_ranges(image.layers[0].size))

    def test_a_chunk_whose_answer_was_lost_restarts_on_distribution(self):
        # The registry stored the third chunk, then the answer was lost. distribution's upload URL carries
        # a signed state (_state) that still says two chunks, and it refuses that URL now (404
        # BLOB_UPLOAD_INVALID): nothing can resume it, so the upload starts over in a new session, once.
        layout, image = self.big_image()
        repo = self.repo()
        lost = self.proxy.lose("PATCH", SESSION, nth=3, times=1)
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), env=CHUNKED)
        self.assert_pushed(repo, image, proc)
        self.assertTrue(lost.reached.is_set())
        self.assertIn("lost the upload session", proc.stderr, tw.describe(proc))
        self.assertIn("BLOB_UPLOAD_INVALID", proc.stderr)
        self.assertEqual(len(self.proxy.requests("POST", blob_upload_path(repo))), 3, "one new session for the big blob")
        self.assertEqual(content_ranges(self.patches(repo))[3:], chunk_ranges(image.layers[0].size),
                         "after two chunks and the lost one, the whole blob once more")

    def test_chunking_off_and_bad_sizes(self):
        layout, image = self.big_image()
        repo = self.repo()
        proc = self.push(f"oci:{layout}", self.target(repo, "1.0"), env={"TAGWARDEN_CHUNK_THRESHOLD": "0"})
        self.assert_pushed(repo, image, proc)
        self.assertEqual(self.patches(repo), [], "TAGWARDEN_CHUNK_THRESHOLD=0: one PUT per blob")
        mark = len(self.proxy.requests())
        bad = self.push(f"oci:{layout}", self.target(repo, "2.0"), env={"TAGWARDEN_CHUNK_SIZE": "lots"})
        self.assert_exit(bad, tw.EXIT_USAGE)
        self.assertIn("TAGWARDEN_CHUNK_SIZE", bad.stderr)
        self.assertEqual(self.proxy.requests()[mark:], [], "refused before any request")


class DeclinedMount(ProxiedRegistryCase):

    def test_the_session_a_declined_mount_opens_is_used(self):
        # A registry may answer a mount with 202 and an upload session (it cannot read the source repository):
        # the blob goes into that session, not a new one, and the session is not cancelled. The proxy turns
        # each mount into a plain session start, as such a registry would answer it.
        layout, image = self.image("a", layers=2)
        repo, dest = self.repo(), self.repo("copy")
        self.assert_exit(self.push(f"oci:{layout}", self.target(repo, "1.0")), 0)
        declined = self.proxy.add_rule(Rule("POST", blob_upload_path(dest), match=lambda m, p, h: True,
                                            rewrite=lambda uri: uri.split("?", 1)[0]))
        mark = len(self.proxy.requests())
        proc = self.run_tw("push", f"docker://{self.target(repo, '1.0')}", self.target(dest, "1.0"), "--plain-http",
                           "--output", "json")
        self.assert_exit(proc, 0)
        self.assertTrue(declined.reached.is_set())
        report = tw.parse_json(self, proc)
        self.assertEqual(report["blobs"]["mounted"], 0, tw.describe(proc))
        self.assertEqual(report["blobs"]["uploaded"], 3, "config and two layers")
        since = self.proxy.requests()[mark:]
        posts = [r for r in since if r.method == "POST" and r.path.startswith(f"/v2/{dest}/blobs/uploads")]
        self.assertEqual(len(posts), 3, "one session per blob: the one each declined mount opened")
        self.assertEqual([r for r in since if r.method == "DELETE" and "/blobs/uploads/" in r.path], [],
                         "no session cancelled")
        self.assertEqual(interop.remote_digest(self.registry, f"{dest}:1.0"), image.digest)


if __name__ == "__main__":
    unittest.main()
