// The credential chain with an injected environment and a scripted transport: order, skip reasons, each
// provider's requests, refresh, and that no secret reaches an error message or a log line.

#include "aws_test_support.hpp"

#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/aws/wire.hpp>
#include <tagwarden/core/log.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace tagwarden;
using namespace tagwarden::aws;
using namespace tagwarden::test;

namespace {

const std::string k_sts_answer =
    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials>"
    "<AccessKeyId>ASIASTSROLE</AccessKeyId><SecretAccessKey>stsSecretKeyValue0001</SecretAccessKey>"
    "<SessionToken>stsSessionTokenValue0001</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>"
    "</Credentials></AssumeRoleResult></AssumeRoleResponse>";

std::string metadata_json(const std::string& key, const std::string& expiration = "2030-01-01T00:00:00Z") {
    return nlohmann::json{{"Code", "Success"},
                          {"AccessKeyId", key},
                          {"SecretAccessKey", "metaSecretKeyValue0001"},
                          {"Token", "metaSessionTokenValue0001"},
                          {"Expiration", expiration}}
        .dump();
}

// A transport that must not be used.
std::shared_ptr<FakeTransport> no_network() {
    return std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        FAIL("unexpected request " << r.method << " " << r.url);
        return fail(ErrorKind::internal, "unexpected");
    });
}

ChainOptions options_with(Environment env, std::shared_ptr<http::Transport> transport = nullptr,
                          std::shared_ptr<http::Transport> metadata = nullptr) {
    ChainOptions o;
    if (!env.count("HOME"))
        env["HOME"] = "/nonexistent-tagwarden-home";
    if (!env.count("AWS_EC2_METADATA_DISABLED") && !metadata)
        env["AWS_EC2_METADATA_DISABLED"] = "true";
    o.environment = std::move(env);
    o.transport = transport ? transport : no_network();
    o.metadata_transport = metadata ? metadata : no_network();
    return o;
}

std::string form_field(const std::string& body, const std::string& name) {
    auto pos = body.find(name + "=");
    if (pos == std::string::npos || (pos > 0 && body[pos - 1] != '&'))
        return {};
    auto start = pos + name.size() + 1;
    return body.substr(start, body.find('&', start) - start);
}

} // namespace

