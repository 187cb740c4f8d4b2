// The AWS code against real components on loopback: moto_server (STS, ECR, Service Quotas, DynamoDB)
// started by the test on a free 127.0.0.1 port, small local HTTP servers standing in for the container
// credentials endpoint and IMDS, botocore/boto3 for setup and cross-checks, and botocore verifying one
// request's signature end to end (moto does not check signatures). Nothing here contacts 169.254.x.x: the
// container and IMDS providers are pointed at loopback servers by their override variables.
//
// One moto_server per test process (ctest runs each TEST_CASE in its own process; SECTIONs re-enter a case
// and share it), stopped at exit.

#include "aws_test_support.hpp"

#include <tagwarden/aws/aws_client.hpp>
#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/lock/dynamodb_lock.hpp>
#include <tagwarden/aws/ecr.hpp>
#include <tagwarden/aws/service_quotas.hpp>
#include <tagwarden/aws/sigv4.hpp>
#include <tagwarden/aws/wire.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/http/url.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <utility>

using namespace tagwarden;
using namespace tagwarden::aws;
using namespace tagwarden::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path k_verify_script = fs::path(__FILE__).parent_path() / "botocore_verify_request.py";

std::shared_ptr<http::Transport> curl() {
    return http::make_curl_transport({});
}

// Environment for a chain that talks to moto: HOME isolated, IMDS off unless the test sets it.
Environment moto_env(const MotoServer& moto, const TempDir& home) {
    return {{"HOME", home.path().string()},
            {"AWS_REGION", "us-east-1"},
            {"AWS_ENDPOINT_URL", moto.url()},
            {"AWS_EC2_METADATA_DISABLED", "true"}};
}

std::shared_ptr<CredentialChain> chain_over(Environment env) {
    ChainOptions options;
    options.environment = std::move(env);
    options.transport = curl();
    options.metadata_transport = curl();
    return std::make_shared<CredentialChain>(std::move(options));
}

// boto3 against moto, for setup and cross-checks. Fails the test on a non-zero exit.
std::string boto(const MotoServer& moto, const std::string& body) {
    const std::string script = "import boto3, json\n"
                               "kw = dict(endpoint_url='" +
                               moto.url() +
                               "', region_name='us-east-1',\n"
                               "          aws_access_key_id='AKIASETUP', aws_secret_access_key='setup')\n" +
                               body;
    auto out = run_python(moto.python(), script);
    INFO("boto3 script:\n" << script << "\noutput:\n" << out.output);
    REQUIRE(out.exit_code == 0);
    return out.output;
}

#define REQUIRE_MOTO(moto)                                                                                   \
    do {                                                                                                     \
        INFO((moto).error());                                                                                \
        REQUIRE((moto).error().empty());                                                                     \
    } while (0)

http::RetryPolicy quick_retry() {
    http::RetryPolicy p;
    p.max_attempts = 2;
    p.base_delay = std::chrono::milliseconds(10);
    p.max_delay = std::chrono::milliseconds(20);
    return p;
}

std::unique_ptr<AwsJsonClient> client_for(const ServiceInfo& service,
                                          std::shared_ptr<CredentialSource> credentials,
                                          const std::string& endpoint) {
    AwsClientConfig config;
    config.region = "us-east-1";
    config.endpoint = endpoint;
    config.credentials = std::move(credentials);
    config.transport = curl();
    config.retry = quick_retry();
    return std::make_unique<AwsJsonClient>(service, std::move(config));
}

MotoServer& shared_moto() {
    static MotoServer moto;
    return moto;
}

// A fresh name per entry into a test case (SECTIONs re-run the case against the same server).
std::string unique(const std::string& base) {
    static int counter = 0;
    return base + "-" + std::to_string(++counter);
}

} // namespace

