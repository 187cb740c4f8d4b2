"""Image archives for the archive-source tests, written by independent tools (skopeo, podman) or, for
the hostile cases and the Docker 25+ layout, by the standard library's tarfile.

    archives.skopeo_docker_archive(layout_ref, path, "app:1")   # skopeo copy oci:... docker-archive:PATH:app:1
    archives.skopeo_oci_archive(layout_ref, path, "v1")         # skopeo copy oci:... oci-archive:PATH:v1
    pm = archives.Podman(directory)                             # podman with private --root/--runroot (vfs)
    pm.load(path); pm.tag("localhost/v1", "app:1"); pm.save(path, "docker-archive", "app:1")
    archives.read_docker_archive(path)                          # {"manifest": [...], "files": {name: bytes}}
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import deps

deps.PACKAGES.setdefault("podman", "podman")


def _run(args, timeout=300, stdin=None):
    proc = subprocess.run(args, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"$ {' '.join(args)}\nexit {proc.returncode}\n{proc.stderr.decode('utf-8', 'replace')[-4000:]}")
    return proc


def skopeo_docker_archive(layout_ref, path, name_tag):
    """skopeo copy oci:LAYOUT_REF docker-archive:PATH:NAME_TAG (uncompressed layers, classic layout)."""
    _run([deps.find_program("skopeo"), "copy", "--insecure-policy", f"oci:{layout_ref}", f"docker-archive:{path}:{name_tag}"])
    return path


def skopeo_oci_archive(layout_ref, path, ref):
    _run([deps.find_program("skopeo"), "copy", "--insecure-policy", f"oci:{layout_ref}", f"oci-archive:{path}:{ref}"])
    return path


class Podman:
    """podman with its own storage (vfs) in a fresh directory: nothing touches the machine's images.
    ``close()`` removes it (``directory`` is kept for compatibility of the signature)."""

    def __init__(self, directory):
        # podman refuses a runroot longer than 50 characters: a short directory under /tmp, removed with ``directory``.
        self.base = tempfile.mkdtemp(prefix="twpm-", dir="/tmp")
        self.root = os.path.join(self.base, "root")
        self.runroot = os.path.join(self.base, "run")
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.runroot, exist_ok=True)

    def close(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def __call__(self, *args, timeout=300):
        return _run([deps.find_program("podman"), "--storage-driver", "vfs", "--root", self.root,
                     "--runroot", self.runroot, *args], timeout=timeout)

    def load(self, path):
        out = self("load", "-i", path).stdout.decode()
        return out

    def tag(self, image, *names):
        self("tag", image, *names)

    def save(self, path, fmt, *images):
        self("save", *(["-m"] if len(images) > 1 else []), "--format", fmt, "-o", path, *images)
        return path

    def image_id(self, name):
        return "sha256:" + self("image", "inspect", "--format", "{{.Id}}", name).stdout.decode().strip()


def oci_dir_image(directory):
    """(config bytes, [layer bytes]) of the single image of an OCI layout directory."""
    def blob(digest):
        with open(os.path.join(directory, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
            return f.read()
    with open(os.path.join(directory, "index.json")) as f:
        manifest = json.loads(blob(json.load(f)["manifests"][0]["digest"]))
    return blob(manifest["config"]["digest"]), [blob(l["digest"]) for l in manifest["layers"]]


def read_tar_files(path):
    """{name: bytes} of the regular files of a tar (symlinks followed inside the archive)."""
    files, links = {}, {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            name = os.path.normpath(member.name)
            if member.isfile():
                files[name] = tar.extractfile(member).read()
            elif member.issym():
                links[name] = os.path.normpath(os.path.join(os.path.dirname(name), member.linkname))
    for name, target in links.items():
        if target in files:
            files[name] = files[target]
    return files


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_archive_image(path):
    """(config bytes, [layer bytes]) of the single image in a docker-archive."""
    files = read_tar_files(path)
    manifest = json.loads(files["manifest.json"])
    assert len(manifest) == 1, manifest
    return files[os.path.normpath(manifest[0]["Config"])], [files[os.path.normpath(l)] for l in manifest[0]["Layers"]]


def docker25_archive(source_archive, path, repo_tag="app:1"):
    """Rewrites a classic docker-archive into the layout Docker 25+ writes with `docker save`: an OCI
    image layout (oci-layout, index.json, blobs/sha256/ holding the uncompressed layers, the config and
    an OCI manifest) plus manifest.json whose Config and Layers name files under blobs/."""
    config, layers = docker_archive_image(source_archive)
    blobs = {}

    def put(data):
        digest = sha256(data)
        blobs[digest.split(":")[1]] = data
        return digest

    config_digest = put(config)
    layer_descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": put(l), "size": len(l)} for l in layers]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                                      "size": len(config)},
                           "layers": layer_descs}).encode()
    manifest_digest = put(manifest)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                            "size": len(manifest),
                            "annotations": {"io.containerd.image.name": "docker.io/library/" + repo_tag,
                                            "org.opencontainers.image.ref.name": repo_tag.split(":")[-1]}}]}
    docker_manifest = [{"Config": "blobs/sha256/" + config_digest.split(":")[1], "RepoTags": [repo_tag],
                        "Layers": ["blobs/sha256/" + d["digest"].split(":")[1] for d in layer_descs]}]
    entries = [("blobs/", None), ("blobs/sha256/", None)]
    entries += [(f"blobs/sha256/{hex_}", data) for hex_, data in sorted(blobs.items())]
    entries += [("index.json", json.dumps(index).encode()), ("manifest.json", json.dumps(docker_manifest).encode()),
                ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("repositories", b"{}")]
    write_tar(path, entries)
    return config_digest


def write_tar(path, entries, compress=False):
    """Writes ``entries``: (name, bytes) for a file, (name, None) for a directory, or (name, TarInfo-like
    dict with "type" and optional "linkname"/"data") for anything else, in that order."""
    opener = gzip.open if compress else open
    with opener(path, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif isinstance(data, dict):
                info.type = data["type"]
                info.linkname = data.get("linkname", "")
                info.mode = 0o644
                if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    info.devmajor, info.devminor = 1, 3
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return path


def tar_entries(path):
    """(name, bytes or None for a directory) of a tar's files and directories, in order."""
    out = []
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if member.isdir():
                out.append((member.name, None))
            elif member.isfile():
                out.append((member.name, tar.extractfile(member).read()))
            elif member.issym():
                out.append((member.name, {"type": tarfile.SYMTYPE, "linkname": member.linkname}))
    return out
