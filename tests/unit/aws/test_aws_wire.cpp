// Timestamps, the minimal XML reader and the STS answers (pure).

#include <tagwarden/aws/sts.hpp>
#include <tagwarden/aws/wire.hpp>
#include <tagwarden/core/log.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace tagwarden;
using namespace tagwarden::aws;

namespace {
long long epoch(Clock::time_point t) {
    return to_epoch_seconds(t);
}
} // namespace

TEST_CASE("ISO 8601 timestamps as AWS, moto and credential processes write them", "[unit][aws][wire]") {
    CHECK(epoch(*parse_iso8601("2026-11-22T01:06:11Z")) == 1795309571);
    CHECK(epoch(*parse_iso8601("2026-11-22T01:06:11.581706Z")) == 1795309571); // moto: microseconds
    CHECK(epoch(*parse_iso8601("2026-11-22T02:06:11+01:00")) == 1795309571);
    CHECK(epoch(*parse_iso8601("2026-11-21T20:06:11-0500")) == 1795309571);
    CHECK(epoch(*parse_iso8601(" 2026-11-22 01:06:11z ")) == 1795309571);
    CHECK(epoch(*parse_iso8601("1970-01-01T00:00:00Z")) == 0);
    CHECK(epoch(*parse_iso8601("2024-02-29T23:59:59Z")) == 1709251199);
    CHECK_FALSE(parse_iso8601("2026-11-22T01:06:11")); // no zone
    CHECK_FALSE(parse_iso8601("2026-13-22T01:06:11Z"));
    CHECK_FALSE(parse_iso8601("yesterday"));
    CHECK(format_iso8601(*parse_iso8601("2026-11-22T01:06:11.9Z")) == "2026-11-22T01:06:11Z");
}

TEST_CASE("epoch-seconds timestamps: integers, fractions, strings", "[unit][aws][wire]") {
    using nlohmann::json;
    auto t = parse_epoch_seconds(json(1795308679.171));
    REQUIRE(t);
    CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count() ==
          1795308679171);
    CHECK(epoch(*parse_epoch_seconds(json(1795308679))) == 1795308679);
    CHECK(epoch(*parse_epoch_seconds(json("1795308679.5"))) == 1795308679);
    CHECK(epoch(*parse_epoch_seconds(json("2026-11-22T01:06:11Z"))) == 1795309571);
    CHECK_FALSE(parse_epoch_seconds(json::object()));
    CHECK_FALSE(parse_epoch_seconds(json("soon")));
}

TEST_CASE("XML: nested paths, prefixes, attributes, entities, CDATA, comments", "[unit][aws][wire]") {
    const std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<!-- leading comment with <Credentials> inside -->
<sts:AssumeRoleResponse xmlns:sts="https://sts.amazonaws.com/doc/2011-06-15/">
  <sts:AssumeRoleResult>
    <SourceIdentity/>
    <Credentials kind="temp">
      <AccessKeyId>
        ASIAEXAMPLE
      </AccessKeyId>
      <SecretAccessKey>a&amp;b&lt;c&#x2F;d&#43;e</SecretAccessKey>
      <SessionToken><![CDATA[tok<en>&raw]]></SessionToken>
      <Expiration>2026-11-22T01:06:11Z</Expiration>
    </Credentials>
  </sts:AssumeRoleResult>
</sts:AssumeRoleResponse>)";
    CHECK(xml_text(xml, {"Credentials", "AccessKeyId"}) == "ASIAEXAMPLE");
    CHECK(xml_text(xml, {"AssumeRoleResult", "Credentials", "SecretAccessKey"}) == "a&b<c/d+e");
    CHECK(xml_text(xml, {"Credentials", "SessionToken"}) == "tok<en>&raw");
    CHECK(xml_text(xml, {"SourceIdentity"}) == "");
    CHECK_FALSE(xml_text(xml, {"Credentials", "Missing"}));
    CHECK_FALSE(xml_text(xml, {"Nope"}));
    CHECK_FALSE(xml_text("<a><b>unterminated", {"a", "b"}));
    CHECK(xml_text("<a><a><b>inner</b></a><b>outer</b></a>", {"a", "b"}) == "inner");
    CHECK(xml_unescape("&#233;&unknown;&") == "\xC3\xA9&unknown;&");
}

TEST_CASE("STS credentials and errors", "[unit][aws][sts]") {
    // The exact shape moto 5 answers (microsecond Expiration, no whitespace).
    const std::string moto =
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIARZPUZDIKGXVMTIQT</AccessKeyId>"
        "<SecretAccessKey>TvhBFdju3ZUusry6WSN5O06OnBfeBJAGnpeV00WY</SecretAccessKey>"
        "<SessionToken>FQoGZXIvYXdzEBYaDtkm/T6yW7Kt+dvgjiGNTappIly==</SessionToken>"
        "<Expiration>2026-11-22T01:51:09.358304Z</Expiration></Credentials>"
        "<AssumedRoleUser><AssumedRoleId>ARO123EXAMPLE123:s</AssumedRoleId></AssumedRoleUser>"
        "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    auto creds = parse_sts_credentials(moto, "test");
    REQUIRE(creds);
    CHECK(creds->credentials.access_key_id == "ASIARZPUZDIKGXVMTIQT");
    CHECK(creds->credentials.session_token == "FQoGZXIvYXdzEBYaDtkm/T6yW7Kt+dvgjiGNTappIly==");
    REQUIRE(creds->expiration);
    CHECK(format_iso8601(*creds->expiration) == "2026-11-22T01:51:09Z");
    // Registered as secrets.
    CHECK(log::redact("key TvhBFdju3ZUusry6WSN5O06OnBfeBJAGnpeV00WY") == "key ***");

    CHECK_FALSE(parse_sts_credentials("<ErrorResponse/>", "test"));

    const std::string error =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
        "<Type>Sender</Type><Code>InvalidIdentityToken</Code>"
        "<Message>Couldn't retrieve verification key from your identity provider</Message>"
        "</Error><RequestId>x</RequestId></ErrorResponse>";
    auto parsed = parse_sts_error(error);
    REQUIRE(parsed);
    CHECK(parsed->code == "InvalidIdentityToken");
    auto e = sts_error(400, error, "AssumeRoleWithWebIdentity");
    CHECK(e.kind == ErrorKind::auth);
    CHECK(e.registry_code == "InvalidIdentityToken");
    CHECK(e.message.find("verification key") != std::string::npos);
    CHECK_FALSE(e.transient);

    auto throttled = sts_error(400,
                               "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message>"
                               "</Error></ErrorResponse>",
                               "AssumeRole");
    CHECK(throttled.transient);
    CHECK(sts_error(503, "", "AssumeRole").transient);
    CHECK(sts_error(403, "not xml", "AssumeRole").kind == ErrorKind::auth);
    CHECK(form_encode({{"RoleArn", "arn:aws:iam::1:role/a b"}, {"X", "+/="}}) ==
          "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b&X=%2B%2F%3D");
}
