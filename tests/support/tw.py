"""Running the tagwarden binary under test (TAGWARDEN_BIN) and checking its output."""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse

import deps

DIGEST_RE = r"sha256:[0-9a-f]{64}"

# Exit codes of the CLI contract.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_GUARD = 3
EXIT_TAG_CONFLICT = 4
EXIT_LOCK = 5
EXIT_VERIFY = 6
EXIT_AUTH = 7
EXIT_NETWORK = 8

DEFAULT_TIMEOUT = 180

_empty_dirs = []


def _empty_dir(prefix):
    path = tempfile.mkdtemp(prefix=prefix)
    _empty_dirs.append(path)
    return path


# The variables by which tagwarden knows it runs in CI (then a per-machine default lock is refused).
# The suite itself runs in CI, so every run starts without them; the CI-lock tests set them.
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "CODEBUILD_BUILD_ID", "GITLAB_CI")


def clean_env(extra=None):
    """The environment tagwarden runs in: the test's own, minus TAGWARDEN_*, the CI markers
    (CI_VARIABLES, GITHUB_*, CODEBUILD_*, GITLAB_*) and docker/AWS credentials, with DOCKER_CONFIG pointing at an empty directory (so ~/.docker never leaks
    in), then ``extra`` on top (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TAGWARDEN_", "AWS_", "DOCKER_", "REGISTRY_AUTH", "GITHUB_", "CODEBUILD_", "GITLAB_"))
           and k not in CI_VARIABLES}
    env["DOCKER_CONFIG"] = _empty_dir("tw-dockercfg-")
    env["HOME"] = env.get("HOME") or "/root"
    # The plain test registries declare no lifecycle policy: the guard tests (test_guard_*) turn this
    # off (value None) to see the refusal; every other test is about something else.
    env["TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY"] = "true"
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_tagwarden(*args, stdin=None, env=None, cwd=None, timeout=DEFAULT_TIMEOUT):
    """Runs TAGWARDEN_BIN with ``args``; returns the CompletedProcess (text stdout/stderr).

    ``stdin``: str or bytes fed on standard input (otherwise /dev/null). ``env``: variables
    added to clean_env(). ``cwd``: defaults to an empty directory, so no tagwarden.yaml is read.
    """
    binary = deps.tagwarden_bin()
    if isinstance(stdin, str):
        stdin = stdin.encode()
    proc = subprocess.run([binary, *[str(a) for a in args]],
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=clean_env(env), cwd=cwd or _empty_dir("tw-cwd-"), timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode,
                                       proc.stdout.decode("utf-8", "replace"),
                                       proc.stderr.decode("utf-8", "replace"))


def describe(proc):
    """A readable dump of a run for assertion messages."""
    return (f"\n$ {' '.join(proc.args)}\nexit code: {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-6000:]}")


def assert_exit(testcase, proc, code):
    testcase.assertEqual(proc.returncode, code, f"expected exit code {code}" + describe(proc))


def parse_json(testcase, proc):
    """stdout as one JSON document (fails the test if it is not exactly one)."""
    try:
        return json.loads(proc.stdout)
    except ValueError as error:
        testcase.fail(f"stdout is not one JSON document: {error}" + describe(proc))


def secret_variants(secret):
    """The forms a leaked secret can take in logs: raw, base64, URL-encoded, JSON-escaped."""
    variants = {secret}
    variants.add(base64.b64encode(secret.encode()).decode())
    variants.add(urllib.parse.quote(secret, safe=""))
    variants.add(urllib.parse.quote_plus(secret))
    variants.add(json.dumps(secret)[1:-1])
    return {v for v in variants if len(v) >= 4}


def assert_no_secret(testcase, proc, *secrets):
    """Checks that neither stdout nor stderr contain any of ``secrets`` (in any usual encoding)."""
    output = {"stdout": proc.stdout or "", "stderr": proc.stderr or ""}
    for secret in secrets:
        if not secret:
            continue
        for variant in sorted(secret_variants(secret)):
            for stream, text in output.items():
                if variant in text:
                    index = text.index(variant)
                    testcase.fail(f"secret leaked on {stream} (as {variant!r}) at offset {index}; "
                                  f"exit code {proc.returncode}")


def basic_auth(username, password):
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def write_docker_config(directory, config):
    """Writes ``config`` (a dict) as DIRECTORY/config.json and returns DIRECTORY (for DOCKER_CONFIG)."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return directory


def write_credential_helper(directory, name, credentials, log_file=None):
    """Writes an executable ``docker-credential-NAME`` into ``directory``.

    It is a real helper speaking the docker-credential-helpers protocol: ``get`` reads a
    server URL on stdin and prints {"ServerURL", "Username", "Secret"} when ``credentials``
    ({host: (username, secret)}) has an entry for it (a URL or a bare host both match), or
    "credentials not found in native keychain" with exit 1. Each call is appended to
    ``log_file`` as one JSON line {"action", "server", "gnutls_env"} (the variables it was given whose
    name contains GNUTLS).
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"docker-credential-{name}")
    table = {host: {"Username": user, "Secret": secret} for host, (user, secret) in credentials.items()}
    python = shutil.which("python3") or "/usr/bin/python3"
    script = f"""#!{python}
import json, os, sys
TABLE = {json.dumps(table)!r}
LOG = {json.dumps(log_file)!r}
action = sys.argv[1] if len(sys.argv) > 1 else ""
server = sys.stdin.read().strip()
if json.loads(LOG):
    with open(json.loads(LOG), "a") as f:
        f.write(json.dumps({{"action": action, "server": server,
                            "gnutls_env": {{k: v for k, v in os.environ.items() if "GNUTLS" in k}}}}) + "\\n")
if action != "get":
    sys.stderr.write("unsupported action: " + action + "\\n")
    sys.exit(1)
host = server.split("://", 1)[-1].split("/", 1)[0]
entry = json.loads(TABLE).get(host)
if entry is None:
    sys.stdout.write("credentials not found in native keychain\\n")
    sys.exit(1)
sys.stdout.write(json.dumps(dict(ServerURL=server, **entry)) + "\\n")
"""
    with open(path, "w") as f:
        f.write(script)
    os.chmod(path, 0o755)
    return path


def read_helper_log(log_file):
    if not os.path.exists(log_file):
        return []
    with open(log_file) as f:
        return [json.loads(line) for line in f if line.strip()]


def stdout_digest_line(testcase, proc, repository):
    """Checks push's stdout is exactly one line REPOSITORY@sha256:<hex> and returns the digest."""
    lines = proc.stdout.splitlines()
    testcase.assertEqual(len(lines), 1, "push must print exactly one line on stdout" + describe(proc))
    match = re.fullmatch(re.escape(repository) + "@(" + DIGEST_RE + ")", lines[0])
    testcase.assertIsNotNone(match, f"stdout line must be {repository}@sha256:<hex>" + describe(proc))
    return match.group(1)


class TempDirTestCase(unittest.TestCase):
    """A TestCase with ``self.tmp``: a fresh directory per test, removed afterwards."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix=f"tw-{self._testMethodName}-")
        self.addCleanup(shutil.rmtree, self.tmp, True)


def cleanup():
    while _empty_dirs:
        shutil.rmtree(_empty_dirs.pop(), ignore_errors=True)


import atexit  # noqa: E402

atexit.register(cleanup)
