"""The CodeBuild build spec (ci-templates/codebuild/buildspec.yml, issue 12), run as CodeBuild runs it.

The phases' commands run in order in one bash (version 0.2: variables persist from command to command and
phase to phase); a failing command fails its phase and the build; post_build runs after a failed build
with CODEBUILD_BUILD_SUCCEEDING=0; `env: variables` are set and `env: exported-variables` read from the
shell at the end. CODEBUILD_* variables as CodeBuild sets them, against the ECR test bed:

- credentials from the "service role" through the container credentials endpoint: a local endpoint at
  AWS_CONTAINER_CREDENTIALS_FULL_URI (CodeBuild's RELATIVE_URI names 169.254.170.2, which a test cannot
  bind) serves temporary credentials the bed's STS issued for a role, with the authorization token;
  no AWS key in the environment, no `docker login`;
- the tag lock in DynamoDB (moto), as TAGWARDEN_LOCK;
- the Docker Engine API served by podman (tests/support/podman.py). `docker build` cannot run here: the
  build phase (`docker build -t "$LOCAL_IMAGE" .`) is replaced by loading a prebuilt image (a skopeo
  docker-archive of a test image, named $LOCAL_IMAGE) into podman — the test checks the build phase is
  exactly that one command before replacing it;
- the result: IMAGE_DIGEST and IMAGE_URI exported, the image in ECR under RELEASE.BUILD-dev and
  sha-COMMIT, imagedefinitions.json by digest; a second build of the same commit is unchanged; a failed
  build pushes nothing.
"""

import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest

import yaml

import deps
import make_image
import tw
from dynamodb import DynamoDb
from ecr_images import UNTAGGED_14_DAYS, GuardEcrCase, start_module_bed, stop_module_bed
from podman import PodmanService

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDSPEC = os.path.join(ROOT, "ci-templates", "codebuild", "buildspec.yml")
COMMIT = "5e1f0c9a7b3d2e4f6a8b0c1d2e3f4a5b6c7d8e9f"
BUILD_ID = "shop-app:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"

_state = {}


def setUpModule():  # noqa: N802 (unittest's name)
    deps.require("skopeo")
    start_module_bed(_state, "tw-codebuild-")
    try:
        _state["ddb"] = DynamoDb().__enter__()
        _state["podman"] = PodmanService().__enter__()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():  # noqa: N802
    for name in ("podman", "ddb"):
        service = _state.pop(name, None)
        if service is not None:
            service.__exit__(None, None, None)
    stop_module_bed(_state)


class _CredentialsEndpoint:
    """The container credentials endpoint: GET with `Authorization: TOKEN` -> the role's credentials."""

    def __init__(self, credentials, token):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                outer.requests.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != token:
                    self.send_response(403)
                    self.end_headers()
                    return
                body = json.dumps(credentials).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v2/credentials/codebuild-role"

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def load_buildspec():
    with open(BUILDSPEC, encoding="utf-8") as f:
        return yaml.safe_load(f)


class BuildspecShape(unittest.TestCase):

    def test_version_phases_exports(self):
        spec = load_buildspec()
        self.assertEqual(str(spec["version"]), "0.2")
        self.assertEqual(spec["env"]["exported-variables"], ["IMAGE_DIGEST", "IMAGE_URI"])
        self.assertEqual(list(spec["phases"]), ["install", "pre_build", "build", "post_build"])
        for phase, body in spec["phases"].items():
            for command in body["commands"]:
                self.assertIsInstance(command, str, f"{phase}: a command that YAML read as {type(command)}")
        self.assertTrue(any(c.startswith("docker build") for c in spec["phases"]["build"]["commands"]))
        post = "\n".join(spec["phases"]["post_build"]["commands"])
        self.assertIn('tagwarden push "docker-daemon:$LOCAL_IMAGE"', post)
        self.assertNotIn("docker push", post)
        self.assertNotIn("docker login", post)
        install = "\n".join(spec["phases"]["install"]["commands"])
        self.assertIn("TAGWARDEN_DEB", install)
        self.assertIn("./scripts/build", install)


