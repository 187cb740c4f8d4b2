// ECR: registry host detection, tag mutability with exclusion filters, response shapes, pagination,
// absent lifecycle policy, PutImage outcomes, token caching (scripted transport).

#include "aws_test_support.hpp"

#include <tagwarden/aws/ecr.hpp>
#include <tagwarden/aws/wire.hpp>
#include <tagwarden/core/log.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace tagwarden;
using namespace tagwarden::aws;
using namespace tagwarden::test;
using nlohmann::json;

namespace {

std::string target_of(const SentRequest& r) {
    auto t = r.headers.get("X-Amz-Target").value_or("");
    return t.substr(t.find('.') + 1);
}

} // namespace

TEST_CASE("ECR registry hosts: account, region, partition, FIPS, dual-stack", "[unit][aws][ecr]") {
    auto r = parse_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com");
    REQUIRE(r);
    CHECK(r->account_id == "123456789012");
    CHECK(r->region == "us-east-1");
    CHECK_FALSE(r->fips);
    CHECK(r->api_endpoint() == "https://api.ecr.us-east-1.amazonaws.com");

    auto cn = parse_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn:443");
    REQUIRE(cn);
    CHECK(cn->region == "cn-north-1");
    CHECK(cn->api_endpoint() == "https://api.ecr.cn-north-1.amazonaws.com.cn");

    auto fips = parse_ecr_host("https://123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/v2/");
    REQUIRE(fips);
    CHECK(fips->fips);
    CHECK(fips->region == "us-gov-west-1");
    CHECK(fips->api_endpoint() == "https://api.ecr-fips.us-gov-west-1.amazonaws.com");

    auto dual = parse_ecr_host("123456789012.dkr-ecr.eu-west-1.on.aws");
    REQUIRE(dual);
    CHECK(dual->dual_stack);
    CHECK(dual->api_endpoint() == "https://ecr.eu-west-1.api.aws");

    CHECK(parse_ecr_host("123456789012.DKR.ECR.US-WEST-2.AMAZONAWS.COM")->region == "us-west-2");
    CHECK(parse_ecr_host("123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov")->dns_suffix == "sc2s.sgov.gov");
    CHECK(parse_ecr_host("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov"));
    CHECK(parse_ecr_host("123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk"));
    CHECK(parse_ecr_host("123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov"));
    CHECK(parse_ecr_host("123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu"));

    CHECK_FALSE(parse_ecr_host("public.ecr.aws"));
    CHECK_FALSE(parse_ecr_host("12345678901.dkr.ecr.us-east-1.amazonaws.com")); // 11 digits
    CHECK_FALSE(parse_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example"));
    CHECK_FALSE(parse_ecr_host("evil123456789012.dkr.ecr.us-east-1.amazonaws.com"));
    CHECK_FALSE(parse_ecr_host("registry-1.docker.io"));
    CHECK_FALSE(parse_ecr_host("127.0.0.1:5000"));
}

TEST_CASE("tag mutability with exclusion filters", "[unit][aws][ecr]") {
    CHECK(wildcard_match("latest", "latest"));
    CHECK_FALSE(wildcard_match("latest", "latest2"));
    CHECK(wildcard_match("dev-*", "dev-1.2"));
    CHECK(wildcard_match("dev-*", "dev-"));
    CHECK_FALSE(wildcard_match("dev-*", "prod-dev-1"));
    CHECK(wildcard_match("v*.beta", "v1.2.beta"));
    CHECK_FALSE(wildcard_match("v*.beta", "v1.2.beta1"));
    CHECK(wildcard_match("*", ""));
    CHECK(wildcard_match("a*b*c", "axxbyyc"));
    CHECK_FALSE(wildcard_match("a.b", "axb")); // '.' is literal

    auto repo = parse_repository(json::parse(R"({
        "repositoryArn": "arn:aws:ecr:us-east-1:123456789012:repository/team/app",
        "registryId": "123456789012", "repositoryName": "team/app",
        "repositoryUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app",
        "createdAt": 1795308679.235,
        "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "latest"},
                                               {"filterType": "WILDCARD", "filter": "dev-*"}],
        "imageScanningConfiguration": {"scanOnPush": true},
        "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:k"}})"));
    REQUIRE(repo);
    CHECK(repo->tag_mutability == TagMutability::immutable_with_exclusion);
    CHECK(repo->exclusion_filters.size() == 2);
    CHECK(repo->scan_on_push);
    CHECK(repo->encryption_type == "KMS");
    CHECK_FALSE(repo->tag_is_immutable("latest"));
    CHECK_FALSE(repo->tag_is_immutable("dev-7"));
    CHECK(repo->tag_is_immutable("1.4.2"));
    repo->tag_mutability = TagMutability::mutable_with_exclusion;
    CHECK(repo->tag_is_immutable("dev-7"));
    CHECK_FALSE(repo->tag_is_immutable("1.4.2"));
    repo->tag_mutability = TagMutability::immutable;
    CHECK(repo->tag_is_immutable("latest"));
    repo->tag_mutability = TagMutability::mutable_tags;
    CHECK_FALSE(repo->tag_is_immutable("1.4.2"));
    CHECK_FALSE(parse_repository(json{{"repositoryName", "x"}, {"imageTagMutability", "SOMETIMES"}}));
    CHECK(to_string(TagMutability::mutable_with_exclusion) == "MUTABLE_WITH_EXCLUSION");
}

