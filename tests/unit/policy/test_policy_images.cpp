#include <tagwarden/policy/image_record.hpp>
#include <tagwarden/policy/time.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden;
using namespace tagwarden::policy;
using std::chrono::microseconds;

namespace {

const std::string k_digest_a = "sha256:" + std::string(64, 'a');
const std::string k_digest_b = "sha256:" + std::string(64, 'b');

TimePoint at(long long epoch_micros) {
    return TimePoint{microseconds{epoch_micros}};
}

} // namespace

TEST_CASE("time parsing", "[unit][policy]") {
    constexpr long long k_2025_06_15_noon = 1749988800LL * 1'000'000;
    SECTION("ISO 8601 forms") {
        CHECK(parse_time("2025-06-15T12:00:00Z").value() == at(k_2025_06_15_noon));
        CHECK(parse_time("2025-06-15T14:00:00+02:00").value() == at(k_2025_06_15_noon));
        CHECK(parse_time("2025-06-15T07:30:00-0430").value() == at(k_2025_06_15_noon));
        CHECK(parse_time("2025-06-15 12:00:00").value() == at(k_2025_06_15_noon));
        CHECK(parse_time("2025-06-15T12:00:00.123456+00:00").value() == at(k_2025_06_15_noon + 123456));
        CHECK(parse_time("2025-06-15T12:00:00.5Z").value() == at(k_2025_06_15_noon + 500000));
        CHECK(parse_time("2025-06-15").value() == at(k_2025_06_15_noon - 12LL * 3600 * 1'000'000));
    }
    SECTION("epoch seconds, also fractional") {
        CHECK(parse_time("1749988800").value() == at(k_2025_06_15_noon));
        CHECK(parse_time("1749988800.25").value() == at(k_2025_06_15_noon + 250000));
        CHECK(time_from_epoch_seconds(1749988800.5).value() == at(k_2025_06_15_noon + 500000));
    }
    SECTION("rejects malformed times with a hint") {
        for (const char* bad : {"", "yesterday", "2025-13-01", "2025-02-30T00:00:00Z", "2025-06-15T25:00:00Z",
                                "2025-06-15T12:00:00Zjunk", "2025-06-15T12", "-5"}) {
            INFO(bad);
            auto r = parse_time(bad);
            REQUIRE_FALSE(r);
            CHECK(r.error().kind == ErrorKind::invalid_input);
            CHECK_THAT(r.error().message, Catch::Contains("ISO 8601"));
        }
    }
    SECTION("formats back to UTC ISO 8601") {
        CHECK(format_time(at(k_2025_06_15_noon)) == "2025-06-15T12:00:00Z");
        CHECK(format_time(at(k_2025_06_15_noon + 1500)) == "2025-06-15T12:00:00.001500Z");
    }
}