class BuildspecRun(GuardEcrCase):
    state = _state

    def setUp(self):
        super().setUp()
        self.podman = _state["podman"]
        self.ddb = _state["ddb"]
        sts = self.bed.client("sts")
        role = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/codebuild-shop", RoleSessionName="cb")
        c = role["Credentials"]
        self.role_key = c["AccessKeyId"]
        self.endpoint = _CredentialsEndpoint({"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                                              "Token": c["SessionToken"],
                                              "Expiration": c["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")},
                                             "cb-auth-token-1")
        self.addCleanup(self.endpoint.close)

    def prebuilt_image(self, local_image):
        """The substitute for `docker build -t LOCAL_IMAGE .`: a test image loaded into podman as LOCAL_IMAGE."""
        layout, info = self.image("app")
        archive = os.path.join(self.tmp, "app.tar")
        subprocess.run([deps.find_program("skopeo"), "copy", "--quiet", f"oci:{layout}",
                        f"docker-archive:{archive}:{local_image}"], check=True, capture_output=True)
        self.podman.load(archive)
        return info

    def codebuild_env(self, repo, **extra):
        static_keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        env = tw.clean_env({k: v for k, v in self.env().items() if k not in static_keys})
        bin_dir = os.path.dirname(os.path.abspath(deps.tagwarden_bin()))
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        env.update({
            "CODEBUILD_BUILD_ID": BUILD_ID, "CODEBUILD_BUILD_NUMBER": "57", "CODEBUILD_RESOLVED_SOURCE_VERSION": COMMIT,
            "CODEBUILD_BUILD_URL": f"https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/shop-app/build/{BUILD_ID}",
            "CODEBUILD_SRC_DIR": self.tmp, "CODEBUILD_BUILD_SUCCEEDING": "1",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.endpoint.url, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "cb-auth-token-1",
            "DOCKER_HOST": self.podman.docker_host,
            "IMAGE_REPO": self.target(repo), "RELEASE": "1.2", "TAGWARDEN_LOCK": self.ddb.url,
            # the bed's data plane speaks plain HTTP (a real ECR is HTTPS): the spec's extra-options variable
            "TAGWARDEN_PUSH_ARGS": "--plain-http",
        })
        env.update(extra)
        return env

    def run_buildspec(self, env, build_fails=False):
        """Runs the phases; returns (proc, exported {name: value} or None when the build failed)."""
        spec = load_buildspec()
        self.assertEqual(spec["phases"]["build"]["commands"], ['docker build -t "$LOCAL_IMAGE" .'],
                         "the build phase replaced below is docker build alone")
        for key, value in spec["env"]["variables"].items():
            env.setdefault(key, str(value))
        lines = ["__failed=0"]
        n = 0
        for phase, body in spec["phases"].items():
            commands = body["commands"]
            if phase == "build":
                # docker build cannot run here: the image was loaded into podman beforehand (prebuilt_image)
                commands = ['echo "build phase: prebuilt $LOCAL_IMAGE loaded into podman"'] + (
                    ["false"] if build_fails else [])
            if phase == "post_build":
                lines.append('if [ "$__failed" = 1 ]; then export CODEBUILD_BUILD_SUCCEEDING=0; fi; __phase_failed=0')
            else:
                lines.append('if [ "$__failed" = 1 ]; then __phase_failed=1; else __phase_failed=0; fi')
            for command in commands:
                n += 1
                path = os.path.join(self.tmp, f"cmd-{n}.sh")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(command)
                lines.append(f'if [ "$__phase_failed" = 0 ]; then eval "$(cat {path})"; __rc=$?; '
                             f'if [ $__rc -ne 0 ]; then echo "[codebuild] {phase}: command {n} failed: exit $__rc" >&2; '
                             f'__phase_failed=1; __failed=1; fi; fi')
        exported = os.path.join(self.tmp, "exported.json")
        names = " ".join(spec["env"]["exported-variables"])
        lines.append(f'if [ "$__failed" = 0 ]; then export {names}; python3 -c \'import json, os, sys; '
                     f'json.dump({{n: os.environ.get(n, "") for n in sys.argv[1:]}}, open("{exported}", "w"))\' '
                     f'{names}; fi')
        lines.append('exit $__failed')
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-c", "\n".join(lines)], cwd=self.tmp, env=env,
                              capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        if not os.path.exists(exported):
            return proc, None
        with open(exported, encoding="utf-8") as f:
            return proc, json.load(f)

    def test_build_pushes_to_ecr_and_exports_digest_and_uri(self):
        repo = self.create("codebuild/app", lifecycle_policy=UNTAGGED_14_DAYS)
        info = self.prebuilt_image(f"app:{COMMIT[:12]}")
        env = self.codebuild_env(repo)
        proc, exported = self.run_buildspec(dict(env))
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        # The daemon exports the image as `docker save` does and the layers are compressed again for the
        # push, so the manifest digest is the pushed one (as with docker push), not the test layout's; the
        # image itself (its config, the image ID) is the one loaded.
        digest = exported["IMAGE_DIGEST"]
        self.assertRegex(digest, r"^sha256:[0-9a-f]{64}$")
        self.assertEqual(exported["IMAGE_URI"], f"{self.target(repo)}@{digest}")
        self.assertEqual(self.images(repo), {digest: sorted(["1.2.57-dev", f"sha-{COMMIT}"])})
        got = self.bed.client("ecr").batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": digest}])
        manifest = json.loads(got["images"][0]["imageManifest"])
        self.assertEqual(manifest["config"]["digest"], info.config_digest, "the image loaded into the daemon")
        self.assertEqual(len(manifest["layers"]), len(info.layers))
        with open(os.path.join(self.tmp, "imagedefinitions.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f), [{"name": "app", "imageUri": exported["IMAGE_URI"]}])
        with open(os.path.join(self.tmp, "tagwarden-report.json"), encoding="utf-8") as f:
            report = json.load(f)
        self.assertEqual(report["source"]["transport"], "docker-daemon")
        self.assertEqual(report["digest"], digest)
        self.assertEqual(report["ci"], {"provider": "codebuild", "runUrl": env["CODEBUILD_BUILD_URL"], "commit": COMMIT})
        self.assertTrue(report["lock"]["backend"].startswith("dynamodb://"))
        self.assertEqual(report["lock"]["owner"]["ciUrl"], env["CODEBUILD_BUILD_URL"])
        # the service role's credentials, from the container endpoint, signed every ECR call
        self.assertIn("cb-auth-token-1", self.endpoint.requests)
        keys = {c.access_key for c in self.bed.api_calls(operation="GetAuthorizationToken")}
        self.assertIn(self.role_key, keys)
        self.assertNotIn(self.bed.access_key_id, keys)
        self.assertGreater(len(self.ddb.calls("PutItem")), 0, "tags locked in DynamoDB")

        again_proc, again = self.run_buildspec(dict(env))
        self.assertEqual(again_proc.returncode, 0, again_proc.stdout + again_proc.stderr)
        self.assertEqual(again, exported, "a re-run of the same build is unchanged")

    def test_failed_build_pushes_nothing(self):
        repo = self.create("codebuild/failed", lifecycle_policy=UNTAGGED_14_DAYS)
        self.prebuilt_image(f"app:{COMMIT[:12]}")
        proc, exported = self.run_buildspec(self.codebuild_env(repo), build_fails=True)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIsNone(exported)
        self.assertIn("the build failed, so nothing is pushed", proc.stdout)
        self.assertEqual(self.images(repo), {})


if __name__ == "__main__":
    unittest.main()
