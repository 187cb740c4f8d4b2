#!/usr/bin/env python3
"""Writes OCI image layouts (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
with the standard library only, for tests and benchmarks.

    info = make_image("/tmp/layout", layers=2, layer_size=64 * 1024, seed=1)
    info.manifest_digest            # what index.json points at for ref "latest"
    idx = make_index("/tmp/multi")  # index.json -> image index blob -> one manifest per platform

Layers are real gzip'd tars (one directory and one file each); the config's ``rootfs.diff_ids``
are the sha256 of the uncompressed tars. Output is deterministic for a given seed (gzip mtime 0,
tar mtime fixed), except in ``incompressible`` mode, which fills layers with os.urandom and writes
them as stored (level 0) gzip blocks so a 1 GiB image is written at disk speed. Layers are
streamed to disk: memory use does not grow with the layer size.

Manifests and indexes are written indented with 3 spaces, which no JSON library produces by
default: a client that re-serializes them instead of pushing the bytes changes their digest.

Corruption helpers (remove_blob, flip_blob_bytes, truncate_blob, write_malformed_index) break a
layout in the ways the bad-input tests need.

CLI: make_image.py DIR [--layers N] [--layer-size BYTES] [--incompressible] [--index] [--docker]
                       [--ref NAME] [--seed N] [--platform OS/ARCH[/VARIANT]]...
prints a JSON summary whose "digest" is the digest index.json points at for the ref.
"""

import argparse
import dataclasses
import gzip
import hashlib
import json
import os
import random
import tarfile
import tempfile

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

MEDIA_TYPES = {
    "oci": {
        "manifest": "application/vnd.oci.image.manifest.v1+json",
        "index": "application/vnd.oci.image.index.v1+json",
        "config": "application/vnd.oci.image.config.v1+json",
        "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
    },
    "docker": {
        "manifest": "application/vnd.docker.distribution.manifest.v2+json",
        "index": "application/vnd.docker.distribution.manifest.list.v2+json",
        "config": "application/vnd.docker.container.image.v1+json",
        "layer": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    },
}

DEFAULT_LAYER_SIZE = 64 * 1024
_CHUNK = 1 << 20
_FIXED_MTIME = 1700000000  # 2023-11-14T22:13:20Z
_CREATED = "2023-11-14T22:13:20Z"


@dataclasses.dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int

    def as_json(self, **extra):
        result = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        result.update({k: v for k, v in extra.items() if v is not None})
        return result


@dataclasses.dataclass
class Layer(Descriptor):
    diff_id: str = ""
    uncompressed_size: int = 0


@dataclasses.dataclass
class ImageInfo:
    layout: str
    ref_name: str
    media: str
    platform: tuple
    manifest: Descriptor
    config: Descriptor
    layers: list

    @property
    def manifest_digest(self):
        return self.manifest.digest

    @property
    def digest(self):
        return self.manifest.digest

    @property
    def media_type(self):
        return self.manifest.media_type

    @property
    def config_digest(self):
        return self.config.digest

    @property
    def layer_digests(self):
        return [layer.digest for layer in self.layers]

    @property
    def blobs(self):
        """The config and the layers: every blob a push of this image uploads."""
        return [self.config, *self.layers]

    @property
    def blob_digests(self):
        return [blob.digest for blob in self.blobs]

    @property
    def blob_bytes(self):
        return sum(blob.size for blob in self.blobs)

    def summary(self):
        return {
            "layout": self.layout, "ref": self.ref_name, "digest": self.digest, "mediaType": self.media_type,
            "config": self.config.digest, "layers": self.layer_digests, "blobBytes": self.blob_bytes,
            "platform": "/".join(self.platform),
        }