TEST_CASE("image details: fractional push times, absent pull time", "[unit][aws][ecr]") {
    auto d = parse_image_detail(json::parse(R"({"registryId": "123456789012", "repositoryName": "team/app",
        "imageDigest": "sha256:abc", "imageTags": ["1.0", "prod-1"], "imageSizeInBytes": 74240,
        "imagePushedAt": 1795308679.5, "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        "imageStatus": "ACTIVE"})"));
    REQUIRE(d);
    CHECK(d->tags == std::vector<std::string>{"1.0", "prod-1"});
    CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(d->pushed_at.time_since_epoch()).count() ==
          1795308679500);
    CHECK_FALSE(d->last_pulled);
    CHECK(d->size_bytes == 74240);
    auto pulled = parse_image_detail(
        json{{"imageDigest", "sha256:x"}, {"imagePushedAt", 1}, {"lastRecordedPullTime", 2}});
    REQUIRE(pulled);
    CHECK(to_epoch_seconds(*pulled->last_pulled) == 2);
    CHECK_FALSE(parse_image_detail(json{{"imageDigest", "sha256:x"}, {"imagePushedAt", "later"}}));
    // Archive and restore times (issue 14: the live path dropped them, so an archived image was aged from
    // its push time by sinceImageTransitioned).
    auto archived = parse_image_detail(json{{"imageDigest", "sha256:x"}, {"imagePushedAt", 1}, {"imageStatus", "ARCHIVED"},
                                            {"lastArchivedAt", 5}, {"lastActivatedAt", 3}});
    REQUIRE(archived);
    CHECK(to_epoch_seconds(*archived->last_archived) == 5);
    CHECK(to_epoch_seconds(*archived->last_activated) == 3);
    CHECK_FALSE(parse_image_detail(json{{"imageDigest", "sha256:x"}, {"imagePushedAt", 1}, {"lastArchivedAt", "x"}}));
}

