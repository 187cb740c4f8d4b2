// Shared config/credentials files, region and endpoint resolution (pure; no real environment).

#include <tagwarden/aws/config.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden;
using namespace tagwarden::aws;

TEST_CASE("credentials file: sections are profile names, keys lower-cased, values trimmed",
          "[unit][aws][config]") {
    const std::string text = "\xEF\xBB\xBF# a comment\n"
                             "[default]\r\n"
                             "aws_access_key_id = AKIDDEFAULT\r\n"
                             "AWS_SECRET_ACCESS_KEY=secret#with-hash;and;semicolons\n"
                             "; another comment\n"
                             "[ ci ]\n"
                             "  aws_access_key_id : AKIDCI\n"
                             "  aws_secret_access_key = x=y:z\n"
                             "[profile literal]\n"
                             "region = eu-west-1\n";
    auto profiles = parse_profile_file(text, ProfileFileKind::credentials);
    REQUIRE(profiles.size() == 3);
    CHECK(profiles.at("default").get("aws_access_key_id") == "AKIDDEFAULT");
    // No inline comments: botocore's configparser keeps '#' and ';' inside a value.
    CHECK(profiles.at("default").get("aws_secret_access_key") == "secret#with-hash;and;semicolons");
    // ':' separates too, and uniformly indented keys are keys, not continuations.
    CHECK(profiles.at("ci").get("aws_access_key_id") == "AKIDCI");
    CHECK(profiles.at("ci").get("aws_secret_access_key") == "x=y:z");
    // In the credentials file "profile literal" is the name itself.
    CHECK(profiles.count("profile literal") == 1);
}

TEST_CASE("config file: [profile x] and [default]; other sections are not profiles", "[unit][aws][config]") {
    const std::string text =
        "[default]\nregion = us-east-1\n"
        "[profile dev]\nregion=eu-central-1\nrole_arn = arn:aws:iam::123456789012:role/dev\n"
        "source_profile = default\n"
        "s3 =\n  max_concurrent_requests = 10\n  addressing_style = path\n"
        "output = json\n"
        "[dev]\nregion = nowhere\n"
        "[sso-session corp]\nsso_region = us-east-1\n"
        "[services local]\necr =\n  endpoint_url = http://127.0.0.1:1\n"
        "[profile   spaced  ]\nregion = ap-south-1\n";
    auto profiles = parse_profile_file(text, ProfileFileKind::config);
    CHECK(profiles.size() == 3);
    CHECK(profiles.at("default").get("region") == "us-east-1");
    const auto& dev = profiles.at("dev");
    CHECK(dev.get("region") == "eu-central-1"); // [dev] in the config file is not the dev profile
    CHECK(dev.get("role_arn") == "arn:aws:iam::123456789012:role/dev");
    CHECK(dev.get("s3") == "max_concurrent_requests = 10\naddressing_style = path");
    CHECK(dev.get("output") == "json");
    CHECK(profiles.at("spaced").get("region") == "ap-south-1");
    CHECK_FALSE(dev.get("missing"));
}

TEST_CASE("merged shared config: the credentials file wins per key", "[unit][aws][config]") {
    auto config = parse_profile_file("[profile ci]\nregion = eu-west-1\naws_access_key_id = FROMCONFIG\n",
                                     ProfileFileKind::config);
    auto credentials = parse_profile_file("[ci]\naws_access_key_id = FROMCREDS\naws_secret_access_key = s\n",
                                          ProfileFileKind::credentials);
    auto merged = merge_shared_config(config, credentials);
    const auto* ci = merged.find("ci");
    REQUIRE(ci != nullptr);
    CHECK(ci->get("aws_access_key_id") == "FROMCREDS");
    CHECK(ci->get("region") == "eu-west-1");
}

TEST_CASE("region: AWS_REGION, then AWS_DEFAULT_REGION, then the profile", "[unit][aws][config]") {
    auto merged = merge_shared_config(
        parse_profile_file("[default]\nregion = ap-southeast-2\n", ProfileFileKind::config), {});
    CHECK(resolve_region({}, &merged) == "ap-southeast-2");
    CHECK(resolve_region({{"AWS_DEFAULT_REGION", "eu-north-1"}}, &merged) == "eu-north-1");
    CHECK(resolve_region({{"AWS_DEFAULT_REGION", "eu-north-1"}, {"AWS_REGION", "us-west-2"}}, &merged) ==
          "us-west-2");
    CHECK(resolve_region({{"AWS_REGION", ""}}, nullptr) == std::nullopt);
}

TEST_CASE("endpoints: per-service variable, global variable, profile, default", "[unit][aws][config]") {
    CHECK(default_endpoint(k_ecr, "us-east-1") == "https://api.ecr.us-east-1.amazonaws.com");
    CHECK(default_endpoint(k_ecr, "cn-north-1") == "https://api.ecr.cn-north-1.amazonaws.com.cn");
    CHECK(default_endpoint(k_ecr, "us-gov-west-1", true) ==
          "https://api.ecr-fips.us-gov-west-1.amazonaws.com");
    CHECK(default_endpoint(k_sts, "") == "https://sts.amazonaws.com");
    CHECK(default_endpoint(k_sts, "eu-west-1") == "https://sts.eu-west-1.amazonaws.com");
    CHECK(default_endpoint(k_dynamodb, "us-iso-east-1") == "https://dynamodb.us-iso-east-1.c2s.ic.gov");
    CHECK(default_endpoint(k_service_quotas, "us-east-2") == "https://servicequotas.us-east-2.amazonaws.com");

    Environment env{{"AWS_ENDPOINT_URL", "http://127.0.0.1:5000/"},
                    {"AWS_ENDPOINT_URL_SERVICE_QUOTAS", "http://127.0.0.1:6000"}};
    CHECK(resolve_endpoint(k_ecr, "us-east-1", env) == "http://127.0.0.1:5000");
    CHECK(resolve_endpoint(k_service_quotas, "us-east-1", env) == "http://127.0.0.1:6000");
    env["AWS_ENDPOINT_URL_DYNAMODB"] = "http://127.0.0.1:7000";
    CHECK(resolve_endpoint(k_dynamodb, "us-east-1", env) == "http://127.0.0.1:7000");
    env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "TRUE";
    CHECK(resolve_endpoint(k_dynamodb, "us-east-1", env) == "https://dynamodb.us-east-1.amazonaws.com");

    auto merged = merge_shared_config(
        parse_profile_file("[default]\nendpoint_url = http://localhost:4566\n", ProfileFileKind::config), {});
    CHECK(resolve_endpoint(k_sts, "us-east-1", {}, &merged) == "http://localhost:4566");
    CHECK(resolve_endpoint(k_sts, "us-east-1", {{"AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"}}, &merged) ==
          "http://127.0.0.1:1");
    CHECK(resolve_endpoint(k_ecr, "us-east-1", {{"AWS_USE_FIPS_ENDPOINT", "true"}}) ==
          "https://api.ecr-fips.us-east-1.amazonaws.com");
}
