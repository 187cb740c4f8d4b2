// Table tests driven by lifecycle vectors: the shared ones built from the ECR documentation's worked examples
// (tests/data/policy/lifecycle-vectors.json, a copy of /work/shared/reference/lifecycle-vectors.json) and
// tagwarden's own for behaviour the examples do not cover (tests/data/policy/tagwarden-vectors.json).
//
// Spec/vector disagreement: ecr-lifecycle-spec.md sections 5.2, 5.3 and 7 name the vectors
// "archive-transition-not-pulled-90d" and "archive-expire-after-365d-in-archive" and document the image
// fields lastRecordedPullTime, storageClass, lastArchivedAt and childDigests, but the shared
// lifecycle-vectors.json has neither vector and uses none of those fields. tagwarden-vectors.json supplies
// both vectors under those names (built from the [EX] policies) plus others that use the fields.

#include <tagwarden/policy/evaluate.hpp>
#include <tagwarden/policy/image_record.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace tagwarden;
using namespace tagwarden::policy;
using nlohmann::json;

namespace {

json load_vectors(const std::string& file) {
    std::ifstream in(std::string(TAGWARDEN_TEST_DATA) + "/policy/" + file);
    REQUIRE(in.good());
    std::stringstream buffer;
    buffer << in.rdbuf();
    return json::parse(buffer.str());
}

// The vectors' image shape -> an `aws ecr describe-images` document, so the describe-images parser is
// exercised too.
std::string describe_images_document(const json& images) {
    json details = json::array();
    for (const auto& image : images) {
        json d;
        d["imageDigest"] = image.at("digest");
        if (!image.at("tags").empty())
            d["imageTags"] = image.at("tags");
        d["imagePushedAt"] = image.at("pushedAt");
        if (image.contains("lastRecordedPullTime"))
            d["lastRecordedPullTime"] = image["lastRecordedPullTime"];
        if (image.contains("lastArchivedAt"))
            d["lastArchivedAt"] = image["lastArchivedAt"];
        if (image.contains("lastActivatedAt"))
            d["lastActivatedAt"] = image["lastActivatedAt"];
        if (image.value("storageClass", "standard") == "archive")
            d["imageStatus"] = "ARCHIVED";
        if (image.contains("imageStatus"))
            d["imageStatus"] = image["imageStatus"];
        if (image.contains("childDigests"))
            d["childDigests"] = image["childDigests"];
        if (image.contains("parentIndexDigests"))
            d["parentIndexDigests"] = image["parentIndexDigests"];
        if (image.contains("subjectDigest"))
            d["subjectManifestDigest"] = image["subjectDigest"];
        if (image.contains("imageManifestMediaType"))
            d["imageManifestMediaType"] = image["imageManifestMediaType"];
        if (image.contains("artifactMediaType"))
            d["artifactMediaType"] = image["artifactMediaType"];
        details.push_back(std::move(d));
    }
    return json{{"imageDetails", details}}.dump();
}

std::set<std::string> strings(const json& list) {
    std::set<std::string> out;
    for (const auto& v : list)
        out.insert(v.get<std::string>());
    return out;
}

void run_vectors(const json& vectors) {
    REQUIRE(vectors.is_array());
    REQUIRE_FALSE(vectors.empty());
    for (const auto& vector : vectors) {
        const std::string name = vector.at("name");
        INFO("vector " << name);
        auto policy = load_policy(vector.at("policy").dump(2));
        if (!policy)
            FAIL(policy.error().message);
        auto images = parse_describe_images(describe_images_document(vector.at("images")));
        if (!images)
            FAIL(images.error().message);
        auto now = parse_time(vector.at("now").get<std::string>());
        REQUIRE(now);
        REQUIRE(images->size() == vector.at("images").size());

        auto decisions = evaluate(*policy, *images, *now);
        REQUIRE(decisions.size() == images->size());

        std::map<std::string, std::string> id_of;
        for (const auto& image : vector.at("images"))
            id_of[image.at("digest")] = image.at("id");

        std::set<std::string> expired_ids, expired_digests, transitioned_ids, ambiguous_ids;
        for (std::size_t i = 0; i < images->size(); ++i) {
            const auto& id = id_of.at((*images)[i].digest);
            if (decisions[i].action == ImageAction::expire) {
                expired_ids.insert(id);
                expired_digests.insert((*images)[i].digest);
            }
            if (decisions[i].action == ImageAction::transition)
                transitioned_ids.insert(id);
            if (decisions[i].ambiguous)
                ambiguous_ids.insert(id);
        }
        CHECK(expired_digests == strings(vector.at("expected_expired")));
        CHECK(expired_ids == strings(vector.at("expected_expired_ids")));
        CHECK(transitioned_ids == strings(vector.value("expected_transitioned_ids", json::array())));
        CHECK(ambiguous_ids == strings(vector.value("expected_ambiguous_ids", json::array())));

        if (vector.contains("expected_rule_priority")) {
            for (const auto& [id, priority] : vector["expected_rule_priority"].items()) {
                INFO("image " << id);
                std::optional<std::int64_t> actual;
                bool found = false;
                for (std::size_t i = 0; i < images->size(); ++i)
                    if (id_of.at((*images)[i].digest) == id) {
                        actual = decisions[i].rule_priority;
                        found = true;
                    }
                REQUIRE(found);
                if (priority.is_null())
                    CHECK_FALSE(actual.has_value());
                else
                    CHECK(actual == std::optional<std::int64_t>(priority.get<std::int64_t>()));
            }
        }
    }
}

} // namespace