TEST_CASE("chain: the environment comes first", "[unit][aws][chain]") {
    TempDir home;
    home.write("token", "jwt-web-identity-token-0001");
    CredentialChain chain(options_with({{"AWS_ACCESS_KEY_ID", "AKIAENV"},
                                        {"AWS_SECRET_ACCESS_KEY", "envSecretKeyValue0001"},
                                        {"AWS_SESSION_TOKEN", "envSessionToken0001"},
                                        {"AWS_WEB_IDENTITY_TOKEN_FILE", (home.path() / "token").string()},
                                        {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci"}}));
    auto c = chain.resolve();
    REQUIRE(c);
    CHECK(c->source == "environment");
    CHECK(c->credentials.access_key_id == "AKIAENV");
    CHECK(c->credentials.session_token == "envSessionToken0001");
    CHECK_FALSE(c->expiration);
    CHECK(chain.provider_names() ==
          std::vector<std::string>{"environment", "web identity", "profile default", "container", "IMDSv2"});
    CHECK(log::redact("envSecretKeyValue0001 envSessionToken0001") == "*** ***");
}

TEST_CASE("chain: partial environment credentials are an error, not skipped", "[unit][aws][chain]") {
    CredentialChain chain(options_with({{"AWS_ACCESS_KEY_ID", "AKIAENV"}}));
    auto c = chain.resolve();
    REQUIRE_FALSE(c);
    CHECK(c.error().kind == ErrorKind::auth);
    CHECK(c.error().message.find("AWS_SECRET_ACCESS_KEY is not set") != std::string::npos);
}

TEST_CASE("chain: web identity posts an unsigned AssumeRoleWithWebIdentity to the STS endpoint",
          "[unit][aws][chain]") {
    TempDir home;
    auto token = home.write("token", "jwt-web-identity-token-0002\n");
    home.write("credentials",
               "[default]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s3cretprofile\n");
    auto sts = std::make_shared<FakeTransport>(
        [](const SentRequest&) -> Result<http::Response> { return response(200, k_sts_answer); });
    CredentialChain chain(options_with({{"HOME", home.path().string()},
                                        {"AWS_WEB_IDENTITY_TOKEN_FILE", token.string()},
                                        {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci"},
                                        {"AWS_ROLE_SESSION_NAME", "gha-42"},
                                        {"AWS_REGION", "eu-west-1"},
                                        {"AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"}},
                                       sts));
    auto c = chain.resolve();
    REQUIRE(c);
    CHECK(c->source == "web identity (arn:aws:iam::123456789012:role/ci)");
    CHECK(c->credentials.access_key_id == "ASIASTSROLE");
    REQUIRE(c->expiration);
    auto requests = sts->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "POST");
    CHECK(requests[0].url == "http://127.0.0.1:1/");
    CHECK_FALSE(requests[0].headers.get("Authorization"));
    CHECK(requests[0].headers.get("Content-Type")->starts_with("application/x-www-form-urlencoded"));
    CHECK(form_field(requests[0].body, "Action") == "AssumeRoleWithWebIdentity");
    CHECK(form_field(requests[0].body, "Version") == "2011-06-15");
    CHECK(form_field(requests[0].body, "RoleSessionName") == "gha-42");
    CHECK(form_field(requests[0].body, "WebIdentityToken") == "jwt-web-identity-token-0002");
    CHECK(form_field(requests[0].body, "RoleArn") == "arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fci");
    CHECK(log::redact("jwt-web-identity-token-0002") == "***");
}

TEST_CASE("chain: web identity with only one of its variables is skipped with the reason",
          "[unit][aws][chain]") {
    CredentialChain chain(options_with({{"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci"}}));
    auto c = chain.resolve();
    REQUIRE_FALSE(c);
    CHECK(c.error().kind == ErrorKind::auth);
    CHECK(
        c.error().message.find("web identity: AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not") !=
        std::string::npos);
}

TEST_CASE("chain: profile files, static keys, and AWS_PROFILE", "[unit][aws][chain]") {
    TempDir home;
    home.write("config", "[default]\nregion = us-west-2\n[profile ci]\nregion = eu-central-1\n");
    home.write("credentials",
               "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = defaultSecret01\n"
               "[ci]\naws_access_key_id = AKIACI\naws_secret_access_key = ciSecretValue01\n"
               "aws_session_token = ciSessionToken01\n");
    Environment env{{"HOME", home.path().string()},
                    {"AWS_CONFIG_FILE", (home.path() / "config").string()},
                    {"AWS_SHARED_CREDENTIALS_FILE", (home.path() / "credentials").string()}};
    {
        CredentialChain chain(options_with(env));
        auto c = chain.resolve();
        REQUIRE(c);
        CHECK(c->source == "profile default");
        CHECK(c->credentials.access_key_id == "AKIADEFAULT");
        CHECK(chain.region() == "us-west-2");
    }
    env["AWS_PROFILE"] = "ci";
    {
        CredentialChain chain(options_with(env));
        auto c = chain.resolve();
        REQUIRE(c);
        CHECK(c->source == "profile ci");
        CHECK(c->credentials.session_token == "ciSessionToken01");
        CHECK(chain.region() == "eu-central-1");
    }
    env["AWS_PROFILE"] = "missing";
    {
        CredentialChain chain(options_with(env));
        auto c = chain.resolve();
        REQUIRE_FALSE(c);
        CHECK(c.error().kind == ErrorKind::auth);
        CHECK(c.error().message.find("\"missing\" (from AWS_PROFILE) is not in") != std::string::npos);
    }
    // ~/.aws is used when no file variable is set.
    TempDir home2;
    std::filesystem::create_directories(home2.path() / ".aws");
    home2.write(".aws/credentials",
                "[default]\naws_access_key_id = AKIAHOME\naws_secret_access_key = homeSecret01\n");
    CredentialChain chain(options_with({{"HOME", home2.path().string()}}));
    auto c = chain.resolve();
    REQUIRE(c);
    CHECK(c->credentials.access_key_id == "AKIAHOME");
}

TEST_CASE("chain: credential_process output is parsed, its expiry honoured", "[unit][aws][chain]") {
    TempDir home;
    home.write("config", "[profile proc]\ncredential_process = /opt/bin/get-creds --role \"ci role\"\n");
    std::vector<std::string> commands;
    auto options = options_with({{"HOME", home.path().string()},
                                 {"AWS_CONFIG_FILE", (home.path() / "config").string()},
                                 {"AWS_PROFILE", "proc"}});
    options.run_process = [&](const std::string& command) -> Result<std::string> {
        commands.push_back(command);
        return R"({"Version": 1, "AccessKeyId": "ASIAPROC", "SecretAccessKey": "procSecret0001",
                   "SessionToken": "procToken0001", "Expiration": "2030-01-01T00:00:00Z"})";
    };
    CredentialChain chain(std::move(options));
    auto c = chain.resolve();
    REQUIRE(c);
    CHECK(commands == std::vector<std::string>{"/opt/bin/get-creds --role \"ci role\""});
    CHECK(c->source == "profile proc (credential_process)");
    CHECK(c->credentials.access_key_id == "ASIAPROC");
    REQUIRE(c->expiration);
    CHECK(format_iso8601(*c->expiration) == "2030-01-01T00:00:00Z");
}

TEST_CASE("credential_process output: what is rejected, and that the output never reaches the message",
          "[unit][aws][chain]") {
    auto ok = parse_credential_process_output(R"({"Version":1,"AccessKeyId":"A","SecretAccessKey":"S"})");
    REQUIRE(ok);
    CHECK_FALSE(ok->expiration);
    for (
        std::string bad :
        {R"({"Version":2,"AccessKeyId":"A","SecretAccessKey":"leakyProcessSecret"})",
         R"({"AccessKeyId":"A","SecretAccessKey":"leakyProcessSecret"})",
         R"({"Version":1,"AccessKeyId":"A"} leakyProcessSecret)", "leakyProcessSecret",
         R"({"Version":1,"AccessKeyId":"A","SecretAccessKey":"leakyProcessSecret","Expiration":"tomorrow"})"}) {
        auto r = parse_credential_process_output(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::auth);
        CHECK(r.error().message.find("leakyProcessSecret") == std::string::npos);
    }
}

TEST_CASE("chain: a credential_process with an unterminated quote is bad input naming the profile",
          "[unit][aws][chain]") {
    TempDir home;
    home.write("config", "[profile proc]\ncredential_process = \"/opt/my tools/get-creds --role ci\n");
    CredentialChain chain(options_with({{"HOME", home.path().string()},
                                        {"AWS_CONFIG_FILE", (home.path() / "config").string()},
                                        {"AWS_PROFILE", "proc"}}));
    auto c = chain.resolve();
    REQUIRE_FALSE(c);
    CHECK(c.error().kind == ErrorKind::invalid_input);
    CHECK(c.error().message.find("profile proc") != std::string::npos);
    CHECK(c.error().message.find("quotation") != std::string::npos);
}

TEST_CASE("credential_process is split into words and run without a shell", "[unit][aws][chain]") {
    auto out = run_credential_process("printf '%s' '{\"Version\": 1}'");
    REQUIRE(out);
    CHECK(*out == "{\"Version\": 1}");
    auto literal = run_credential_process("echo a; echo b");
    REQUIRE(literal);
    CHECK(*literal == "a; echo b\n");
}

TEST_CASE("chain: role_arn + source_profile signs AssumeRole with the source keys", "[unit][aws][chain]") {
    TempDir home;
    home.write("config", "[profile deploy]\nrole_arn = arn:aws:iam::210987654321:role/deploy\n"
                         "source_profile = base\nrole_session_name = release\nexternal_id = ext-1\n"
                         "duration_seconds = 900\nregion = us-east-2\n"
                         "[profile loop-a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop-b\n"
                         "[profile loop-b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = loop-a\n");
    home.write("credentials",
               "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = baseSecret0001\n");
    auto sts = std::make_shared<FakeTransport>(
        [](const SentRequest&) -> Result<http::Response> { return response(200, k_sts_answer); });
    Environment env{{"HOME", home.path().string()},
                    {"AWS_CONFIG_FILE", (home.path() / "config").string()},
                    {"AWS_SHARED_CREDENTIALS_FILE", (home.path() / "credentials").string()},
                    {"AWS_PROFILE", "deploy"}};
    CredentialChain chain(options_with(env, sts));
    auto c = chain.resolve();
    REQUIRE(c);
    CHECK(c->credentials.access_key_id == "ASIASTSROLE");
    CHECK(c->source ==
          "profile deploy (assume role arn:aws:iam::210987654321:role/deploy from source_profile base)");
    auto requests = sts->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].url == "https://sts.us-east-2.amazonaws.com/");
    auto auth = requests[0].headers.get("Authorization");
    REQUIRE(auth);
    CHECK(auth->find("Credential=AKIABASE/") != std::string::npos);
    CHECK(auth->find("/us-east-2/sts/aws4_request") != std::string::npos);
    CHECK(form_field(requests[0].body, "Action") == "AssumeRole");
    CHECK(form_field(requests[0].body, "RoleSessionName") == "release");
    CHECK(form_field(requests[0].body, "ExternalId") == "ext-1");
    CHECK(form_field(requests[0].body, "DurationSeconds") == "900");

    env["AWS_PROFILE"] = "loop-a";
    CredentialChain loop(options_with(env, sts));
    auto l = loop.resolve();
    REQUIRE_FALSE(l);
    CHECK(l.error().message.find("cycle") != std::string::npos);
}

