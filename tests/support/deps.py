"""Checks that the external programs the integration tests drive are installed.

A missing component is a failure, locally and in CI (where ``CI`` is set): the
tests never skip. The message names the Debian package that provides it.
"""

import os
import shutil

# program -> Debian package providing it
PACKAGES = {
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "umoci": "umoci",
    "htpasswd": "apache2-utils",
    "openssl": "openssl",
}


class MissingComponent(RuntimeError):
    pass


def find_program(name):
    """Absolute path of ``name``; raises MissingComponent naming the apt package."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if path is None:
        package = PACKAGES.get(name, name)
        where = "in CI" if os.environ.get("CI") else "locally"
        raise MissingComponent(
            f"required program '{name}' is not installed ({where}); "
            f"install it with: apt-get install -y {package}  (or run scripts/bootstrap)")
    return path


def require(*names):
    """Checks every program in ``names`` (default: all of PACKAGES) and returns {name: path}."""
    names = names or tuple(PACKAGES)
    missing = []
    found = {}
    for name in names:
        try:
            found[name] = find_program(name)
        except MissingComponent as error:
            missing.append(str(error))
    if missing:
        raise MissingComponent("\n".join(missing))
    return found


def tagwarden_bin():
    """Path of the tagwarden binary under test (TAGWARDEN_BIN, else BUILD_DIR/tagwarden, else build/tagwarden)."""
    path = os.environ.get("TAGWARDEN_BIN")
    if not path:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.path.join(root, os.environ.get("BUILD_DIR") or "build", "tagwarden")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise MissingComponent(
            f"tagwarden binary not found at {path}; build it with scripts/build "
            f"(or set TAGWARDEN_BIN)")
    return os.path.abspath(path)
