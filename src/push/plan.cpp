#include <tagwarden/core/reference.hpp>
#include <tagwarden/push/plan.hpp>

#include <algorithm>
#include <set>

namespace tagwarden::push {

namespace {

constexpr int k_max_index_depth = 4;

Status collect(image::ImageSource& source, const image::Manifest& manifest, int depth, PushPlan& plan,
               std::set<Digest>& seen_blobs, std::set<Digest>& seen_manifests, bool check_blobs) {
    auto add_blob = [&](const image::Descriptor& d) -> Status {
        if (!seen_blobs.insert(d.digest).second)
            return {};
        if (check_blobs)
            TW_TRY(source.check_blob(d));
        plan.blobs.push_back(d);
        return {};
    };
    if (manifest.image) {
        TW_TRY(add_blob(manifest.image->config));
        for (const auto& layer : manifest.image->layers)
            TW_TRY(add_blob(layer));
        return {};
    }
    if (depth >= k_max_index_depth)
        return fail(ErrorKind::invalid_input, "image index " + manifest.digest.str() + " nests more than " +
                                                  std::to_string(k_max_index_depth) + " levels deep");
    for (const auto& child : manifest.index->manifests) {
        if (!image::is_index_media_type(child.media_type) && !image::is_manifest_media_type(child.media_type))
            return fail(ErrorKind::invalid_input, "index " + manifest.digest.str() + " references " +
                                                      child.digest.str() + " of unsupported media type '" +
                                                      child.media_type + "'");
        if (!seen_manifests.insert(child.digest).second)
            continue;
        auto m = source.manifest(child);
        if (!m)
            return std::unexpected(m.error());
        TW_TRY(collect(source, *m, depth + 1, plan, seen_blobs, seen_manifests, check_blobs));
        plan.children.push_back(std::move(*m));  // after its own children: deepest first
    }
    return {};
}

} // namespace

std::uint64_t PushPlan::blob_bytes() const {
    std::uint64_t total = 0;
    for (const auto& b : blobs)
        total += b.size;
    return total;
}

Result<PushPlan> plan_push(image::ImageSource& source, const std::vector<std::string>& tags, bool check_blobs) {
    PushPlan plan;
    for (const auto& t : tags) {
        TW_TRY(validate_tag(t));
        if (std::find(plan.tags.begin(), plan.tags.end(), t) == plan.tags.end())
            plan.tags.push_back(t);
    }
    auto root = source.root();
    if (!root)
        return std::unexpected(root.error());
    plan.root = std::move(*root);
    std::set<Digest> seen_blobs, seen_manifests{plan.root.digest};
    TW_TRY(collect(source, plan.root, 0, plan, seen_blobs, seen_manifests, check_blobs));
    return plan;
}

} // namespace tagwarden::push
