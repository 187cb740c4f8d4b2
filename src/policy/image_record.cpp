#include <tagwarden/policy/image_record.hpp>

#include <tagwarden/core/digest.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_set>

namespace tagwarden::policy {

using nlohmann::json;

bool ImageRecord::is_index() const {
    return media_type == "application/vnd.oci.image.index.v1+json" ||
           media_type == "application/vnd.docker.distribution.manifest.list.v2+json" ||
           !child_digests.empty();
}

std::optional<StorageClass> ImageRecord::storage_class() const {
    switch (status) {
    case ImageStatus::active:
        return StorageClass::standard;
    case ImageStatus::archived:
        return StorageClass::archive;
    case ImageStatus::activating:
        return std::nullopt;
    }
    return std::nullopt;
}

TimePoint ImageRecord::effective_pushed_at() const {
    if (last_activated_at && *last_activated_at > pushed_at)
        return *last_activated_at;
    return pushed_at;
}

TimePoint ImageRecord::effective_pulled_at() const {
    TimePoint base = effective_pushed_at();
    if (last_pulled_at && *last_pulled_at > base)
        return *last_pulled_at;
    return base;
}

namespace {

std::unexpected<Error> bad_entry(std::size_t index, std::string_view digest, const std::string& field,
                                 const std::string& why) {
    std::string where = "imageDetails[" + std::to_string(index) + "]";
    if (!digest.empty())
        where += " (" + std::string(digest) + ")";
    return fail(ErrorKind::invalid_input,
                "invalid describe-images document: " + where + " " + field + ": " + why);
}

Result<TimePoint> parse_timestamp(const json& value) {
    if (value.is_number())
        return time_from_epoch_seconds(value.get<double>());
    if (value.is_string())
        return parse_time(value.get<std::string>());
    return fail(ErrorKind::invalid_input,
                "expected epoch seconds or an ISO 8601 string, got " + value.dump());
}

Result<std::optional<TimePoint>> optional_timestamp(const json& entry, const char* key) {
    auto it = entry.find(key);
    if (it == entry.end() || it->is_null())
        return std::optional<TimePoint>{};
    auto t = parse_timestamp(*it);
    if (!t)
        return std::unexpected(t.error());
    return std::optional<TimePoint>{*t};
}

Result<std::vector<std::string>> digest_list(const json& entry, const char* key) {
    std::vector<std::string> out;
    auto it = entry.find(key);
    if (it == entry.end() || it->is_null())
        return out;
    if (!it->is_array())
        return fail(ErrorKind::invalid_input, "expected an array of digests");
    for (const auto& d : *it) {
        if (!d.is_string() || !Digest::parse(d.get<std::string>()))
            return fail(ErrorKind::invalid_input, "not a digest: " + d.dump());
        out.push_back(d.get<std::string>());
    }
    return out;
}

std::string optional_string(const json& entry, const char* key) {
    auto it = entry.find(key);
    if (it == entry.end() || !it->is_string())
        return {};
    return it->get<std::string>();
}

} // namespace

Result<std::vector<ImageRecord>> parse_describe_images(std::string_view text) {
    json root;
    try {
        root = json::parse(text);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large
        return fail(ErrorKind::invalid_input,
                    std::string("invalid describe-images document: not valid JSON: ") + e.what());
    }
    const json* details = nullptr;
    if (root.is_object()) {
        auto it = root.find("imageDetails");
        if (it == root.end() || !it->is_array())
            return fail(
                ErrorKind::invalid_input,
                "invalid describe-images document: expected {\"imageDetails\": [...]} as printed by "
                "`aws ecr describe-images --repository-name REPO --filter imageStatus=ANY --output json`");
        details = &*it;
    } else if (root.is_array()) {
        details = &root;
    } else {
        return fail(ErrorKind::invalid_input,
                    "invalid describe-images document: expected {\"imageDetails\": [...]}, got " +
                        std::string(root.type_name()));
    }

    std::vector<ImageRecord> images;
    images.reserve(details->size());
    std::unordered_set<std::string> seen;
    for (std::size_t i = 0; i < details->size(); ++i) {
        const json& entry = (*details)[i];
        if (!entry.is_object())
            return bad_entry(i, "", "", "expected an object, got " + std::string(entry.type_name()));
        ImageRecord image;
        auto digest_it = entry.find("imageDigest");
        if (digest_it == entry.end() || !digest_it->is_string())
            return bad_entry(i, "", "imageDigest", "missing or not a string");
        image.digest = digest_it->get<std::string>();
        if (auto d = Digest::parse(image.digest); !d)
            return bad_entry(i, "", "imageDigest", d.error().message);
        if (!seen.insert(image.digest).second)
            return bad_entry(i, image.digest, "imageDigest",
                             "listed twice; DescribeImages returns one entry per digest with all its tags");

        if (auto tags = entry.find("imageTags"); tags != entry.end() && !tags->is_null()) {
            if (!tags->is_array())
                return bad_entry(i, image.digest, "imageTags", "expected an array of strings");
            for (const auto& tag : *tags) {
                if (!tag.is_string())
                    return bad_entry(i, image.digest, "imageTags", "expected strings, got " + tag.dump());
                image.tags.push_back(tag.get<std::string>());
            }
        }

        auto pushed = entry.find("imagePushedAt");
        if (pushed == entry.end() || pushed->is_null())
            return bad_entry(i, image.digest, "imagePushedAt", "missing; every image needs its push time");
        auto pushed_at = parse_timestamp(*pushed);
        if (!pushed_at)
            return bad_entry(i, image.digest, "imagePushedAt", pushed_at.error().message);
        image.pushed_at = *pushed_at;

        struct OptionalTime {
            const char* key;
            std::optional<TimePoint>* target;
        };
        for (auto [key, target] : {OptionalTime{"lastRecordedPullTime", &image.last_pulled_at},
                                   OptionalTime{"lastArchivedAt", &image.transitioned_at},
                                   OptionalTime{"lastActivatedAt", &image.last_activated_at}}) {
            auto t = optional_timestamp(entry, key);
            if (!t)
                return bad_entry(i, image.digest, key, t.error().message);
            *target = *t;
        }

        std::string status = optional_string(entry, "imageStatus");
        if (status.empty() || status == "ACTIVE")
            image.status = ImageStatus::active;
        else if (status == "ARCHIVED")
            image.status = ImageStatus::archived;
        else if (status == "ACTIVATING")
            image.status = ImageStatus::activating;
        else
            return bad_entry(i, image.digest, "imageStatus",
                             "\"" + status + "\" is not one of ACTIVE, ARCHIVED, ACTIVATING");

        image.media_type = optional_string(entry, "imageManifestMediaType");
        image.artifact_media_type = optional_string(entry, "artifactMediaType");
        if (auto subject = optional_string(entry, "subjectManifestDigest"); !subject.empty())
            image.subject_digest = subject;

        auto children = digest_list(entry, "childDigests");
        if (!children)
            return bad_entry(i, image.digest, "childDigests", children.error().message);
        image.child_digests = std::move(*children);
        auto parents = digest_list(entry, "parentIndexDigests");
        if (!parents)
            return bad_entry(i, image.digest, "parentIndexDigests", parents.error().message);
        image.parent_index_digests = std::move(*parents);

        images.push_back(std::move(image));
    }
    return images;
}

} // namespace tagwarden::policy
