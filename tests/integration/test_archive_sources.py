"""docker-archive (file and stdin) and oci-archive sources, from archives written by skopeo and podman.

Each archive is pushed, read back with skopeo (inspect --raw / --config, copy), and its config digest
(the image ID) compared with the one the producer wrote; pushing the same archive twice gives the same
manifest digest and the second run is "unchanged".
"""

import gzip
import hashlib
import json
import os
import shutil
import unittest

import archives
import deps
import interop
import tw
from fixtures import RegistryTestCase

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def setUpModule():  # noqa: N802
    """A missing tool fails the module, never a skip."""
    deps.require("docker-registry", "skopeo", "umoci", "podman")
    deps.tagwarden_bin()


class ArchiveSources(RegistryTestCase):
    registry_mode = "plain"

    def archive_of(self, name="img", layers=2, **kwargs):
        """(ImageInfo, docker-archive path written by skopeo) of a fresh image."""
        layout, image = self.image(name=name, layers=layers, **kwargs)
        path = os.path.join(self.tmp, f"{name}.docker.tar")
        archives.skopeo_docker_archive(f"{layout}:latest", path, f"{name}:1")
        return image, layout, path

    def push_json(self, source, target, *args, stdin=None):
        proc = self.push(source, target, "--output", "json", *args, stdin=stdin)
        self.assert_exit(proc, 0)
        return tw.parse_json(self, proc)

    def read_back(self, repo, tag):
        """(raw manifest dict, its digest, raw config bytes) as skopeo reads them from the registry."""
        raw = interop.inspect(self.registry, f"{repo}:{tag}", raw=True)
        config = interop.skopeo("inspect", "--config", "--raw", "--tls-verify=false",
                                f"docker://{self.host}/{repo}:{tag}").stdout
        return json.loads(raw), "sha256:" + hashlib.sha256(raw).hexdigest(), config

    def assert_layers_match_diff_ids(self, repo, tag):
        """podman pulls the image (containers/image decompresses gzip and zstd layers with its own code),
        then saves it uncompressed: each uncompressed layer's sha256 must be the config's diff_id,
        and the image ID podman reports must be the pushed config's digest."""
        pm = archives.Podman(self.tmp)
        self.addCleanup(pm.close)
        ref = f"{self.host}/{repo}:{tag}"
        pm("pull", "--tls-verify=false", ref)
        out = os.path.join(self.tmp, f"pulled-{tag}")
        pm("save", "--format", "oci-dir", "--uncompressed", "-o", out, ref)
        config, layers = archives.oci_dir_image(out)
        self.assertTrue(all(l[257:262] == b"ustar" for l in layers), "podman wrote uncompressed layers")
        self.assertEqual([archives.sha256(l) for l in layers], json.loads(config)["rootfs"]["diff_ids"])
        _manifest, _digest, pushed_config = self.read_back(repo, tag)
        self.assertEqual(pm.image_id(ref), archives.sha256(pushed_config))

    # -- docker-archive ----------------------------------------------------------------------------

    def test_skopeo_docker_archive_file_then_stdin_same_digest(self):
        image, _layout, path = self.archive_of(layers=3)
        repo = self.repo()
        report = self.push_json(f"docker-archive:{path}", self.target(repo, "1.0.0"))
        digest = report["digest"]
        self.assertEqual(report["source"], {"transport": "docker-archive", "compression": "gzip", "compressionLevel": 6})
        self.assertEqual([t["status"] for t in report["tags"]], ["created"])
        manifest, remote_digest, config = self.read_back(repo, "1.0.0")
        self.assertEqual(remote_digest, digest)
        self.assertEqual(manifest["mediaType"], DOCKER_MANIFEST)
        self.assertEqual(manifest["config"]["mediaType"], "application/vnd.docker.container.image.v1+json")
        self.assertEqual({l["mediaType"] for l in manifest["layers"]}, {"application/vnd.docker.image.rootfs.diff.tar.gzip"})
        # The config is pushed unchanged: its digest is the image ID the producer computed.
        self.assertEqual(archives.sha256(config), image.config.digest)
        self.assertEqual(manifest["config"]["digest"], image.config.digest)
        self.assert_layers_match_diff_ids(repo, "1.0.0")

        # The same archive from standard input: the same compressed bytes, so the same digest and nothing to write.
        with open(path, "rb") as f:
            data = f.read()
        again = self.push_json("docker-archive:-", self.target(repo, "1.0.0"), stdin=data)
        self.assertEqual(again["digest"], digest)
        self.assertEqual([t["status"] for t in again["tags"]], ["unchanged"])
        self.assertEqual(again["source"]["transport"], "docker-archive")
        # A third run from the file, to a new tag: same manifest, layers already there.
        third = self.push_json(f"docker-archive:{path}", self.target(repo, "1.0.1"))
        self.assertEqual(third["digest"], digest)
        self.assertEqual(third["blobs"]["uploaded"], 0)
        self.assert_exit(self.verify(self.target(repo, "1.0.0")), 0)

    def test_podman_save_docker_archive_and_oci_archive(self):
        image, _layout, path = self.archive_of(name="pm")
        pm = archives.Podman(self.tmp)
        self.addCleanup(pm.close)
        pm.load(path)
        pm.tag("pm:1", "app:7")
        image_id = pm.image_id("app:7")
        self.assertEqual(image_id, image.config.digest)
        docker_path = pm.save(os.path.join(self.tmp, "podman.docker.tar"), "docker-archive", "app:7")
        oci_path = pm.save(os.path.join(self.tmp, "podman.oci.tar"), "oci-archive", "app:7")
        repo = self.repo()
        d1 = self.assert_pushed(self.push(f"docker-archive:{docker_path}", self.target(repo, "d")), repo)
        manifest, remote, config = self.read_back(repo, "d")
        self.assertEqual(remote, d1)
        self.assertEqual(archives.sha256(config), image_id)
        self.assert_layers_match_diff_ids(repo, "d")

        report = self.push_json(f"oci-archive:{oci_path}", self.target(repo, "o"))
        self.assertEqual(report["source"], {"transport": "oci-archive", "compression": "as-is"})
        manifest, remote, config = self.read_back(repo, "o")
        self.assertEqual(remote, report["digest"])
        # The oci-archive's manifest is pushed byte for byte: its digest is the one index.json names, and
        # the config is the one podman wrote (podman converts the config for OCI, so not the image ID).
        files = archives.read_tar_files(oci_path)
        index = json.loads(files["index.json"])
        self.assertEqual(report["digest"], index["manifests"][0]["digest"])
        archived = json.loads(files[os.path.join("blobs", "sha256", report["digest"].split(":")[1])])
        self.assertEqual(archives.sha256(config), archived["config"]["digest"])
        docker_config, _layers = archives.docker_archive_image(docker_path)
        self.assertEqual(json.loads(config)["rootfs"]["diff_ids"], json.loads(docker_config)["rootfs"]["diff_ids"])
        self.assert_layers_match_diff_ids(repo, "o")

    def test_docker25_oci_layout_archive(self):
        image, _layout, path = self.archive_of(name="d25")
        new = os.path.join(self.tmp, "docker25.tar")
        config_digest = archives.docker25_archive(path, new, "app:25")
        self.assertEqual(config_digest, image.config.digest)
        repo = self.repo()
        report = self.push_json(f"docker-archive:{new}", self.target(repo, "25"))
        self.assertEqual(report["source"]["compression"], "gzip")
        manifest, remote, config = self.read_back(repo, "25")
        self.assertEqual(manifest["mediaType"], DOCKER_MANIFEST)
        self.assertEqual(archives.sha256(config), image.config.digest)
        # The classic and the Docker 25 layout of one image give the same pushed image.
        classic = self.push_json(f"docker-archive:{path}", self.target(repo, "classic"))
        self.assertEqual(classic["digest"], remote)
        self.assertEqual([t["status"] for t in classic["tags"]], ["created"])

    def test_multi_image_archive_needs_source_tag(self):
        a, _la, path_a = self.archive_of(name="a")
        b, _lb, path_b = self.archive_of(name="b")
        pm = archives.Podman(self.tmp)
        self.addCleanup(pm.close)
        pm.load(path_a)
        pm.load(path_b)
        multi = pm.save(os.path.join(self.tmp, "multi.tar"), "docker-archive", "a:1", "b:1")
        repo = self.repo()
        proc = self.push(f"docker-archive:{multi}", self.target(repo, "x"))
        self.assert_exit(proc, tw.EXIT_USAGE)
        self.assert_stderr_mentions(proc, "--source-tag")
        self.assertIn("a:1", proc.stderr)
        self.assertIn("b:1", proc.stderr)
        wrong = self.push(f"docker-archive:{multi}", self.target(repo, "x"), "--source-tag", "c:1")
        self.assert_exit(wrong, tw.EXIT_USAGE)
        self.assertIn("c:1", wrong.stderr)
        self.assertIn("b:1", wrong.stderr)
        self.assert_no_manifest(repo)
        with open(multi, "rb") as f:
            data = f.read()
        report = self.push_json("docker-archive:-", self.target(repo, "b"), "--source-tag", "b:1", stdin=data)
        _m, _d, config = self.read_back(repo, "b")
        self.assertEqual(archives.sha256(config), b.config.digest)
        # skopeo's spelling docker-archive:FILE:NAME:TAG chooses too.
        report_a = self.push_json(f"docker-archive:{multi}:a:1", self.target(repo, "a"))
        _m, _d, config = self.read_back(repo, "a")
        self.assertEqual(archives.sha256(config), a.config.digest)
        self.assertNotEqual(report_a["digest"], report["digest"])

    # -- compression -------------------------------------------------------------------------------

    def test_zstd_and_none_push_oci_manifests_skopeo_reads(self):
        image, _layout, path = self.archive_of(layers=2, layer_size=200 * 1024)
        repo = self.repo()
        z = self.push_json(f"docker-archive:{path}", self.target(repo, "zstd"), "--compress", "zstd")
        self.assertEqual(z["source"], {"transport": "docker-archive", "compression": "zstd", "compressionLevel": 3})
        manifest, remote, config = self.read_back(repo, "zstd")
        self.assertEqual(manifest["mediaType"], OCI_MANIFEST)
        self.assertEqual({l["mediaType"] for l in manifest["layers"]}, {"application/vnd.oci.image.layer.v1.tar+zstd"})
        self.assertEqual(archives.sha256(config), image.config.digest)
        self.assert_layers_match_diff_ids(repo, "zstd")
        z2 = self.push_json(f"docker-archive:{path}", self.target(repo, "zstd"), "--compress", "zstd")
        self.assertEqual(z2["digest"], z["digest"])
        self.assertEqual([t["status"] for t in z2["tags"]], ["unchanged"])

        n = self.push_json(f"docker-archive:{path}", self.target(repo, "none"), "--compress", "none")
        manifest, remote, config = self.read_back(repo, "none")
        self.assertEqual({l["mediaType"] for l in manifest["layers"]}, {"application/vnd.oci.image.layer.v1.tar"})
        # Uncompressed layers are their own diff_ids.
        self.assertEqual([l["digest"] for l in manifest["layers"]], json.loads(config)["rootfs"]["diff_ids"])
        self.assert_layers_match_diff_ids(repo, "none")

        g = self.push_json(f"docker-archive:{path}", self.target(repo, "gzip"))
        self.assertEqual(len({z["digest"], n["digest"], g["digest"]}), 3)
        self.assert_layers_match_diff_ids(repo, "gzip")
        # umoci (another implementation; it reads OCI manifests only) unpacks the uncompressed image.
        out = os.path.join(self.tmp, "pulled")
        interop.copy_from_registry(self.registry, f"{repo}:none", f"{out}:none", all_images=False)
        interop.umoci("unpack", "--image", f"{out}:none", os.path.join(self.tmp, "bundle"))
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, "bundle", "rootfs", "layer1", "data.bin")))

    def test_bad_compress_value_is_usage(self):
        _image, _layout, path = self.archive_of(layers=1)
        proc = self.push(f"docker-archive:{path}", self.target(self.repo(), "x"), "--compress", "xz")
        self.assert_exit(proc, tw.EXIT_USAGE)

    def test_compress_level_gives_other_layers_of_the_same_image_deterministically(self):
        image, _layout, path = self.archive_of(layers=2, layer_size=300 * 1024)
        repo = self.repo()
        fast = self.push_json(f"docker-archive:{path}", self.target(repo, "fast"), "--compress-level", "1")
        self.assertEqual(fast["source"], {"transport": "docker-archive", "compression": "gzip", "compressionLevel": 1})
        standard = self.push_json(f"docker-archive:{path}", self.target(repo, "standard"))
        self.assertEqual(standard["source"]["compressionLevel"], 6)
        self.assertNotEqual(fast["digest"], standard["digest"])
        fast_manifest, _d, fast_config = self.read_back(repo, "fast")
        standard_manifest, _d, standard_config = self.read_back(repo, "standard")
        # Other compressed bytes, the same image: one config, whose diff_ids both sets of layers unpack to.
        self.assertEqual(archives.sha256(fast_config), image.config.digest)
        self.assertEqual(fast_config, standard_config)
        self.assertTrue(set(l["digest"] for l in fast_manifest["layers"]).isdisjoint(
            l["digest"] for l in standard_manifest["layers"]))
        self.assert_layers_match_diff_ids(repo, "fast")
        # The same archive at the same level gives the same bytes: nothing to write the second time.
        again = self.push_json(f"docker-archive:{path}", self.target(repo, "fast"), "--compress-level", "1")
        self.assertEqual(again["digest"], fast["digest"])
        self.assertEqual(again["blobs"]["uploaded"], 0)
        self.assertEqual([t["status"] for t in again["tags"]], ["unchanged"])
        z = self.push_json(f"docker-archive:{path}", self.target(repo, "zstd19"), "--compress", "zstd",
                           "--compress-level", "19")
        self.assertEqual(z["source"]["compressionLevel"], 19)
        self.assert_layers_match_diff_ids(repo, "zstd19")

    def test_compress_level_outside_the_range_is_usage_and_writes_nothing(self):
        _image, _layout, path = self.archive_of(layers=1)
        repo = self.repo()
        for args, says in ((["--compress-level", "10"], "1 (fastest) to 9"),
                           (["--compress", "zstd", "--compress-level", "0x"], "--compress-level"),
                           (["--compress", "zstd", "--compress-level", "20"], "1 (fastest) to 19"),
                           (["--compress", "none", "--compress-level", "3"], "--compress none")):
            proc = self.push(f"docker-archive:{path}", self.target(repo, "x"), *args)
            self.assert_exit(proc, tw.EXIT_USAGE)
            self.assertIn(says, proc.stderr)
        self.assertFalse(self.registry.manifest_digests(repo))

    # -- oci-archive -------------------------------------------------------------------------------

    def test_skopeo_oci_archive_plain_and_gzip(self):
        layout, image = self.image(name="o", layers=2)
        path = archives.skopeo_oci_archive(f"{layout}:latest", os.path.join(self.tmp, "o.tar"), "v1")
        gz = path + ".gz"
        with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
            shutil.copyfileobj(src, dst)
        repo = self.repo()
        d1 = self.assert_pushed(self.push(f"oci-archive:{path}", self.target(repo, "1")), repo)
        files = archives.read_tar_files(path)
        self.assertEqual(d1, json.loads(files["index.json"])["manifests"][0]["digest"])
        _m, remote, config = self.read_back(repo, "1")
        self.assertEqual(remote, d1)
        self.assertEqual(archives.sha256(config), image.config.digest)
        d2 = self.assert_pushed(self.push(f"oci-archive:{gz}:v1", self.target(repo, "2")), repo)
        self.assertEqual(d2, d1)
        missing = self.push(f"oci-archive:{path}:v9", self.target(repo, "3"))
        self.assert_exit(missing, tw.EXIT_USAGE)
        self.assertIn("v1", missing.stderr)

    def test_dry_run_reads_archive_and_writes_nothing(self):
        _image, _layout, path = self.archive_of(layers=1)
        repo = self.repo()
        proc = self.push(f"docker-archive:{path}", self.target(repo, "1"), "--dry-run")
        self.assert_exit(proc, 0)
        self.assertIn("dry run", proc.stdout)
        self.assert_no_manifest(repo)