TEST_CASE("describe-images documents", "[unit][policy]") {
    SECTION("wire form: epoch seconds, all fields") {
        std::string doc = R"({"imageDetails": [
          {"registryId": "123456789012", "repositoryName": "app", "imageDigest": ")" +
                          k_digest_a + R"(",
           "imageTags": ["1.0-dev", "1.0-prod"], "imageSizeInBytes": 1234,
           "imagePushedAt": 1749988800.5, "lastRecordedPullTime": 1749992400,
           "imageManifestMediaType": "application/vnd.oci.image.index.v1+json",
           "artifactMediaType": "application/vnd.oci.image.config.v1+json",
           "imageStatus": "ARCHIVED", "lastArchivedAt": 1749996000, "lastActivatedAt": 1749990000},
          {"imageDigest": ")" +
                          k_digest_b + R"(", "imagePushedAt": "2025-06-15T12:00:00.000000+00:00",
           "subjectManifestDigest": ")" +
                          k_digest_a + R"("}
        ], "nextToken": null})";
        auto images = parse_describe_images(doc);
        INFO((images ? "" : images.error().message));
        REQUIRE(images);
        REQUIRE(images->size() == 2);
        const auto& a = (*images)[0];
        CHECK(a.digest == k_digest_a);
        CHECK(a.tags == std::vector<std::string>{"1.0-dev", "1.0-prod"});
        CHECK(a.pushed_at == at(1749988800500000));
        CHECK(a.last_pulled_at == at(1749992400LL * 1'000'000));
        CHECK(a.status == ImageStatus::archived);
        CHECK(a.storage_class() == StorageClass::archive);
        CHECK(a.transitioned_at == at(1749996000LL * 1'000'000));
        CHECK(a.last_activated_at == at(1749990000LL * 1'000'000));
        CHECK(a.is_index());
        CHECK(a.artifact_media_type == "application/vnd.oci.image.config.v1+json");
        const auto& b = (*images)[1];
        CHECK(b.tags.empty());
        CHECK_FALSE(b.tagged());
        CHECK(b.status == ImageStatus::active);
        CHECK(b.storage_class() == StorageClass::standard);
        CHECK_FALSE(b.last_pulled_at);
        CHECK(b.subject_digest == k_digest_a);
        CHECK_FALSE(b.is_index());
    }
    SECTION("a bare array of image details and the childDigests extension") {
        auto images =
            parse_describe_images(R"([{"imageDigest": ")" + k_digest_a +
                                  R"(", "imagePushedAt": 1, "childDigests": [")" + k_digest_b + R"("]}])");
        REQUIRE(images);
        CHECK((*images)[0].child_digests == std::vector<std::string>{k_digest_b});
        CHECK((*images)[0].is_index());
    }
    SECTION("ACTIVATING images are in no storage class") {
        auto images = parse_describe_images(R"({"imageDetails": [{"imageDigest": ")" + k_digest_a +
                                            R"(", "imagePushedAt": 1, "imageStatus": "ACTIVATING"}]})");
        REQUIRE(images);
        CHECK_FALSE((*images)[0].storage_class());
    }
    SECTION("errors name the entry and the field") {
        auto expect_error = [](const std::string& doc, const std::string& text) {
            auto r = parse_describe_images(doc);
            REQUIRE_FALSE(r);
            CHECK(r.error().kind == ErrorKind::invalid_input);
            CHECK_THAT(r.error().message, Catch::Contains(text));
        };
        expect_error("{", "not valid JSON");
        expect_error(R"({"images": []})", "imageDetails");
        expect_error(R"({"imageDetails": [{"imagePushedAt": 1}]})", "imageDetails[0] imageDigest");
        expect_error(R"({"imageDetails": [{"imageDigest": "sha256:abc", "imagePushedAt": 1}]})",
                     "imageDetails[0] imageDigest");
        expect_error(R"({"imageDetails": [{"imageDigest": ")" + k_digest_a + R"("}]})", "imagePushedAt");
        expect_error(R"({"imageDetails": [{"imageDigest": ")" + k_digest_a +
                         R"(", "imagePushedAt": "last tuesday"}]})",
                     "imagePushedAt");
        expect_error(R"({"imageDetails": [{"imageDigest": ")" + k_digest_a +
                         R"(", "imagePushedAt": 1, "imageStatus": "GONE"}]})",
                     "imageStatus");
        expect_error(R"({"imageDetails": [{"imageDigest": ")" + k_digest_a + R"(", "imagePushedAt": 1}, )" +
                         R"({"imageDigest": ")" + k_digest_a + R"(", "imagePushedAt": 2}]})",
                     "listed twice");
    }
}

TEST_CASE("effective push and pull times", "[unit][policy]") {
    ImageRecord image;
    image.pushed_at = at(100);
    CHECK(image.effective_pushed_at() == at(100));
    CHECK(image.effective_pulled_at() == at(100));
    image.last_pulled_at = at(200);
    CHECK(image.effective_pulled_at() == at(200));
    SECTION("a restore moves both to the activation time unless pulled since") {
        image.last_activated_at = at(300);
        CHECK(image.effective_pushed_at() == at(300));
        CHECK(image.effective_pulled_at() == at(300));
        image.last_pulled_at = at(400);
        CHECK(image.effective_pulled_at() == at(400));
    }
}