TEST_CASE(
    "credential chain end to end: environment, credential_process, AssumeRole and web identity via moto STS, "
    "container and IMDSv2 from loopback servers",
    "[integration][aws][chain]") {
    MotoServer& moto = shared_moto();
    REQUIRE_MOTO(moto);
    TempDir home;

    SECTION("environment credentials sign a real ECR call") {
        auto env = moto_env(moto, home);
        env["AWS_ACCESS_KEY_ID"] = "AKIAINTEGRATIONENV";
        env["AWS_SECRET_ACCESS_KEY"] = "integrationEnvSecret";
        auto chain = chain_over(env);
        auto ecr =
            make_ecr_client(*parse_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com"), chain, curl());
        REQUIRE(ecr);
        CHECK((*ecr)->api().endpoint() == moto.url());
        auto repos = (*ecr)->describe_repositories();
        INFO((repos ? "" : repos.error().message));
        REQUIRE(repos);
        CHECK(chain->resolve()->source == "environment");
    }

    SECTION("a profile with credential_process runs the program (split into words, no shell)") {
        auto script = home.write(
            "creds.sh",
            "#!/bin/sh\n"
            "echo 'diagnostics go to stderr' >&2\n"
            "cat <<EOF\n"
            "{\"Version\": 1, \"AccessKeyId\": \"ASIAPROCESS\", \"SecretAccessKey\": "
            "\"procSecretIntegration\",\n"
            " \"SessionToken\": \"procTokenIntegration\", \"Expiration\": \"2099-01-01T00:00:00Z\"}\n"
            "EOF\n",
            true);
        home.write("config",
                   "[profile proc]\ncredential_process = " + script.string() + " --flag 'with space'\n");
        auto env = moto_env(moto, home);
        env["AWS_CONFIG_FILE"] = (home.path() / "config").string();
        env["AWS_PROFILE"] = "proc";
        auto chain = chain_over(env);
        auto c = chain->resolve();
        REQUIRE(c);
        CHECK(c->credentials.access_key_id == "ASIAPROCESS");
        CHECK(c->source == "profile proc (credential_process)");
        CHECK(format_iso8601(*c->expiration) == "2099-01-01T00:00:00Z");
    }

    SECTION("role_arn + source_profile: AssumeRole through moto STS") {
        home.write("config", "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\n"
                             "source_profile = base\nduration_seconds = 900\n");
        home.write("credentials",
                   "[base]\naws_access_key_id = AKIABASEINTEG\naws_secret_access_key = baseSecretInteg\n");
        auto env = moto_env(moto, home);
        env["AWS_CONFIG_FILE"] = (home.path() / "config").string();
        env["AWS_SHARED_CREDENTIALS_FILE"] = (home.path() / "credentials").string();
        env["AWS_PROFILE"] = "deploy";
        auto chain = chain_over(env);
        auto c = chain->resolve();
        INFO((c ? "" : c.error().message));
        REQUIRE(c);
        CHECK(c->credentials.access_key_id.starts_with("ASIA"));
        CHECK_FALSE(c->credentials.session_token.empty());
        REQUIRE(c->expiration);
        // DurationSeconds reached moto: the credentials expire in about 15 minutes.
        auto left = std::chrono::duration_cast<std::chrono::seconds>(*c->expiration - Clock::now()).count();
        CHECK(left > 800);
        CHECK(left <= 901);
        // The assumed credentials work against moto.
        auto client = client_for(k_ecr, chain, moto.url());
        CHECK(client->call("DescribeRepositories", json::object()));
        CHECK(log::redact(c->credentials.secret_access_key) == "***");
    }

    SECTION("web identity: AssumeRoleWithWebIdentity through moto STS") {
        auto token = home.write("token", "eyJhbGciOiJSUzI1NiJ9.integration.token\n");
        auto env = moto_env(moto, home);
        env["AWS_WEB_IDENTITY_TOKEN_FILE"] = token.string();
        env["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/github-actions";
        env["AWS_ROLE_SESSION_NAME"] = "run-1";
        auto chain = chain_over(env);
        auto c = chain->resolve();
        INFO((c ? "" : c.error().message));
        REQUIRE(c);
        CHECK(c->credentials.access_key_id.starts_with("ASIA"));
        CHECK(c->source == "web identity (arn:aws:iam::123456789012:role/github-actions)");
        REQUIRE(c->expiration);
        CHECK(*c->expiration > Clock::now());
    }

    SECTION("container credentials from a loopback FULL_URI with an authorization token") {
        LocalHttpServer server([](const RawRequest& r) -> LocalHttpServer::Reply {
            if (r.target != "/v2/credentials/task" ||
                header_value(r.headers, "Authorization") != "containerIntegToken")
                return {401, "{}", {}};
            return {200,
                    json{{"AccessKeyId", "ASIACONTAINERINTEG"},
                         {"SecretAccessKey", "containerSecretInteg"},
                         {"Token", "containerSessionInteg"},
                         {"Expiration", format_iso8601(Clock::now() + std::chrono::hours(6))}}
                        .dump(),
                    {{"Content-Type", "application/json"}}};
        });
        auto env = moto_env(moto, home);
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.base_url() + "/v2/credentials/task";
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "containerIntegToken";
        auto chain = chain_over(env);
        auto c = chain->resolve();
        INFO((c ? "" : c.error().message));
        REQUIRE(c);
        CHECK(c->credentials.access_key_id == "ASIACONTAINERINTEG");
        CHECK(server.requests().size() == 1);
    }

    SECTION("IMDSv2 from a loopback server: token PUT, role, credentials") {
        LocalHttpServer server([](const RawRequest& r) -> LocalHttpServer::Reply {
            if (r.method == "PUT" && r.target == "/latest/api/token") {
                if (header_value(r.headers, "X-aws-ec2-metadata-token-ttl-seconds") != "21600")
                    return {400, "", {}};
                return {200, "imdsIntegrationToken", {}};
            }
            if (header_value(r.headers, "X-aws-ec2-metadata-token") != "imdsIntegrationToken")
                return {401, "", {}};
            if (r.target == "/latest/meta-data/iam/security-credentials/")
                return {200, "ec2-role", {}};
            if (r.target == "/latest/meta-data/iam/security-credentials/ec2-role")
                return {200,
                        json{{"Code", "Success"},
                             {"Type", "AWS-HMAC"},
                             {"AccessKeyId", "ASIAIMDSINTEG"},
                             {"SecretAccessKey", "imdsSecretInteg"},
                             {"Token", "imdsSessionInteg"},
                             {"Expiration", format_iso8601(Clock::now() + std::chrono::hours(6))}}
                            .dump(),
                        {}};
            return {404, "", {}};
        });
        auto env = moto_env(moto, home);
        env.erase("AWS_EC2_METADATA_DISABLED");
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server.base_url();
        auto chain = chain_over(env);
        auto c = chain->resolve();
        INFO((c ? "" : c.error().message));
        REQUIRE(c);
        CHECK(c->credentials.access_key_id == "ASIAIMDSINTEG");
        CHECK(c->source == "IMDSv2 role ec2-role");
        CHECK(server.requests().size() == 3);
    }
}

TEST_CASE("ECR client against moto: repositories, images, tags, lifecycle policy, token, quota fallback",
          "[integration][aws][ecr]") {
    MotoServer& moto = shared_moto();
    REQUIRE_MOTO(moto);
    static bool repositories_created = false;
    if (!std::exchange(repositories_created, true))
        boto(moto,
             "ecr = boto3.client('ecr', **kw)\n"
             "ecr.create_repository(repositoryName='team/app')\n"
             "ecr.create_repository(repositoryName='team/locked', "
             "imageTagMutability='IMMUTABLE_WITH_EXCLUSION',\n"
             "    imageTagMutabilityExclusionFilters=[{'filterType': 'WILDCARD', 'filter': 'latest'}])\n");
    auto credentials =
        std::make_shared<StaticCredentialSource>(Credentials{"AKIAECRINTEG", "ecrSecretInteg", ""});
    auto api = std::shared_ptr<AwsJsonClient>(client_for(k_ecr, credentials, moto.url()));
    EcrClient ecr(api);

    auto repos = ecr.describe_repositories();
    REQUIRE(repos);
    REQUIRE(repos->size() == 2);
    auto locked = ecr.describe_repository("team/locked");
    REQUIRE(locked);
    CHECK(locked->tag_mutability == TagMutability::immutable_with_exclusion);
    REQUIRE(locked->exclusion_filters.size() == 1);
    CHECK(locked->exclusion_filters[0].filter == "latest");
    CHECK(locked->tag_is_immutable("1.0"));
    CHECK_FALSE(locked->tag_is_immutable("latest"));
    REQUIRE(locked->created_at);
    auto missing = ecr.describe_repository("team/none");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == ErrorKind::not_found);

    auto no_policy = ecr.get_lifecycle_policy("team/app");
    REQUIRE(no_policy);
    CHECK_FALSE(*no_policy);

    const std::string media = "application/vnd.oci.image.manifest.v1+json";
    auto manifest = [&](char c) {
        return json{{"schemaVersion", 2},
                    {"mediaType", media},
                    {"config",
                     {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                      {"digest", "sha256:" + std::string(64, c)},
                      {"size", 2}}},
                    {"layers", json::array({{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                                             {"digest", "sha256:" + std::string(63, c) + "1"},
                                             {"size", 10}}})}}
            .dump();
    };
    auto created = ecr.put_image("team/app", manifest('a'), media, "1.0");
    INFO((created ? "" : created.error().message));
    REQUIRE(created);
    CHECK_FALSE(created->unchanged);
    auto again = ecr.put_image("team/app", manifest('a'), media, "1.0");
    REQUIRE(again);
    CHECK(again->unchanged);
    REQUIRE(ecr.put_image("team/app", manifest('a'), media, "prod-1"));
    REQUIRE(ecr.put_image("team/app", manifest('b'), media, "2.0"));

    REQUIRE(ecr.put_image("team/locked", manifest('c'), media, "1.0"));
    auto moved = ecr.put_image("team/locked", manifest('d'), media, "1.0");
    REQUIRE_FALSE(moved);
    CHECK(moved.error().kind == ErrorKind::tag_conflict);

    auto images = ecr.describe_images("team/app");
    REQUIRE(images);
    REQUIRE(images->size() == 2);
    for (const auto& image : *images) {
        CHECK(image.pushed_at > Clock::time_point{});
        CHECK(image.manifest_media_type == media);
    }
    auto ids = ecr.list_images("team/app");
    REQUIRE(ids);
    CHECK(ids->size() == 3); // one entry per digest/tag pair

    auto got = ecr.batch_get_image("team/app", {{"", "1.0"}, {"", "nope"}});
    REQUIRE(got);
    REQUIRE(got->images.size() == 1);
    CHECK(got->images[0].manifest == manifest('a'));
    REQUIRE(got->failures.size() == 1);
    CHECK(got->failures[0].code == "ImageNotFound");

    auto deleted = ecr.batch_delete_image("team/app", {{"", "2.0"}, {"", "zz"}});
    REQUIRE(deleted);
    CHECK(deleted->deleted.size() == 1);
    CHECK(deleted->failures.size() == 1);

    // botocore sees what our client wrote.
    auto seen =
        boto(moto, "ecr = boto3.client('ecr', **kw)\n"
                   "tags = sorted(t for d in ecr.describe_images(repositoryName='team/app')['imageDetails']\n"
                   "              for t in d.get('imageTags', []))\n"
                   "print(json.dumps(tags))\n");
    CHECK(json::parse(seen) == json::array({"1.0", "prod-1"}));

    boto(moto,
         "ecr = boto3.client('ecr', **kw)\n"
         "ecr.put_lifecycle_policy(repositoryName='team/app', lifecyclePolicyText=json.dumps({'rules': [{\n"
         "    'rulePriority': 1, 'description': 'expire untagged', 'selection': {'tagStatus': 'untagged',\n"
         "    'countType': 'sinceImagePushed', 'countUnit': 'days', 'countNumber': 7},\n"
         "    'action': {'type': 'expire'}}]}))\n");
    auto policy = ecr.get_lifecycle_policy("team/app");
    REQUIRE(policy);
    REQUIRE(*policy);
    CHECK(json::parse((*policy)->text)["rules"][0]["rulePriority"] == 1);

    auto token = ecr.get_authorization_token();
    REQUIRE(token);
    CHECK(token->username == "AWS");
    CHECK(token->password == "123456789012-auth-token"); // moto's fixed token
    CHECK(log::redact(token->password) == "***");

    // moto's Service Quotas knows only "vpc": GetServiceQuota says NoSuchResourceException and
    // GetAWSDefaultServiceQuota is not implemented, so the documented default applies.
    auto quotas = client_for(k_service_quotas, credentials, moto.url());
    StderrCapture quiet;
    auto quota = get_images_per_repository_quota(*quotas);
    CHECK(quota.source == QuotaSource::documented_default);
    CHECK(quota.value == k_documented_images_per_repository);
    CHECK(quota.note.find("NoSuchResourceException") != std::string::npos);
}

TEST_CASE("DynamoDB lock against moto: one winner, expiry, heartbeat, release, force_release",
          "[integration][aws][dynamodb]") {
    MotoServer& moto = shared_moto();
    REQUIRE_MOTO(moto);
    static bool table_created = false;
    if (!std::exchange(table_created, true))
        boto(moto, "ddb = boto3.client('dynamodb', **kw)\n"
                   "ddb.create_table(TableName='tagwarden-locks', BillingMode='PAY_PER_REQUEST',\n"
                   "    AttributeDefinitions=[{'AttributeName': 'LockKey', 'AttributeType': 'S'}],\n"
                   "    KeySchema=[{'AttributeName': 'LockKey', 'KeyType': 'HASH'}])\n");
    // One clock shared by both backends, moved by the test: expiry without sleeping.
    auto now = Clock::now();
    auto make = [&](const std::string& table) {
        lock::DynamoDbLockOptions options;
        options.table = table;
        options.region = "us-east-1";
        options.endpoint = moto.url();
        options.credentials =
            std::make_shared<StaticCredentialSource>(Credentials{"AKIALOCKINTEG", "lockSecretInteg", ""});
        options.transport = curl();
        options.clock = [&now] { return now; };
        options.retry = quick_retry();
        auto backend = lock::make_dynamodb_backend(std::move(options));
        REQUIRE(backend);
        return std::move(*backend);
    };
    auto a = make("tagwarden-locks");
    auto b = make("tagwarden-locks");
    lock::LockOwner owner_a{"runner-a", 100, "run-a", "https://ci.example/run/a"};
    lock::LockOwner owner_b{"runner-b", 200, "run-b", ""};
    const auto ttl = std::chrono::seconds(60);
    const std::string key = unique("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:1.0");

    SECTION("two acquirers: only one wins, the loser is told who holds it") {
        auto first = a->try_acquire(key, owner_a, ttl);
        REQUIRE(first);
        auto second = b->try_acquire(key, owner_b, ttl);
        REQUIRE_FALSE(second);
        CHECK(second.error().kind == ErrorKind::lock_unavailable);
        CHECK(second.error().message.find("pid 100 on runner-a (https://ci.example/run/a)") !=
              std::string::npos);
        CHECK((*first)->check());
        auto listed = b->list();
        REQUIRE(listed);
        auto mine = std::find_if(listed->begin(), listed->end(), [&](const auto& i) { return i.key == key; });
        REQUIRE(mine != listed->end());
        CHECK(mine->owner.run_id == "run-a");
        CHECK(mine->owner.host == "runner-a");
        CHECK(mine->ttl == ttl);
        CHECK(mine->held);
        // Release lets the other in at once.
        REQUIRE((*first)->release());
        CHECK((*first)->release()); // idempotent
        CHECK(b->try_acquire(key, owner_b, ttl));
    }

    SECTION("expiry lets the second in; the first's check() then fails") {
        auto first = a->try_acquire(key, owner_a, ttl);
        REQUIRE(first);
        now += ttl + std::chrono::seconds(2);
        CHECK_FALSE((*first)->check());
        auto second = b->try_acquire(key, owner_b, ttl);
        REQUIRE(second);
        auto lost = (*first)->check();
        REQUIRE_FALSE(lost);
        CHECK(lost.error().message.find("taken over by pid 200 on runner-b") != std::string::npos);
        CHECK_FALSE((*first)->renew()); // a lost lease cannot be renewed
        CHECK((*second)->check());
    }

    SECTION("heartbeat keeps the lease past its original expiry") {
        auto first = a->try_acquire(key, owner_a, ttl);
        REQUIRE(first);
        now += std::chrono::seconds(50);
        REQUIRE((*first)->renew());
        now += std::chrono::seconds(20); // 70 s after acquiring: alive only thanks to the renewal
        CHECK((*first)->check());
        CHECK_FALSE(b->try_acquire(key, owner_b, ttl));
        now += std::chrono::seconds(45);
        CHECK(b->try_acquire(key, owner_b, ttl));
    }

    SECTION("force_release makes the holder's check() fail") {
        auto first = a->try_acquire(key, owner_a, ttl);
        REQUIRE(first);
        {
            StderrCapture quiet;
            REQUIRE(b->force_release(key));
        }
        auto gone = (*first)->check();
        REQUIRE_FALSE(gone);
        CHECK(gone.error().kind == ErrorKind::lock_unavailable);
        auto again = b->force_release(key);
        REQUIRE_FALSE(again);
        CHECK(again.error().kind == ErrorKind::not_found);
        StderrCapture quiet;
        CHECK((*first)->release()); // releasing a lost lease is not an error (it is logged)
    }

    SECTION("a missing table is refused with the create-table command") {
        auto missing = make("no-such-table");
        auto lease = missing->try_acquire(key, owner_a, ttl);
        REQUIRE_FALSE(lease);
        CHECK(lease.error().kind == ErrorKind::invalid_input);
        CHECK(lease.error().message.find("aws dynamodb create-table --table-name no-such-table") !=
              std::string::npos);
    }

    SECTION("the URL factory takes region and endpoint from the URL and credentials from the chain") {
        // The chain reads the process environment here; IMDS is disabled so nothing leaves loopback.
        ::setenv("AWS_ACCESS_KEY_ID", "AKIAFACTORY", 1);
        ::setenv("AWS_SECRET_ACCESS_KEY", "factorySecretInteg", 1);
        ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
        auto backend = lock::make_dynamodb_backend(
            "dynamodb://tagwarden-locks?region=us-east-1&endpoint=" + http::url_encode(moto.url()), curl());
        ::unsetenv("AWS_ACCESS_KEY_ID");
        ::unsetenv("AWS_SECRET_ACCESS_KEY");
        ::unsetenv("AWS_EC2_METADATA_DISABLED");
        REQUIRE(backend);
        auto lease = (*backend)->try_acquire(unique("factory-key"), owner_a, ttl);
        REQUIRE(lease);
        CHECK((*lease)->check());
    }
}

TEST_CASE("a signed ECR request as it goes on the wire is valid for botocore",
          "[integration][aws][sigv4][botocore]") {
    std::string tried;
    auto python = find_python_with("botocore.auth", tried);
    if (python.empty())
        FAIL("no python3 with botocore (tried " << tried << "): apt-get install python3-botocore");
    LocalHttpServer server([](const RawRequest&) -> LocalHttpServer::Reply {
        return {200, R"({"repositories":[]})", {{"Content-Type", "application/x-amz-json-1.1"}}};
    });
    const Credentials credentials{"ASIAWIRECHECK", "wireSecret/Key+Value0001", "wireSessionToken/0001=="};
    auto client = client_for(k_ecr, std::make_shared<StaticCredentialSource>(credentials), server.base_url());
    auto out = client->call("DescribeRepositories", {{"maxResults", 10}});
    REQUIRE(out);
    auto requests = server.requests();
    REQUIRE(requests.size() == 1);
    const auto& r = requests[0];
    json headers = json::array();
    for (const auto& [name, value] : r.headers)
        headers.push_back({name, value});
    json input = {{"method", r.method},
                  {"target", r.target},
                  {"headers", headers},
                  {"body", r.body},
                  {"access_key", credentials.access_key_id},
                  {"secret_key", credentials.secret_access_key},
                  {"token", credentials.session_token},
                  {"region", "us-east-1"},
                  {"service", "ecr"}};
    TempDir dir;
    auto file = dir.write("request.json", input.dump());
    auto run = run_command(shell_quote(python) + " " + shell_quote(k_verify_script.string()) + " " +
                           shell_quote(file.string()));
    INFO(python << ": " << run.output);
    REQUIRE(run.exit_code == 0);
    auto verdict = json::parse(run.output);
    CHECK(verdict.at("match").get<bool>());
    CHECK(verdict.at("received")
              .get<std::string>()
              .find("SignedHeaders=content-type;host;x-amz-date;"
                    "x-amz-security-token;x-amz-target") != std::string::npos);
    // And a wrong secret does not verify: the check is real.
    input["secret_key"] = "not-the-secret";
    auto bad_file = dir.write("bad.json", input.dump());
    auto bad = run_command(shell_quote(python) + " " + shell_quote(k_verify_script.string()) + " " +
                           shell_quote(bad_file.string()));
    REQUIRE(bad.exit_code == 0);
    CHECK_FALSE(json::parse(bad.output).at("match").get<bool>());
}