TEST_CASE("chain: an STS refusal stops the chain with an auth error", "[unit][aws][chain]") {
    TempDir home;
    home.write("config", "[default]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\n"
                         "aws_access_key_id = AKIASELF\naws_secret_access_key = selfSecret0001\n");
    auto sts = std::make_shared<FakeTransport>([](const SentRequest&) -> Result<http::Response> {
        return response(403, "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                             "<Message>User AKIASELF is not authorized; key selfSecret0001</Message></Error>"
                             "</ErrorResponse>");
    });
    CredentialChain chain(options_with(
        {{"HOME", home.path().string()}, {"AWS_CONFIG_FILE", (home.path() / "config").string()}}, sts));
    auto c = chain.resolve();
    REQUIRE_FALSE(c);
    CHECK(c.error().kind == ErrorKind::auth);
    CHECK(c.error().message.find("AccessDenied") != std::string::npos);
    CHECK(c.error().message.find("selfSecret0001") == std::string::npos);
}

TEST_CASE("chain: container credentials (relative URI, token file) never leave the fake transport",
          "[unit][aws][chain]") {
    TempDir dir;
    auto token_file = dir.write("auth", "containerAuthToken0001\n");
    auto transport = std::make_shared<FakeTransport>([](const SentRequest&) -> Result<http::Response> {
        return response(200, metadata_json("ASIACONTAINER"));
    });
    CredentialChain chain(options_with({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"},
                                        {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file.string()},
                                        {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignoredWhenFileSet"}},
                                       transport));
    auto c = chain.resolve();
    REQUIRE(c);
    CHECK(c->credentials.access_key_id == "ASIACONTAINER");
    auto requests = transport->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].url == "http://169.254.170.2/v2/credentials/abc");
    CHECK(requests[0].headers.get("Authorization") == "containerAuthToken0001");
    CHECK(log::redact("containerAuthToken0001") == "***");
}

