"""skopeo and umoci as independent producers and readers of images, for interop tests."""

import hashlib
import json
import os
import subprocess

import deps


class ToolError(AssertionError):
    pass


def _run(args, check=True, timeout=300):
    proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise ToolError(f"$ {' '.join(args)}\nexit {proc.returncode}\n"
                        f"{proc.stderr.decode('utf-8', 'replace')[-4000:]}")
    return proc


def _tls_args(registry, prefix):
    """skopeo flags to reach ``registry`` (plain HTTP needs tls-verify=false, TLS trusts its CA)."""
    if registry.tls:
        return [f"--{prefix}cert-dir", registry.cert_dir]
    return [f"--{prefix}tls-verify=false"]


def _creds_args(registry, prefix, creds):
    if creds is None and registry.auth:
        creds = (registry.username, registry.password)
    return [f"--{prefix}creds", f"{creds[0]}:{creds[1]}"] if creds else []


def skopeo(*args, check=True):
    return _run([deps.find_program("skopeo"), *args], check=check)


def inspect(registry, ref, raw=False, creds=None):
    """``skopeo inspect`` of docker://HOST/REF; returns the parsed JSON (``raw``: the raw manifest bytes)."""
    args = ["inspect", *_tls_args(registry, ""), *_creds_args(registry, "", creds)]
    if raw:
        args.append("--raw")
    args.append(f"docker://{registry.host}/{ref}")
    out = skopeo(*args).stdout
    return out if raw else json.loads(out)


def remote_digest(registry, ref, creds=None):
    """The digest of the manifest (or index) ``ref`` points at, computed from skopeo's raw bytes."""
    return "sha256:" + hashlib.sha256(inspect(registry, ref, raw=True, creds=creds)).hexdigest()


def copy_to_registry(layout_ref, registry, ref, all_images=True, creds=None):
    """skopeo copy oci:LAYOUT_REF docker://HOST/REF (keeping the source's manifests and digests)."""
    args = ["copy", "--insecure-policy", "--preserve-digests", *(["--all"] if all_images else []),
            *_tls_args(registry, "dest-"), *_creds_args(registry, "dest-", creds),
            f"oci:{layout_ref}", f"docker://{registry.host}/{ref}"]
    return skopeo(*args)


def copy_from_registry(registry, ref, layout_ref, all_images=True, creds=None):
    """skopeo copy docker://HOST/REF oci:LAYOUT_REF."""
    args = ["copy", "--insecure-policy", "--preserve-digests", *(["--all"] if all_images else []),
            *_tls_args(registry, "src-"), *_creds_args(registry, "src-", creds),
            f"docker://{registry.host}/{ref}", f"oci:{layout_ref}"]
    return skopeo(*args)


def umoci(*args, check=True):
    return _run([deps.find_program("umoci"), *args], check=check)


def umoci_image(layout, tag="latest", files=None):
    """Builds an image with umoci only: init, new, one ``umoci insert`` layer per file.

    ``files``: {path inside the image: bytes}. Returns the manifest digest index.json points at.
    """
    umoci("init", "--layout", layout)
    umoci("new", "--image", f"{layout}:{tag}")
    staging = layout.rstrip("/") + ".files"
    os.makedirs(staging, exist_ok=True)
    for i, (target, content) in enumerate(sorted((files or {"/etc/tagwarden-hello": b"hello\n"}).items())):
        source = os.path.join(staging, f"file{i}")
        with open(source, "wb") as f:
            f.write(content)
        umoci("insert", "--image", f"{layout}:{tag}", source, target)
    umoci("config", "--image", f"{layout}:{tag}", "--config.cmd", "/bin/sh")
    return layout_digest(layout, tag)


def layout_digest(layout, ref):
    """The digest index.json of ``layout`` gives for ``ref``."""
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
            return entry["digest"]
    raise ToolError(f"{layout}: no ref {ref!r} in index.json: {index}")
