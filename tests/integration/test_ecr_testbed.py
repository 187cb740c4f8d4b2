"""The ECR test bed (tests/support/ecr_testbed.py) speaks ECR: driven with the real ``aws`` CLI,
botocore and skopeo, it answers as ../shared/reference/ecr-api.md says ECR does.

One bed serves the module; every test works in its own repositories.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions

import deps
import make_image
from ecr_testbed import EcrTestbed

AWS_TIMEOUT = 60
QUOTA = 7

_state = {}


def _aws_program():
    for candidate in (shutil.which("aws"), os.path.expanduser("~/.pyenv/shims/aws")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise deps.MissingComponent("required program 'aws' (awscli) is not installed; "
                                "install it with: pip install awscli  (the machine image's pyenv Python has it)")


def setUpModule():  # noqa: N802 (unittest's name)
    deps.require("docker-registry", "skopeo")
    _state["aws"] = _aws_program()
    _state["tmp"] = tempfile.mkdtemp(prefix="tw-ecr-testbed-test-")
    _state["bed"] = EcrTestbed(quota=QUOTA).start()


def tearDownModule():  # noqa: N802
    bed = _state.pop("bed", None)
    if bed is not None:
        bed.stop()
    shutil.rmtree(_state.pop("tmp", ""), ignore_errors=True)


def _image(seed):
    """An OCI layout holding one small image (cached per seed); returns (layout, ImageInfo)."""
    key = ("image", seed)
    if key not in _state:
        layout = os.path.join(_state["tmp"], f"image-{seed}")
        _state[key] = (layout, make_image.make_image(layout, layers=2, layer_size=2048, seed=seed))
    return _state[key]


def _index(seed):
    key = ("index", seed)
    if key not in _state:
        layout = os.path.join(_state["tmp"], f"index-{seed}")
        _state[key] = (layout, make_image.make_index(layout, layers=1, layer_size=2048, seed=seed))
    return _state[key]


def _epoch(value):
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return datetime.datetime.fromisoformat(value).timestamp()


class EcrTestbedCase(unittest.TestCase):
    maxDiff = None

    @property
    def bed(self):
        return _state["bed"]

    def assertNoBedErrors(self):  # noqa: N802
        self.assertEqual(self.bed.errors, [], "the test bed recorded internal failures")

    # -- aws CLI ----------------------------------------------------------------------------------

    def aws_env(self, **overrides):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.bed.env())
        env["AWS_CONFIG_FILE"] = os.path.join(_state["tmp"], "no-aws-config")
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(_state["tmp"], "no-aws-credentials")
        env["AWS_MAX_ATTEMPTS"] = "1"
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def aws(self, *args, ok=True, endpoint_flag=True, **env_overrides):
        """Runs ``aws --endpoint-url <front> ARGS``; returns the parsed JSON (ok) or the CompletedProcess.

        ``endpoint_flag=False`` leaves the endpoint to the AWS_ENDPOINT_URL_* variables of ``bed.env()``.
        """
        endpoint = ["--endpoint-url", self.bed.control_url] if endpoint_flag else []
        proc = subprocess.run([_state["aws"], *endpoint, "--output", "json", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=self.aws_env(**env_overrides), timeout=AWS_TIMEOUT)
        if ok:
            self.assertEqual(proc.returncode, 0, f"aws {' '.join(args)} failed:\n{proc.stderr}")
            return json.loads(proc.stdout) if proc.stdout.strip() else {}
        return proc

    # -- skopeo and raw HTTP on the data plane -------------------------------------------------------

    def push(self, layout, repo, tag, password=None, all_images=False):
        password = password if password is not None else self.bed.login_password()
        args = ["skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
                "--dest-creds", f"AWS:{password}"]
        if all_images:
            args.append("--all")
        args += [f"oci:{layout}:latest", f"docker://127.0.0.1:{self.bed.data_port}/{repo}:{tag}"]
        return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)

    def push_ok(self, layout, repo, tag, **kwargs):
        proc = self.push(layout, repo, tag, **kwargs)
        self.assertEqual(proc.returncode, 0, f"skopeo push to {repo}:{tag} failed:\n{proc.stderr}")

    def basic(self, password=None):
        password = password if password is not None else self.bed.login_password()
        return "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()

    def http(self, method, path, headers=None, body=None, port=None, host="127.0.0.1"):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.bed.data_port, timeout=30)
        try:
            all_headers = {"Host": f"{host}:{port or self.bed.data_port}"}
            all_headers.update(headers or {})
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def manifest_bytes(self, layout, info):
        return make_image.read_blob(layout, info.manifest_digest)

    def images_by_digest(self, repo):
        return {image["imageDigest"]: image for image in self.bed.describe_images(repo)}


class ControlPlaneTest(EcrTestbedCase):
    """The aws CLI against the front: the control plane is moto's, reached through SigV4 checks."""

    def test_repository_and_lifecycle_policy_round_trip_with_the_aws_cli(self):
        created = self.aws("ecr", "create-repository", "--repository-name", "cli/app",
                           "--image-tag-mutability", "IMMUTABLE")["repository"]
        self.assertEqual(created["repositoryUri"],
                         f"{self.bed.account}.dkr.ecr.{self.bed.region}.amazonaws.com/cli/app")
        self.assertEqual(created["imageTagMutability"], "IMMUTABLE")
        described = self.aws("ecr", "describe-repositories", "--repository-names", "cli/app")["repositories"]
        self.assertEqual([r["repositoryArn"] for r in described], [created["repositoryArn"]])

        missing = self.aws("ecr", "get-lifecycle-policy", "--repository-name", "cli/app", ok=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("LifecyclePolicyNotFoundException", missing.stderr)

        policy = json.dumps({"rules": [{"rulePriority": 1, "description": "keep 50 untagged",
                                        "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                                                      "countNumber": 50},
                                        "action": {"type": "expire"}}]})
        self.aws("ecr", "put-lifecycle-policy", "--repository-name", "cli/app", "--lifecycle-policy-text", policy)
        got = self.aws("ecr", "get-lifecycle-policy", "--repository-name", "cli/app")
        self.assertEqual(json.loads(got["lifecyclePolicyText"]), json.loads(policy))
        self.assertEqual(got["registryId"], self.bed.account)

        calls = [(c.operation, c.status, c.access_key) for c in self.bed.api_calls(service="ecr")
                 if c.operation in ("CreateRepository", "PutLifecyclePolicy")]
        self.assertEqual(calls, [("CreateRepository", 200, self.bed.access_key_id),
                                 ("PutLifecyclePolicy", 200, self.bed.access_key_id)],
                         "the CLI's requests did not go through the signature-checking front")
        self.assertNoBedErrors()

    def test_get_authorization_token_issues_a_twelve_hour_basic_password_for_the_data_plane(self):
        before = time.time()
        data = self.aws("ecr", "get-authorization-token")["authorizationData"]
        self.assertEqual(len(data), 1)
        user, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
        self.assertEqual(user, "AWS")
        self.assertGreater(len(password), 500, "ECR tokens are long; clients must not assume a small size")
        self.assertEqual(data[0]["proxyEndpoint"],
                         f"https://{self.bed.account}.dkr.ecr.{self.bed.region}.amazonaws.com")
        expires = _epoch(data[0]["expiresAt"])
        self.assertAlmostEqual(expires - before, 12 * 3600, delta=120)

        status, _headers, _body = self.http("GET", "/v2/", {"Authorization": self.basic(password)})
        self.assertEqual(status, 200)
        second = self.bed.login_password()
        self.assertNotEqual(second, password, "every GetAuthorizationToken call issues a new password")

    def test_service_quotas_answers_the_image_quota_and_can_deny(self):
        quota = self.aws("service-quotas", "get-service-quota", "--service-code", "ecr",
                         "--quota-code", "L-03A36CE1")["Quota"]
        self.assertEqual((quota["QuotaCode"], quota["QuotaName"], quota["Value"]),
                         ("L-03A36CE1", "Images per repository", float(QUOTA)))
        default = self.bed.client("service-quotas").get_aws_default_service_quota(
            ServiceCode="ecr", QuotaCode="L-03A36CE1")["Quota"]
        self.assertEqual(default["Value"], 100000.0)
        self.bed.deny_service_quotas()
        try:
            denied = self.aws("service-quotas", "get-service-quota", "--service-code", "ecr",
                              "--quota-code", "L-03A36CE1", ok=False)
        finally:
            self.bed.deny_service_quotas(False)
        self.assertNotEqual(denied.returncode, 0)
        self.assertIn("AccessDeniedException", denied.stderr)

    def test_describe_images_paginates_filters_and_counts_index_children(self):
        repo = "cli/multi"
        self.bed.create_repository(repo)
        layout, index = _index(seed=40)
        self.push_ok(layout, repo, "1.0", all_images=True)
        page = self.aws("ecr", "describe-images", "--repository-name", repo, "--max-results", "1", "--no-paginate")
        self.assertEqual(len(page["imageDetails"]), 1)
        self.assertIn("nextToken", page)

        images = self.images_by_digest(repo)
        children = [c.manifest_digest for c in index.children]
        self.assertEqual(set(images), {index.index_digest, *children},
                         "an index push makes one image per manifest, children untagged")
        self.assertEqual(images[index.index_digest]["imageTags"], ["1.0"])
        self.assertEqual(images[index.index_digest]["imageSizeInBytes"],
                         max(images[c]["imageSizeInBytes"] for c in children))
        ecr = self.bed.client("ecr")
        tagged = ecr.describe_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})["imageDetails"]
        untagged = ecr.describe_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})["imageDetails"]
        self.assertEqual([i["imageDigest"] for i in tagged], [index.index_digest])
        self.assertEqual({i["imageDigest"] for i in untagged}, set(children))
        listed = ecr.list_images(repositoryName=repo, maxResults=2)
        self.assertEqual(len(listed["imageIds"]), 2)
        self.assertIn("nextToken", listed)
        self.assertNoBedErrors()

    def test_lifecycle_policy_preview_with_the_aws_cli(self):
        repo = "cli/preview"
        self.bed.create_repository(repo)
        digests = []
        for seed, days in ((51, 30), (52, 20), (53, 10)):
            layout, info = _image(seed)
            self.push_ok(layout, repo, f"v{seed}")
            self.bed.set_pushed_at(repo, info.manifest_digest, time.time() - days * 86400)
            digests.append(info.manifest_digest)
        self.bed.put_lifecycle_policy(repo, {"rules": [
            {"rulePriority": 1, "description": "keep the newest",
             "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
             "action": {"type": "expire"}}]})
        pushed = {d: _epoch(i["imagePushedAt"]) for d, i in self.images_by_digest(repo).items()}
        self.assertAlmostEqual(time.time() - pushed[digests[0]], 30 * 86400, delta=120)

        started = self.aws("ecr", "start-lifecycle-policy-preview", "--repository-name", repo)
        self.assertIn(started["status"], ("IN_PROGRESS", "COMPLETE"))
        preview = self.aws("ecr", "get-lifecycle-policy-preview", "--repository-name", repo)
        self.assertEqual(preview["status"], "COMPLETE")
        self.assertEqual([(r["imageDigest"], r["action"]["type"], r["appliedRulePriority"])
                          for r in preview["previewResults"]],
                         [(digests[0], "EXPIRE", 1), (digests[1], "EXPIRE", 1)])
        self.assertEqual(preview["summary"]["expiringImageTotalCount"], 2)

        self.bed.create_repository("cli/no-preview")
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.bed.client("ecr").get_lifecycle_policy_preview(repositoryName="cli/no-preview")
        self.assertEqual(caught.exception.response["Error"]["Code"], "LifecyclePolicyPreviewNotFoundException")
        self.assertNoBedErrors()