if __name__ == "__main__":
    unittest.main()


class ResidentMemory(RegistryTestCase):
    """libarchive (and libxml2, ICU, liblzma... behind it) is loaded only when an archive is read: linked, it
    cost every run about 1.5 MiB of resident memory; and a run re-executes itself once so that GnuTLS (loaded
    through Debian's libcurl, never used) skips its initialisation: 0.7 MiB (bench/RESULTS.md)."""

    registry_mode = "plain"

    def maps_while_running(self, args, stdin, environ=None):
        """The shared objects a running tagwarden has mapped, read while it waits on ``stdin`` or a registry;
        ``environ`` (a list) receives the environment its image was executed with."""
        import subprocess
        import time
        proc = subprocess.Popen([deps.tagwarden_bin(), *args], stdin=stdin, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=tw.clean_env(), cwd=self.tmp)
        try:
            deadline = time.monotonic() + 20
            mapped = ""
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.3)
                with open(f"/proc/{proc.pid}/maps") as f:
                    mapped = f.read()
                if "libcurl" in mapped and ("libarchive" in mapped or time.monotonic() > deadline - 17):
                    break
            self.assertIsNone(proc.poll(), "tagwarden should still be waiting")
            if environ is not None:
                with open(f"/proc/{proc.pid}/environ", "rb") as f:
                    environ.extend(v.decode(errors="replace") for v in f.read().split(b"\0") if v)
            return mapped
        finally:
            proc.kill()
            proc.wait()

    def test_an_oci_layout_push_does_not_load_libarchive(self):
        import socket
        layout, _image = self.image()
        # A registry that accepts the connection and never answers: the push waits on its first request.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        environ = []
        try:
            mapped = self.maps_while_running(
                ["push", "--plain-http", f"oci:{layout}", f"127.0.0.1:{silent.getsockname()[1]}/x:1"], None, environ)
        finally:
            silent.close()
        self.assertIn("libcurl", mapped)
        self.assertNotIn("libarchive", mapped)
        # The image running is the re-executed one (its exec environment carries the marker; the process
        # itself removed it, see test_auth's test_programs_it_runs_get_the_environment_it_was_given).
        self.assertIn("GNUTLS_NO_IMPLICIT_INIT=1", environ)
        self.assertIn("TAGWARDEN_GNUTLS_REEXEC=1", environ)

    def test_a_docker_archive_from_stdin_loads_it(self):
        import os as _os
        read_end, write_end = _os.pipe()
        try:
            _os.write(write_end, b"\0" * 1024)  # the start of a tar that never ends
            mapped = self.maps_while_running(
                ["push", "--plain-http", "docker-archive:-", f"{self.registry.host}/x:1"], read_end)
        finally:
            _os.close(read_end)
            _os.close(write_end)
        self.assertIn("libarchive.so.13", mapped)