TEST_CASE("lifecycle vectors from the ECR documentation", "[unit][policy]") {
    auto vectors = load_vectors("lifecycle-vectors.json");
    CHECK(vectors.size() == 12);
    run_vectors(vectors);
}

TEST_CASE("tagwarden's own lifecycle vectors", "[unit][policy]") {
    auto vectors = load_vectors("tagwarden-vectors.json");
    CHECK(vectors.size() >= 20);
    run_vectors(vectors);
}

TEST_CASE("documented examples identify the claiming rule", "[unit][policy]") {
    auto vectors = load_vectors("lifecycle-vectors.json");
    auto find = [&](const std::string& name) {
        for (const auto& v : vectors)
            if (v.at("name") == name)
                return v;
        FAIL("no vector " << name);
        return json{};
    };
    auto run = [&](const json& v) {
        auto policy = load_policy(v.at("policy").dump());
        REQUIRE(policy);
        auto images = parse_describe_images(describe_images_document(v.at("images")));
        REQUIRE(images);
        auto now = parse_time(v.at("now").get<std::string>());
        REQUIRE(now);
        std::map<std::string, ImageDecision> by_id;
        auto decisions = evaluate(*policy, *images, *now);
        for (std::size_t i = 0; i < images->size(); ++i)
            by_id[v.at("images")[i].at("id")] = decisions[i];
        return by_id;
    };

    SECTION("all-images-example-B: A by rule 1, B by rule 2, D by rule 3; C and E selected but kept") {
        auto d = run(find("all-images-example-B"));
        CHECK(d["A"].rule_priority == 1);
        CHECK(d["B"].rule_priority == 2);
        CHECK(d["D"].rule_priority == 3);
        CHECK(d["C"].selected_by == 1);
        CHECK(d["E"].selected_by == 2);
        CHECK(d["C"].action == ImageAction::keep);
        CHECK(d["E"].action == ImageAction::keep);
    }
    SECTION("multiple-rules-example-A: B is seen by rule 1 and so never expired by rule 2") {
        auto d = run(find("multiple-rules-example-A"));
        CHECK(d["A"].rule_priority == 1);
        CHECK(d["B"].selected_by == 1);
        CHECK(d["B"].action == ImageAction::keep);
        CHECK(d["C"].selected_by == 2);
    }
}