TEST_CASE("GetAuthorizationToken: decoded, registered as secret, cached until expiry", "[unit][aws][ecr]") {
    int calls = 0;
    long long expires = to_epoch_seconds(Clock::now() + std::chrono::hours(12));
    auto transport = std::make_shared<FakeTransport>([&](const SentRequest& r) -> Result<http::Response> {
        ++calls;
        CHECK(json::parse(r.body) == json{{"registryIds", {"123456789012"}}});
        // base64("AWS:ecrPasswordValue0001")
        return response(200,
                        json{{"authorizationData",
                              {{{"authorizationToken", "QVdTOmVjclBhc3N3b3JkVmFsdWUwMDAx"},
                                {"expiresAt", expires + 0.25},
                                {"proxyEndpoint", "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"}}}}}
                            .dump());
    });
    EcrClient ecr(ecr_api_with(transport), "123456789012");
    auto a = ecr.get_authorization_token();
    REQUIRE(a);
    CHECK(a->username == "AWS");
    CHECK(a->password == "ecrPasswordValue0001");
    CHECK(to_epoch_seconds(a->expires_at) == expires);
    CHECK(log::redact("Basic QVdTOmVjclBhc3N3b3JkVmFsdWUwMDAx ecrPasswordValue0001") == "Basic *** ***");
    REQUIRE(ecr.get_authorization_token());
    CHECK(calls == 1);

    // moto answers a fixed expiresAt in 2015: such a token is never served from the cache.
    auto stale = std::make_shared<FakeTransport>([&](const SentRequest&) -> Result<http::Response> {
        ++calls;
        return response(200,
                        R"({"authorizationData":[{"authorizationToken":"QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu",
                                 "expiresAt":1420070400.0,"proxyEndpoint":"https://x"}]})");
    });
    EcrClient moto_like(ecr_api_with(stale));
    REQUIRE(moto_like.get_authorization_token());
    REQUIRE(moto_like.get_authorization_token());
    CHECK(calls == 3);
    CHECK_FALSE(parse_authorization_data(json{{"authorizationToken", "bm8tY29sb24="}})); // "no-colon"
}

TEST_CASE("DescribeImages and ListImages follow nextToken", "[unit][aws][ecr]") {
    auto transport = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        auto in = json::parse(r.body);
        std::string token = in.value("nextToken", "");
        if (target_of(r) == "DescribeImages") {
            CHECK(in["maxResults"] == 1000);
            CHECK(in["filter"] == json{{"tagStatus", "ANY"}});
            if (token.empty())
                return response(
                    200,
                    R"({"imageDetails":[{"imageDigest":"sha256:1","imagePushedAt":1}],"nextToken":"p2"})");
            CHECK(token == "p2");
            return response(200, R"({"imageDetails":[{"imageDigest":"sha256:2","imagePushedAt":2.5}]})");
        }
        if (token.empty())
            return response(200,
                            R"({"imageIds":[{"imageDigest":"sha256:1","imageTag":"a"}],"nextToken":"n"})");
        return response(
            200, R"({"imageIds":[{"imageDigest":"sha256:1","imageTag":"b"},{"imageDigest":"sha256:2"}]})");
    });
    EcrClient ecr(ecr_api_with(transport));
    DescribeImagesOptions options;
    options.tag_status = "ANY";
    auto images = ecr.describe_images("team/app", options);
    REQUIRE(images);
    REQUIRE(images->size() == 2);
    CHECK((*images)[1].digest == "sha256:2");
    auto ids = ecr.list_images("team/app");
    REQUIRE(ids);
    REQUIRE(ids->size() == 3);
    CHECK((*ids)[2].tag.empty());
    CHECK(transport->requests().size() == 4);

    // With image ids there is no maxResults and no paging.
    auto by_id = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        auto in = json::parse(r.body);
        CHECK_FALSE(in.contains("maxResults"));
        CHECK(in["imageIds"] == json::array({{{"imageTag", "1.0"}}}));
        return response(200, R"({"imageDetails":[],"nextToken":"ignored"})");
    });
    EcrClient ecr2(ecr_api_with(by_id));
    DescribeImagesOptions selected;
    selected.image_ids = {{"", "1.0"}};
    REQUIRE(ecr2.describe_images("team/app", selected));
    CHECK(by_id->requests().size() == 1);
}