class SignatureTest(EcrTestbedCase):
    """The front recomputes every signature with botocore; moto alone would accept anything."""

    def test_wrong_secret_is_refused_with_invalid_signature_exception(self):
        proc = self.aws("ecr", "create-repository", "--repository-name", "sig/wrong-secret", ok=False,
                        AWS_SECRET_ACCESS_KEY=self.bed.secret_access_key + "x")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("InvalidSignatureException", proc.stderr)
        self.assertIn("signature we calculated does not match", proc.stderr)
        refused = [c for c in self.bed.api_calls(operation="CreateRepository")
                   if c.error == "InvalidSignatureException"]
        self.assertEqual([c.status for c in refused], [403])
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.bed.client("ecr", via="moto").describe_repositories(repositoryNames=["sig/wrong-secret"])
        self.assertEqual(caught.exception.response["Error"]["Code"], "RepositoryNotFoundException",
                         "a refused request must not reach moto")

    def _signed(self, service="ecr", region=None, secret=None, tamper=None, body=b"{}", date=None):
        request = botocore.awsrequest.AWSRequest(
            method="POST", url=self.bed.control_url + "/", data=body,
            headers={"Content-Type": "application/x-amz-json-1.1",
                     "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"})
        credentials = botocore.credentials.Credentials(self.bed.access_key_id, secret or self.bed.secret_access_key)
        signer = botocore.auth.SigV4Auth(credentials, service, region or self.bed.region)
        if date is not None:
            original = botocore.auth.get_current_datetime
            botocore.auth.get_current_datetime = lambda: date
            try:
                signer.add_auth(request)
            finally:
                botocore.auth.get_current_datetime = original
        else:
            signer.add_auth(request)
        headers = dict(request.headers.items())
        if tamper:
            body = tamper
        port = int(self.bed.control_url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def test_scope_body_and_clock_are_checked_like_aws(self):
        status, answer = self._signed()
        self.assertEqual(status, 200, answer)
        self.assertIn("repositories", answer)
        cases = {
            "wrong signing name": (dict(service="api.ecr"), "Credential should be scoped to correct service: 'ecr'"),
            "wrong region": (dict(region="us-east-1"), "Credential should be scoped to a valid region"),
            "body changed after signing": (dict(tamper=b'{"maxResults": 1}'), "signature we calculated does not match"),
            "clock 10 minutes off": (dict(date=datetime.datetime.now(datetime.timezone.utc)
                                               - datetime.timedelta(minutes=10)),
                                     "Signature expired"),
        }
        for name, (kwargs, text) in cases.items():
            with self.subTest(name):
                status, answer = self._signed(**kwargs)
                self.assertEqual((status, answer.get("__type")), (403, "InvalidSignatureException"), answer)
                self.assertIn(text, answer["message"])
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.bed.client("ecr", access_key_id="AKIAUNKNOWNKEY000000").describe_repositories()
        self.assertEqual(caught.exception.response["Error"]["Code"], "UnrecognizedClientException")

    def test_sts_credentials_issued_through_the_front_are_accepted_with_their_session_token(self):
        creds = self.aws("sts", "assume-role", "--role-arn", f"arn:aws:iam::{self.bed.account}:role/ci",
                         "--role-session-name", "testbed")["Credentials"]
        identity = self.aws("sts", "get-caller-identity", AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
                            AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"], AWS_SESSION_TOKEN=creds["SessionToken"])
        self.assertEqual(identity["Account"], self.bed.account)
        ecr = self.bed.client("ecr", access_key_id=creds["AccessKeyId"], secret_access_key=creds["SecretAccessKey"],
                              session_token=creds["SessionToken"])
        self.assertIn("repositories", ecr.describe_repositories())
        without_token = self.bed.client("ecr", access_key_id=creds["AccessKeyId"],
                                        secret_access_key=creds["SecretAccessKey"])
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            without_token.describe_repositories()
        self.assertEqual(caught.exception.response["Error"]["Code"], "UnrecognizedClientException")


class DataPlaneTest(EcrTestbedCase):
    """skopeo and raw HTTP against the registry endpoint; what they do shows up in the control plane."""

    def test_a_push_is_mirrored_into_describe_images_with_the_same_digest(self):
        repo = "data/mirror"
        self.bed.create_repository(repo)
        layout, info = _image(seed=1)
        before = time.time()
        self.push_ok(layout, repo, "1.0")
        images = self.aws("ecr", "describe-images", "--repository-name", repo)["imageDetails"]
        self.assertEqual([(i["imageDigest"], i["imageTags"]) for i in images], [(info.manifest_digest, ["1.0"])])
        self.assertAlmostEqual(_epoch(images[0]["imagePushedAt"]), before, delta=60)
        self.assertEqual(images[0]["imageManifestMediaType"], "application/vnd.oci.image.manifest.v1+json")
        self.assertEqual(images[0]["imageSizeInBytes"], sum(layer.size for layer in info.layers))

        got = self.aws("ecr", "batch-get-image", "--repository-name", repo, "--image-ids", "imageTag=1.0")
        manifest = got["images"][0]["imageManifest"]
        self.assertEqual("sha256:" + hashlib.sha256(manifest.encode()).hexdigest(), info.manifest_digest,
                         "the mirrored manifest must be the pushed bytes")
        self.assertEqual(self.bed.registry.tags(repo), {"1.0": info.manifest_digest})
        self.assertNoBedErrors()

    def test_the_image_quota_answers_ecr_denied_403(self):
        repo = "data/quota"
        self.bed.create_repository(repo)
        self.bed.set_quota(repo, 2)
        for seed in (11, 12):
            layout, _info = _image(seed)
            self.push_ok(layout, repo, f"v{seed}")
        layout, info = _image(13)
        mark = self.bed.mark()
        proc = self.push(layout, repo, "v13")
        self.assertNotEqual(proc.returncode, 0)
        message = (f"The repository with name '{repo}' in registry with id '{self.bed.account}' already has the "
                   f"maximum allowed number of images which is '2'")
        self.assertIn(message, proc.stderr)
        # Only v13's PUTs: the bed logs a request after answering it, so the previous push's PUT can land
        # after the mark.
        deadline = time.monotonic() + 10
        puts = self.bed.requests(method="PUT", path=r"/manifests/v13$", since=mark)
        while not puts and time.monotonic() < deadline:
            time.sleep(0.05)
            puts = self.bed.requests(method="PUT", path=r"/manifests/v13$", since=mark)
        self.assertEqual([r.status for r in puts], [403])

        status, _headers, body = self.http("PUT", f"/v2/{repo}/manifests/v13", {
            "Authorization": self.basic(), "Content-Type": info.media_type}, self.manifest_bytes(layout, info))
        self.assertEqual((status, json.loads(body)), (403, {"errors": [{"code": "DENIED", "message": message}]}))
        self.assertEqual(len(self.bed.describe_images(repo)), 2)
        self.assertNotIn("v13", self.bed.registry.tags(repo))

        again_layout, _again = _image(11)
        self.push_ok(again_layout, repo, "also-11")  # a digest the repository holds adds no image
        self.assertNoBedErrors()

    def test_an_immutable_tag_answers_tag_invalid_400(self):
        repo = "data/immutable"
        self.bed.create_repository(repo, mutability="IMMUTABLE")
        first_layout, first = _image(21)
        self.push_ok(first_layout, repo, "1.0")
        other_layout, other = _image(22)
        proc = self.push(other_layout, repo, "1.0")
        self.assertNotEqual(proc.returncode, 0)
        message = (f"The image tag '1.0' already exists in the '{repo}' repository and cannot be overwritten "
                   f"because the repository is immutable.")
        self.assertIn(message, proc.stderr)
        status, _headers, body = self.http("PUT", f"/v2/{repo}/manifests/1.0", {
            "Authorization": self.basic(), "Content-Type": other.media_type}, self.manifest_bytes(other_layout, other))
        self.assertEqual((status, json.loads(body)), (400, {"errors": [{"code": "TAG_INVALID", "message": message}]}))
        self.assertEqual(self.bed.registry.tags(repo), {"1.0": first.manifest_digest})
        tags = {d: i.get("imageTags") for d, i in self.images_by_digest(repo).items()}
        self.assertEqual(tags.get(first.manifest_digest), ["1.0"])

        self.push_ok(first_layout, repo, "1.0")  # the same digest again is fine
        put = self.aws("ecr", "put-image", "--repository-name", repo, "--image-tag", "1.0",
                       "--image-manifest", self.manifest_bytes(other_layout, other).decode(), ok=False)
        self.assertNotEqual(put.returncode, 0)
        self.assertIn("ImageTagAlreadyExistsException", put.stderr)
        self.assertNoBedErrors()

    def test_exclusion_modes_follow_ecr_wildcards(self):
        repo = "data/exclusion"
        self.bed.create_repository(repo, mutability="IMMUTABLE_WITH_EXCLUSION", exclusion_filters=["*-dev"])
        first_layout, first = _image(23)
        other_layout, other = _image(24)
        self.push_ok(first_layout, repo, "1-dev")
        self.push_ok(other_layout, repo, "1-dev")  # excluded: the tag may move
        self.push_ok(first_layout, repo, "1.0")
        proc = self.push(other_layout, repo, "1.0")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(f"The image tag '1.0' already exists in the '{repo}' repository and cannot be overwritten "
                      f"because the tag is immutable.", proc.stderr)
        tags = {d: i.get("imageTags") or [] for d, i in self.images_by_digest(repo).items()}
        self.assertEqual(tags, {first.manifest_digest: ["1.0"], other.manifest_digest: ["1-dev"]})
        repository = self.bed.client("ecr").describe_repositories(repositoryNames=[repo])["repositories"][0]
        self.assertEqual((repository["imageTagMutability"], repository["imageTagMutabilityExclusionFilters"]),
                         ("IMMUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD", "filter": "*-dev"}]))
        self.assertNoBedErrors()

    def test_credentials_other_than_an_issued_token_get_401(self):
        status, headers, body = self.http("GET", "/v2/")
        self.assertEqual(status, 401)
        self.assertEqual(headers.get("www-authenticate"),
                         f'Basic realm="https://{self.bed.account}.dkr.ecr.{self.bed.region}.amazonaws.com/",'
                         f'service="ecr.amazonaws.com"')
        self.assertEqual(json.loads(body)["errors"][0]["code"], "DENIED")
        status, _headers, _body = self.http("GET", "/v2/", {"Authorization": self.basic("not-a-token")})
        self.assertEqual(status, 401)

        repo = "data/auth"
        self.bed.create_repository(repo)
        layout, _info = _image(31)
        uploads = self.bed.registry.upload_posts()
        mark = self.bed.mark()
        proc = self.push(layout, repo, "1.0", password="wrong-token")
        self.assertNotEqual(proc.returncode, 0)
        self.assertTrue(self.bed.requests(status=401, since=mark))
        self.assertEqual(self.bed.registry.upload_posts(), uploads, "no upload may reach the registry")

    def test_an_expired_token_is_refused(self):
        password = self.bed.login_password()
        self.assertEqual(self.http("GET", "/v2/", {"Authorization": self.basic(password)})[0], 200)
        self.bed.expire_tokens()
        status, _headers, body = self.http("GET", "/v2/", {"Authorization": self.basic(password)})
        self.assertEqual(status, 403)
        self.assertIn("Your authorization token has expired", body.decode())
        self.assertEqual(self.http("GET", "/v2/", {"Authorization": self.basic()})[0], 200)

    def test_an_unknown_repository_is_name_unknown(self):
        layout, _info = _image(32)
        uploads = self.bed.registry.upload_posts()
        proc = self.push(layout, "data/never-created", "1.0")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("does not exist in the registry with id", proc.stderr)
        self.assertEqual(self.bed.registry.upload_posts(), uploads)
        self.assertNotIn("data/never-created", self.bed.registry.repositories())

    def test_a_moved_mutable_tag_leaves_the_old_image_untagged(self):
        repo = "data/mutable"
        self.bed.create_repository(repo)
        old_layout, old = _image(33)
        new_layout, new = _image(34)
        self.push_ok(old_layout, repo, "latest")
        self.push_ok(new_layout, repo, "latest")
        tags = {d: i.get("imageTags") or [] for d, i in self.images_by_digest(repo).items()}
        self.assertEqual(tags, {old.manifest_digest: [], new.manifest_digest: ["latest"]})
        self.assertEqual(self.bed.registry.tags(repo), {"latest": new.manifest_digest})
        self.assertNoBedErrors()

    def test_blob_gets_redirect_to_a_host_that_refuses_credentials(self):
        repo = "data/redirect"
        self.bed.create_repository(repo)
        layout, info = _image(35)
        self.push_ok(layout, repo, "1.0")
        layer = info.layers[0].digest
        status, headers, _body = self.http("GET", f"/v2/{repo}/blobs/{layer}", {"Authorization": self.basic()})
        self.assertEqual(status, 307)
        location = headers["location"]
        self.assertTrue(location.startswith("http://localhost:"), location)
        target = location.split("://", 1)[1]
        hostport, _, path = target.partition("/")
        port = int(hostport.rsplit(":", 1)[1])
        status, _headers, body = self.http("GET", "/" + path, {"Authorization": self.basic()},
                                           port=port, host="localhost")
        self.assertEqual(status, 400)
        self.assertIn(b"InvalidArgument", body)
        status, _headers, body = self.http("GET", "/" + path, port=port, host="localhost")
        self.assertEqual(status, 200)
        self.assertEqual("sha256:" + hashlib.sha256(body).hexdigest(), layer)

        by_name = self.http("GET", f"/v2/{repo}/blobs/{layer}", {"Authorization": self.basic()},
                            host=self.bed.registry_hostname)
        self.assertTrue(by_name[1]["location"].startswith(f"http://{self.bed.blob_hostname}:"))

        pulled = os.path.join(_state["tmp"], "pulled")
        proc = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--src-creds",
                               f"AWS:{self.bed.login_password()}",
                               f"docker://127.0.0.1:{self.bed.data_port}/{repo}:1.0", f"oci:{pulled}:x"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(make_image.descriptor_for_ref(pulled, "x")["digest"], info.manifest_digest)
        image = self.images_by_digest(repo)[info.manifest_digest]
        self.assertIn("lastRecordedPullTime", image, "a manifest GET records the pull time")

    def test_put_image_and_batch_delete_image_reach_the_registry(self):
        repo = "data/retag"
        self.bed.create_repository(repo)
        layout, info = _image(36)
        self.push_ok(layout, repo, "1.0")
        manifest = self.aws("ecr", "batch-get-image", "--repository-name", repo,
                            "--image-ids", "imageTag=1.0")["images"][0]["imageManifest"]
        put = self.aws("ecr", "put-image", "--repository-name", repo, "--image-tag", "2.0",
                       "--image-manifest", manifest)
        self.assertEqual(put["image"]["imageId"], {"imageDigest": info.manifest_digest, "imageTag": "2.0"})
        self.assertEqual(self.bed.registry.tags(repo), {"1.0": info.manifest_digest, "2.0": info.manifest_digest})
        status, headers, _body = self.http("GET", f"/v2/{repo}/manifests/2.0",
                                           {"Authorization": self.basic(), "Accept": info.media_type})
        self.assertEqual((status, headers.get("docker-content-digest")), (200, info.manifest_digest))

        deleted = self.bed.client("ecr").batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "1.0"}])
        self.assertEqual(deleted["failures"], [])
        self.assertEqual(self.bed.registry.tags(repo), {"2.0": info.manifest_digest})
        status, _headers, _body = self.http("GET", f"/v2/{repo}/manifests/1.0",
                                            {"Authorization": self.basic(), "Accept": info.media_type})
        self.assertEqual(status, 404)
        self.assertNoBedErrors()