@dataclasses.dataclass
class IndexInfo:
    layout: str
    ref_name: str
    media: str
    index: Descriptor
    children: list  # ImageInfo, one per platform

    @property
    def digest(self):
        return self.index.digest

    @property
    def index_digest(self):
        return self.index.digest

    @property
    def media_type(self):
        return self.index.media_type

    @property
    def manifest_digests(self):
        return [child.manifest.digest for child in self.children]

    @property
    def blobs(self):
        seen = {}
        for child in self.children:
            for blob in child.blobs:
                seen.setdefault(blob.digest, blob)
        return list(seen.values())

    @property
    def blob_digests(self):
        return [blob.digest for blob in self.blobs]

    @property
    def blob_bytes(self):
        return sum(blob.size for blob in self.blobs)

    def summary(self):
        return {
            "layout": self.layout, "ref": self.ref_name, "digest": self.digest, "mediaType": self.media_type,
            "manifests": {"/".join(c.platform): c.digest for c in self.children}, "blobBytes": self.blob_bytes,
        }


# -- writing blobs ------------------------------------------------------------------------------


class _HashingWriter:
    """Forwards writes to ``target`` while hashing and counting them (with tell() for tarfile)."""

    def __init__(self, target):
        self.target = target
        self.sha = hashlib.sha256()
        self.count = 0

    def write(self, data):
        self.sha.update(data)
        self.count += len(data)
        if self.target is not None:
            self.target.write(data)
        return len(data)

    def tell(self):
        return self.count

    def flush(self):
        if self.target is not None:
            self.target.flush()