TEST_CASE("GetLifecyclePolicy: an absent policy is nullopt, not an error", "[unit][aws][ecr]") {
    bool has_policy = false;
    auto transport = std::make_shared<FakeTransport>([&](const SentRequest&) -> Result<http::Response> {
        if (!has_policy)
            return response(
                400,
                R"({"__type":"LifecyclePolicyNotFoundException","message":"Lifecycle policy does not exist"})");
        return response(200, R"({"registryId":"123456789012","repositoryName":"team/app",
                                 "lifecyclePolicyText":"{\"rules\":[]}","lastEvaluatedAt":1795308679})");
    });
    EcrClient ecr(ecr_api_with(transport));
    auto none = ecr.get_lifecycle_policy("team/app");
    REQUIRE(none);
    CHECK_FALSE(*none);
    has_policy = true;
    auto some = ecr.get_lifecycle_policy("team/app");
    REQUIRE(some);
    REQUIRE(*some);
    CHECK((*some)->text == "{\"rules\":[]}");
    CHECK(to_epoch_seconds(*(*some)->last_evaluated_at) == 1795308679);

    auto missing_repo = std::make_shared<FakeTransport>([](const SentRequest&) -> Result<http::Response> {
        return response(400, R"({"__type":"RepositoryNotFoundException","message":"no repo"})");
    });
    EcrClient ecr2(ecr_api_with(missing_repo));
    auto err = ecr2.get_lifecycle_policy("team/app");
    REQUIRE_FALSE(err);
    CHECK(err.error().kind == ErrorKind::not_found);
}

TEST_CASE("lifecycle preview: start, pages, polling until not IN_PROGRESS", "[unit][aws][ecr]") {
    int gets = 0;
    auto transport = std::make_shared<FakeTransport>([&](const SentRequest& r) -> Result<http::Response> {
        auto in = json::parse(r.body);
        if (target_of(r) == "StartLifecyclePolicyPreview") {
            CHECK(in["lifecyclePolicyText"] == "{\"rules\":[]}");
            return response(200, R"({"status":"IN_PROGRESS"})");
        }
        ++gets;
        if (gets == 1)
            return response(200, R"({"status":"IN_PROGRESS"})");
        if (!in.contains("nextToken"))
            return response(200, R"({"status":"COMPLETE","nextToken":"t","previewResults":[
                {"imageDigest":"sha256:1","imageTags":["dev-1"],"imagePushedAt":1.5,
                 "action":{"type":"EXPIRE"},"appliedRulePriority":2,"storageClass":"STANDARD"}],
                "summary":{"expiringImageTotalCount":2}})");
        return response(200, R"({"status":"COMPLETE","previewResults":[
                {"imageDigest":"sha256:2","action":{"type":"TRANSITION","targetStorageClass":"ARCHIVE"},
                 "appliedRulePriority":3}]})");
    });
    EcrClient ecr(ecr_api_with(transport));
    auto status = ecr.start_lifecycle_policy_preview("team/app", "{\"rules\":[]}");
    REQUIRE(status);
    CHECK(*status == "IN_PROGRESS");
    auto preview = ecr.wait_lifecycle_policy_preview("team/app", {}, std::chrono::seconds(5),
                                                     std::chrono::milliseconds(1));
    REQUIRE(preview);
    CHECK(preview->status == "COMPLETE");
    REQUIRE(preview->results.size() == 2);
    CHECK(preview->results[0].action == "EXPIRE");
    CHECK(preview->results[0].applied_rule_priority == 2);
    CHECK(preview->results[1].target_storage_class == "ARCHIVE");
    CHECK(preview->expiring_total == 2);
}