class EnvironmentTest(EcrTestbedCase):
    def test_env_names_what_the_cpp_credential_chain_reads(self):
        env = self.bed.env()
        self.assertEqual(env["AWS_ENDPOINT_URL_ECR"], self.bed.control_url)
        self.assertEqual(env["AWS_ENDPOINT_URL_STS"], self.bed.control_url)
        self.assertEqual(env["AWS_ENDPOINT_URL_SERVICE_QUOTAS"], self.bed.control_url)
        self.assertEqual(env["AWS_EC2_METADATA_DISABLED"], "true")
        self.assertEqual((env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_REGION"]),
                         (self.bed.access_key_id, self.bed.secret_access_key, self.bed.region))
        first_pin = env["TAGWARDEN_RESOLVE"].split(",")[0]
        self.assertEqual(first_pin, f"{self.bed.account}.dkr.ecr.{self.bed.region}.amazonaws.com:"
                                    f"{self.bed.data_port}:127.0.0.1")
        self.assertEqual(self.bed.registry_host, first_pin.rsplit(":", 1)[0])
        status, _headers, _body = self.http("GET", "/v2/", {"Authorization": self.basic()},
                                            host=self.bed.registry_hostname)
        self.assertEqual(status, 200)

        calls = len(self.bed.api_calls())
        self.aws("ecr", "describe-repositories", endpoint_flag=False)
        quota = self.aws("service-quotas", "get-service-quota", "--service-code", "ecr", "--quota-code", "L-03A36CE1",
                         endpoint_flag=False)["Quota"]
        self.assertEqual(quota["Value"], float(QUOTA))
        self.assertEqual([(c.service, c.operation, c.status) for c in self.bed.api_calls()[calls:]],
                         [("ecr", "DescribeRepositories", 200), ("servicequotas", "GetServiceQuota", 200)],
                         "with env() alone, an AWS SDK reaches the front for ECR and Service Quotas")


# -- repository creation templates and archived images (issue 14) ------------------------------------------

class CreationTemplateTest(EcrTestbedCase):
    """Repository creation templates, which moto lacks, checked with the real aws CLI; CREATE_ON_PUSH on
    the data plane; the archive test hook."""

    def delete_template_later(self, prefix):
        self.addCleanup(lambda: self.aws("ecr", "delete-repository-creation-template", "--prefix", prefix, ok=False))

    def test_templates_round_trip_with_the_aws_cli(self):
        policy = json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType":
                                        "sinceImagePushed", "countUnit": "days", "countNumber": 7},
                                        "action": {"type": "expire"}}]})
        created = self.aws("ecr", "create-repository-creation-template", "--prefix", "tmpl/apps",
                           "--applied-for", "CREATE_ON_PUSH", "REPLICATION", "--image-tag-mutability",
                           "IMMUTABLE_WITH_EXCLUSION", "--image-tag-mutability-exclusion-filters",
                           "filterType=WILDCARD,filter=latest", "--lifecycle-policy", policy,
                           "--description", "apps")
        self.delete_template_later("tmpl/apps")
        template = created["repositoryCreationTemplate"]
        self.assertEqual(created["registryId"], self.bed.account)
        self.assertEqual((template["prefix"], template["appliedFor"], template["imageTagMutability"],
                          template["imageTagMutabilityExclusionFilters"], template["lifecyclePolicy"]),
                         ("tmpl/apps", ["CREATE_ON_PUSH", "REPLICATION"], "IMMUTABLE_WITH_EXCLUSION",
                          [{"filterType": "WILDCARD", "filter": "latest"}], policy))
        self.assertIn("createdAt", template)

        self.aws("ecr", "create-repository-creation-template", "--prefix", "ROOT", "--applied-for",
                 "PULL_THROUGH_CACHE")
        self.delete_template_later("ROOT")
        again = self.aws("ecr", "create-repository-creation-template", "--prefix", "ROOT", "--applied-for",
                         "PULL_THROUGH_CACHE", ok=False)
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("TemplateAlreadyExistsException", again.stderr)
        bad = self.aws("ecr", "create-repository-creation-template", "--prefix", "Bad/Prefix", "--applied-for",
                       "CREATE_ON_PUSH", ok=False)
        self.assertIn("InvalidParameterException", bad.stderr)
        bad_policy = self.aws("ecr", "create-repository-creation-template", "--prefix", "tmpl/bad",
                              "--applied-for", "CREATE_ON_PUSH", "--lifecycle-policy", "{}", ok=False)
        self.assertIn("InvalidParameterException", bad_policy.stderr)

        # Every page, through the CLI's paginator (one template per page).
        listed = self.aws("ecr", "describe-repository-creation-templates", "--page-size", "1")
        self.assertEqual(sorted(t["prefix"] for t in listed["repositoryCreationTemplates"]), ["ROOT", "tmpl/apps"])
        one = self.aws("ecr", "describe-repository-creation-templates", "--prefixes", "ROOT")
        self.assertEqual([t["prefix"] for t in one["repositoryCreationTemplates"]], ["ROOT"])
        self.assertNotIn("lifecyclePolicy", one["repositoryCreationTemplates"][0])

        updated = self.aws("ecr", "update-repository-creation-template", "--prefix", "ROOT", "--applied-for",
                           "CREATE_ON_PUSH", "--lifecycle-policy", policy)["repositoryCreationTemplate"]
        self.assertEqual((updated["appliedFor"], updated["lifecyclePolicy"]), (["CREATE_ON_PUSH"], policy))
        self.aws("ecr", "delete-repository-creation-template", "--prefix", "ROOT")
        missing = self.aws("ecr", "update-repository-creation-template", "--prefix", "ROOT", ok=False)
        self.assertIn("TemplateNotFoundException", missing.stderr)
        self.assertNoBedErrors()

    def test_a_push_under_a_create_on_push_template_creates_the_repository_with_its_settings(self):
        policy = {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                                              "countUnit": "days", "countNumber": 3},
                             "action": {"type": "expire"}}]}
        self.bed.create_repository_creation_template("cop", lifecycle_policy=policy, mutability="IMMUTABLE")
        self.delete_template_later("cop")
        self.bed.create_repository_creation_template("cop/nested", applied_for=["PULL_THROUGH_CACHE"])
        self.delete_template_later("cop/nested")
        layout, info = _image(71)
        self.push_ok(layout, "cop/nested/app", "1.0")
        self.assertIn(("cop/nested/app", "cop"), self.bed.created_on_push,
                      "a template not applied for CREATE_ON_PUSH is skipped: the longest CREATE_ON_PUSH prefix wins")
        described = self.aws("ecr", "describe-repositories", "--repository-names", "cop/nested/app")
        self.assertEqual(described["repositories"][0]["imageTagMutability"], "IMMUTABLE")
        got = self.aws("ecr", "get-lifecycle-policy", "--repository-name", "cop/nested/app")
        self.assertEqual(json.loads(got["lifecyclePolicyText"]), policy)
        self.assertEqual(set(self.images_by_digest("cop/nested/app")), {info.manifest_digest})
        # Outside every CREATE_ON_PUSH prefix ("copper" is not under "cop/"), still NAME_UNKNOWN.
        proc = self.push(layout, "copper/app", "1.0")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("does not exist in the registry with id", proc.stderr)
        self.assertNoBedErrors()

    def test_archived_images_are_listed_by_image_status_with_last_archived_at(self):
        repo = "archive/app"
        self.bed.create_repository(repo)
        layout, info = _image(72)
        self.push_ok(layout, repo, "1.0")
        archived_at = time.time() - 5 * 86400
        self.bed.archive_image(repo, info.manifest_digest, archived_at)
        self.assertEqual(self.aws("ecr", "describe-images", "--repository-name", repo)["imageDetails"], [],
                         "ACTIVE only by default")
        details = self.aws("ecr", "describe-images", "--repository-name", repo, "--filter",
                           "imageStatus=ARCHIVED")["imageDetails"]
        self.assertEqual([(d["imageDigest"], d["imageStatus"]) for d in details],
                         [(info.manifest_digest, "ARCHIVED")])
        self.assertAlmostEqual(_epoch(details[0]["lastArchivedAt"]), archived_at, delta=1)
        self.bed.restore_image(repo, info.manifest_digest)
        details = self.aws("ecr", "describe-images", "--repository-name", repo, "--filter",
                           "imageStatus=ANY")["imageDetails"]
        self.assertEqual(details[0]["imageStatus"], "ACTIVE")
        self.assertIn("lastActivatedAt", details[0])
        self.assertNoBedErrors()


if __name__ == "__main__":
    unittest.main()