class _ContentReader:
    """A read()-able stream of ``size`` generated bytes (never all in memory)."""

    def __init__(self, size, rng, incompressible):
        self.remaining = size
        self.rng = rng
        self.incompressible = incompressible

    def read(self, n=-1):
        if n is None or n < 0 or n > self.remaining:
            n = self.remaining
        n = min(n, _CHUNK)
        if n <= 0:
            return b""
        self.remaining -= n
        if self.incompressible:
            return os.urandom(n)
        # Hex text of random bytes: deterministic and compressible about 2:1, like real files.
        return self.rng.randbytes((n + 1) // 2).hex().encode()[:n]


def init_layout(layout):
    """Creates the layout directory, ``oci-layout`` and ``blobs/sha256`` (idempotent)."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def blob_path(layout, digest):
    algorithm, _, encoded = digest.partition(":")
    return os.path.join(layout, "blobs", algorithm, encoded)


def write_blob(layout, data, media_type):
    """Writes ``data`` (bytes) as a blob and returns its Descriptor."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return Descriptor(media_type, digest, len(data))


def write_layer(layout, size, seed, media="oci", incompressible=False, name="data"):
    """Streams one gzip'd tar layer (a directory and a file of ``size`` bytes) into the layout."""
    rng = random.Random(seed)
    blobs_dir = os.path.join(layout, "blobs", "sha256")
    fd, tmp = tempfile.mkstemp(dir=blobs_dir, prefix=".layer-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb", buffering=_CHUNK) as raw:
            compressed = _HashingWriter(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0,
                               compresslevel=0 if incompressible else 6) as gz:
                uncompressed = _HashingWriter(gz)
                with tarfile.open(fileobj=uncompressed, mode="w", format=tarfile.PAX_FORMAT,
                                  copybufsize=_CHUNK) as tar:
                    directory = tarfile.TarInfo(name)
                    directory.type = tarfile.DIRTYPE
                    directory.mode = 0o755
                    directory.mtime = _FIXED_MTIME
                    tar.addfile(directory)
                    member = tarfile.TarInfo(f"{name}/data.bin")
                    member.size = size
                    member.mode = 0o644
                    member.mtime = _FIXED_MTIME
                    tar.addfile(member, _ContentReader(size, rng, incompressible))
        digest = "sha256:" + compressed.sha.hexdigest()
        os.chmod(tmp, 0o644)
        os.replace(tmp, blob_path(layout, digest))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return Layer(MEDIA_TYPES[media]["layer"], digest, compressed.count,
                 diff_id="sha256:" + uncompressed.sha.hexdigest(), uncompressed_size=uncompressed.count)


def _dump_manifest(obj):
    return (json.dumps(obj, indent=3) + "\n").encode()


def _platform_json(platform):
    result = {"architecture": platform[1], "os": platform[0]}
    if len(platform) > 2 and platform[2]:
        result["variant"] = platform[2]
    return result


def _read_index_json(layout):
    path = os.path.join(layout, "index.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError:
        return None


def _add_to_index_json(layout, descriptor, ref_name, media, platform=None):
    """Points index.json's ``ref_name`` at ``descriptor`` (replacing an entry with the same ref)."""
    index = _read_index_json(layout) or {}
    manifests = [m for m in index.get("manifests", [])
                 if ref_name is None or m.get("annotations", {}).get(REF_NAME_ANNOTATION) != ref_name]
    entry = descriptor.as_json(platform=_platform_json(platform) if platform else None,
                               annotations={REF_NAME_ANNOTATION: ref_name} if ref_name else None)
    manifests.append(entry)
    index = {"schemaVersion": 2, "mediaType": MEDIA_TYPES["oci"]["index"], "manifests": manifests}
    tmp = os.path.join(layout, "index.json.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(layout, "index.json"))


def _write_image_blobs(layout, layers, layer_size, seed, media, platform, incompressible):
    """Writes layers, config and manifest blobs; returns ImageInfo without a ref."""
    types = MEDIA_TYPES[media]
    written = []
    for i in range(layers):
        written.append(write_layer(layout, layer_size, seed=f"{seed}-{'/'.join(platform)}-{i}", media=media,
                                   incompressible=incompressible, name=f"layer{i}"))
    config = {
        "created": _CREATED,
        "architecture": platform[1],
        "os": platform[0],
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.tagwarden.test.seed": str(seed)},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in written]},
        "history": [{"created": _CREATED, "created_by": f"make_image.py layer {i}"} for i in range(layers)],
    }
    if len(platform) > 2 and platform[2]:
        config["variant"] = platform[2]
    config_desc = write_blob(layout, json.dumps(config, separators=(",", ":"), sort_keys=True).encode(),
                             types["config"])
    manifest = {
        "schemaVersion": 2,
        "mediaType": types["manifest"],
        "config": config_desc.as_json(),
        "layers": [layer.as_json() for layer in written],
    }
    manifest_desc = write_blob(layout, _dump_manifest(manifest), types["manifest"])
    return ImageInfo(layout=os.path.abspath(layout), ref_name=None, media=media, platform=tuple(platform),
                     manifest=manifest_desc, config=config_desc, layers=written)


def make_image(layout, layers=2, layer_size=DEFAULT_LAYER_SIZE, seed=0, media="oci", ref_name="latest",
               platform=("linux", "amd64"), incompressible=False):
    """Writes a single-platform image into ``layout`` and points index.json's ``ref_name`` at it.

    An existing layout keeps its other refs, so several images can share one layout
    (select one with ``oci:DIR:REF``). ``ref_name=None`` writes an entry with no ref annotation.
    """
    if media not in MEDIA_TYPES:
        raise ValueError(f"media must be one of {sorted(MEDIA_TYPES)}")
    init_layout(layout)
    info = _write_image_blobs(layout, layers, layer_size, seed, media, platform, incompressible)
    info.ref_name = ref_name
    _add_to_index_json(layout, info.manifest, ref_name, media)
    return info


def make_index(layout, platforms=(("linux", "amd64"), ("linux", "arm64")), layers=2,
               layer_size=DEFAULT_LAYER_SIZE, seed=0, media="oci", ref_name="latest", incompressible=False):
    """Writes a multi-platform image: index.json -> image index blob -> one manifest per platform."""
    if media not in MEDIA_TYPES:
        raise ValueError(f"media must be one of {sorted(MEDIA_TYPES)}")
    init_layout(layout)
    children = [_write_image_blobs(layout, layers, layer_size, seed, media, tuple(p), incompressible)
                for p in platforms]
    types = MEDIA_TYPES[media]
    index = {
        "schemaVersion": 2,
        "mediaType": types["index"],
        "manifests": [c.manifest.as_json(platform=_platform_json(c.platform)) for c in children],
    }
    index_desc = write_blob(layout, _dump_manifest(index), types["index"])
    _add_to_index_json(layout, index_desc, ref_name, media)
    return IndexInfo(layout=os.path.abspath(layout), ref_name=ref_name, media=media, index=index_desc,
                     children=children)


# -- reading a layout ---------------------------------------------------------------------------


def read_index(layout):
    with open(os.path.join(layout, "index.json")) as f:
        return json.load(f)


def descriptor_for_ref(layout, ref_name=None):
    """The index.json descriptor for ``ref_name`` (or the only one when ref_name is None)."""
    manifests = read_index(layout)["manifests"]
    if ref_name is None:
        if len(manifests) != 1:
            raise ValueError(f"{layout}: index.json has {len(manifests)} manifests; name a ref")
        return manifests[0]
    for entry in manifests:
        if entry.get("annotations", {}).get(REF_NAME_ANNOTATION) == ref_name:
            return entry
    raise KeyError(f"{layout}: no manifest with ref {ref_name!r}")


def read_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        return f.read()


def read_json_blob(layout, digest):
    return json.loads(read_blob(layout, digest))


# -- corruption helpers -------------------------------------------------------------------------


def remove_blob(layout, digest):
    os.unlink(blob_path(layout, digest))


def flip_blob_bytes(layout, digest, offset=None, count=8):
    """Inverts ``count`` bytes of a blob in place (the size stays the same, the digest no longer matches)."""
    path = blob_path(layout, digest)
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError("cannot flip bytes of an empty blob")
    count = min(count, size)
    offset = (size - count) // 2 if offset is None else offset
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(count)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))
    assert os.path.getsize(path) == size


def truncate_blob(layout, digest, size=None):
    """Cuts a blob to ``size`` bytes (default: half)."""
    path = blob_path(layout, digest)
    size = os.path.getsize(path) // 2 if size is None else size
    os.truncate(path, size)


MALFORMED_INDEXES = {
    "syntax": '{"schemaVersion": 2, "manifests": [{"mediaType": ',
    "empty": "",
    "not-object": '["schemaVersion", 2]\n',
    "manifests-not-list": '{"schemaVersion": 2, "manifests": "latest"}\n',
    "bad-digest": json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": MEDIA_TYPES["oci"]["manifest"], "digest": "sha256:not-a-digest", "size": 10,
        "annotations": {REF_NAME_ANNOTATION: "latest"}}]}) + "\n",
}