TEST_CASE("PutImage: created, unchanged (same manifest), immutable tag, quota", "[unit][aws][ecr]") {
    const std::string manifest =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
    std::string mode;
    auto transport = std::make_shared<FakeTransport>([&](const SentRequest& r) -> Result<http::Response> {
        auto in = json::parse(r.body);
        if (target_of(r) == "BatchGetImage")
            return response(200, json{{"images",
                                       {{{"imageId", {{"imageDigest", "sha256:d"}, {"imageTag", "1.0"}}},
                                         {"imageManifest", mode == "same" ? manifest : "{}"}}}},
                                      {"failures", json::array()}}
                                     .dump());
        CHECK(in["imageManifestMediaType"] == "application/vnd.oci.image.manifest.v1+json");
        CHECK(in["imageTag"] == "1.0");
        if (mode == "created")
            return response(200, R"({"image":{"imageId":{"imageDigest":"sha256:d","imageTag":"1.0"}}})");
        if (mode == "immutable")
            return response(400, R"({"__type":"ImageTagAlreadyExistsException","message":"tag exists"})");
        if (mode == "quota")
            return response(
                400,
                R"({"__type":"LimitExceededException","message":"maximum allowed number of images which is '10000'"})");
        return response(400, R"({"__type":"ImageAlreadyExistsException","message":"already pushed"})");
    });
    EcrClient ecr(ecr_api_with(transport));
    auto put = [&] {
        return ecr.put_image("team/app", manifest, "application/vnd.oci.image.manifest.v1+json", "1.0");
    };
    mode = "created";
    auto created = put();
    REQUIRE(created);
    CHECK_FALSE(created->unchanged);
    CHECK(created->id.digest == "sha256:d");
    mode = "same";
    auto same = put();
    REQUIRE(same);
    CHECK(same->unchanged);
    mode = "other";
    auto other = put();
    REQUIRE_FALSE(other);
    CHECK(other.error().kind == ErrorKind::tag_conflict);
    mode = "immutable";
    auto immutable = put();
    REQUIRE_FALSE(immutable);
    CHECK(immutable.error().kind == ErrorKind::tag_conflict);
    CHECK(immutable.error().registry_code == "ImageTagAlreadyExistsException");
    mode = "quota";
    auto quota = put();
    REQUIRE_FALSE(quota);
    CHECK(quota.error().registry_code == "LimitExceededException");
    CHECK(quota.error().message.find("L-03A36CE1") != std::string::npos);
}

TEST_CASE("BatchGetImage and BatchDeleteImage report per-image failures", "[unit][aws][ecr]") {
    auto transport = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        if (target_of(r) == "BatchDeleteImage")
            return response(200, R"({"imageIds":[{"imageDigest":"sha256:1","imageTag":"a"}],
                "failures":[{"imageId":{"imageTag":"zz"},"failureCode":"ImageNotFound","failureReason":"Requested image not found"}]})");
        CHECK(json::parse(r.body)["acceptedMediaTypes"] ==
              json::array({"application/vnd.oci.image.manifest.v1+json"}));
        return response(
            200, R"({"images":[{"imageId":{"imageDigest":"sha256:1","imageTag":"a"},"imageManifest":"{}",
                "imageManifestMediaType":"application/vnd.oci.image.manifest.v1+json"}],
                "failures":[{"imageId":{"imageTag":"nope"},"failureCode":"ImageNotFound","failureReason":"x"}]})");
    });
    EcrClient ecr(ecr_api_with(transport));
    auto got = ecr.batch_get_image("team/app", {{"", "a"}, {"", "nope"}},
                                   {"application/vnd.oci.image.manifest.v1+json"});
    REQUIRE(got);
    CHECK(got->images.size() == 1);
    REQUIRE(got->failures.size() == 1);
    CHECK(got->failures[0].code == "ImageNotFound");
    CHECK(got->failures[0].image.tag == "nope");
    auto deleted = ecr.batch_delete_image("team/app", {{"", "a"}, {"", "zz"}});
    REQUIRE(deleted);
    CHECK(deleted->deleted.size() == 1);
    CHECK(deleted->failures.at(0).image.tag == "zz");
}