TEST_CASE("container FULL_URI: https or loopback/agent addresses only", "[unit][aws][chain]") {
    CHECK(container_full_uri_allowed("https://creds.example.com/x"));
    CHECK(container_full_uri_allowed("http://127.0.0.1:8080/creds"));
    CHECK(container_full_uri_allowed("http://127.8.9.10/creds"));
    CHECK(container_full_uri_allowed("http://localhost/creds"));
    CHECK(container_full_uri_allowed("http://[::1]:80/creds"));
    CHECK(container_full_uri_allowed("http://169.254.170.23/v1/credentials"));
    CHECK(container_full_uri_allowed("http://[fd00:ec2::23]/v1/credentials"));
    CHECK_FALSE(container_full_uri_allowed("http://example.com/creds"));
    CHECK_FALSE(container_full_uri_allowed("http://127.0.0.1.example.com/creds"));
    CHECK_FALSE(container_full_uri_allowed("http://10.0.0.1/creds"));
    CHECK_FALSE(container_full_uri_allowed("ftp://127.0.0.1/creds"));

    CredentialChain chain(
        options_with({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://evil.example.com/creds"}}));
    auto c = chain.resolve();
    REQUIRE_FALSE(c);
    CHECK(c.error().kind == ErrorKind::auth);
    CHECK(c.error().message.find("AWS_CONTAINER_CREDENTIALS_FULL_URI must be") != std::string::npos);
}

TEST_CASE("chain: IMDSv2 token, role and credentials requests", "[unit][aws][chain]") {
    auto imds = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        if (r.method == "PUT" && r.url == "http://127.0.0.1:9/latest/api/token")
            return response(200, "imdsSessionToken0001");
        if (r.headers.get("X-aws-ec2-metadata-token") != "imdsSessionToken0001")
            return response(401, "");
        if (r.url == "http://127.0.0.1:9/latest/meta-data/iam/security-credentials/")
            return response(200, "instance-role\n");
        if (r.url == "http://127.0.0.1:9/latest/meta-data/iam/security-credentials/instance-role")
            return response(200, metadata_json("ASIAIMDS"));
        return response(404, "");
    });
    CredentialChain chain(
        options_with({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/"}}, nullptr, imds));
    auto c = chain.resolve();
    REQUIRE(c);
    CHECK(c->source == "IMDSv2 role instance-role");
    CHECK(c->credentials.access_key_id == "ASIAIMDS");
    auto requests = imds->requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].headers.get("X-aws-ec2-metadata-token-ttl-seconds") == "21600");
    CHECK_FALSE(requests[0].retryable);
}

TEST_CASE("chain: nothing configured is an auth error naming every provider and why", "[unit][aws][chain]") {
    auto imds = std::make_shared<FakeTransport>([](const SentRequest&) -> Result<http::Response> {
        Error e(ErrorKind::registry, "connection refused");
        e.transient = true;
        return std::unexpected(e);
    });
    CredentialChain chain(
        options_with({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9"}}, nullptr, imds));
    auto c = chain.resolve();
    REQUIRE_FALSE(c);
    CHECK(c.error().kind == ErrorKind::auth);
    const auto& m = c.error().message;
    INFO(m);
    CHECK(m.find("no AWS credentials found") != std::string::npos);
    CHECK(m.find("environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set") !=
          std::string::npos);
    CHECK(m.find("web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set") !=
          std::string::npos);
    CHECK(m.find("profile default: no profile \"default\"") != std::string::npos);
    CHECK(m.find("container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI "
                 "are not set") != std::string::npos);
    CHECK(m.find("IMDSv2: no instance metadata service at http://127.0.0.1:9 (connection refused)") !=
          std::string::npos);

    CredentialChain disabled(options_with({}));
    auto d = disabled.resolve();
    REQUIRE_FALSE(d);
    CHECK(d.error().message.find("IMDSv2: disabled by AWS_EC2_METADATA_DISABLED=true") != std::string::npos);
}

TEST_CASE("chain: temporary credentials are refreshed before they expire", "[unit][aws][chain]") {
    auto now = *parse_iso8601("2030-01-01T00:00:00Z");
    int calls = 0;
    bool fail_next = false;
    auto container = std::make_shared<FakeTransport>([&](const SentRequest&) -> Result<http::Response> {
        ++calls;
        if (fail_next)
            return response(500, "down");
        // Each answer expires one hour after "now".
        return response(
            200, metadata_json("ASIA" + std::to_string(calls), format_iso8601(now + std::chrono::hours(1))));
    });
    auto options =
        options_with({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds"}}, container);
    options.clock = [&] { return now; };
    CredentialChain chain(std::move(options));
    REQUIRE(chain.credentials()->access_key_id == "ASIA1");
    now += std::chrono::minutes(30);
    CHECK(chain.credentials()->access_key_id == "ASIA1"); // cached
    CHECK(calls == 1);
    now += std::chrono::minutes(26);                      // 4 minutes left: inside the 5-minute window
    CHECK(chain.credentials()->access_key_id == "ASIA2"); // refreshed from the same provider
    CHECK(calls == 2);
    // A failed refresh keeps still-valid credentials; expired ones are an error.
    now += std::chrono::minutes(57);
    fail_next = true;
    {
        StderrCapture capture;
        CHECK(chain.credentials()->access_key_id == "ASIA2");
        CHECK(capture.text().find("using the current ones until they expire") != std::string::npos);
    }
    now += std::chrono::minutes(5);
    auto expired = chain.credentials();
    REQUIRE_FALSE(expired);
}

TEST_CASE("no secret in chain log lines (debug level) or errors", "[unit][aws][chain][secrets]") {
    TempDir home;
    home.write("credentials",
               "[default]\naws_access_key_id = AKIALOG\naws_secret_access_key = logSecretValue0001\n"
               "aws_session_token = logSessionToken0001\n");
    auto previous = log::level();
    log::set_level(log::Level::debug);
    StderrCapture capture;
    {
        CredentialChain chain(
            options_with({{"HOME", home.path().string()},
                          {"AWS_SHARED_CREDENTIALS_FILE", (home.path() / "credentials").string()}}));
        auto c = chain.resolve();
        REQUIRE(c);
        log::debug("credentials " + c->credentials.secret_access_key + " " + c->credentials.session_token);
        log::warn(std::string("Authorization: AWS4-HMAC-SHA256 Credential=AKIALOG/x, Signature=abc"));
    }
    auto text = capture.text();
    log::set_level(previous);
    INFO(text);
    CHECK(text.find("AWS credentials from profile default") != std::string::npos);
    CHECK(text.find("logSecretValue0001") == std::string::npos);
    CHECK(text.find("logSessionToken0001") == std::string::npos);
    CHECK(text.find("Signature=abc") == std::string::npos);
}