def write_malformed_index(layout, kind="syntax"):
    """Replaces index.json with one of MALFORMED_INDEXES."""
    with open(os.path.join(layout, "index.json"), "w") as f:
        f.write(MALFORMED_INDEXES[kind])


# -- CLI ----------------------------------------------------------------------------------------


def _parse_platform(text):
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise argparse.ArgumentTypeError(f"platform must be OS/ARCH[/VARIANT], not {text!r}")
    return tuple(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write an OCI image layout (stdlib only).")
    parser.add_argument("dir", help="layout directory (created if missing; other refs are kept)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--layer-size", type=int, default=DEFAULT_LAYER_SIZE, help="uncompressed bytes per layer")
    parser.add_argument("--incompressible", action="store_true",
                        help="random bytes in stored gzip blocks (fast to write, for benchmarks)")
    parser.add_argument("--index", action="store_true", help="multi-platform image index")
    parser.add_argument("--platform", type=_parse_platform, action="append",
                        help="OS/ARCH[/VARIANT]; repeat with --index (default linux/amd64, and linux/arm64 with --index)")
    parser.add_argument("--docker", action="store_true", help="Docker v2 media types instead of OCI")
    parser.add_argument("--ref", default="latest", help="org.opencontainers.image.ref.name in index.json")
    parser.add_argument("--seed", default="0")
    args = parser.parse_args(argv)
    media = "docker" if args.docker else "oci"
    if args.index:
        info = make_index(args.dir, platforms=args.platform or (("linux", "amd64"), ("linux", "arm64")),
                          layers=args.layers, layer_size=args.layer_size, seed=args.seed, media=media,
                          ref_name=args.ref, incompressible=args.incompressible)
    else:
        platform = (args.platform or [("linux", "amd64")])[0]
        info = make_image(args.dir, layers=args.layers, layer_size=args.layer_size, seed=args.seed, media=media,
                          ref_name=args.ref, platform=platform, incompressible=args.incompressible)
    print(json.dumps(info.summary(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
