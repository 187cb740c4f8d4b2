#include <tagwarden/core/log.hpp>
#include <tagwarden/core/parallel.hpp>
#include <tagwarden/push/push.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace tagwarden::push {

namespace {

std::string short_digest(const Digest& d) { return std::string(d.hex().substr(0, 12)); }

std::string human_bytes(std::uint64_t bytes) {
    char buffer[32];
    if (bytes >= 1024ULL * 1024 * 1024)
        std::snprintf(buffer, sizeof buffer, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024ULL * 1024)
        std::snprintf(buffer, sizeof buffer, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024));
    else if (bytes >= 1024)
        std::snprintf(buffer, sizeof buffer, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
    else
        std::snprintf(buffer, sizeof buffer, "%llu B", static_cast<unsigned long long>(bytes));
    return buffer;
}

// Writes a manifest and checks the registry computed the same digest from the same bytes.
Status put_checked(registry::Client& client, const std::string& repo, const std::string& reference,
                   const image::Manifest& manifest) {
    auto stored = client.put_manifest(repo, reference, manifest);
    if (!stored)
        return std::unexpected(stored.error());
    if (*stored != manifest.digest)
        return fail(ErrorKind::verification, "registry reports digest " + stored->str() + " for manifest " +
                                                 manifest.digest.str() + " written as " + repo + ":" + reference +
                                                 "; it altered the manifest bytes");
    return {};
}

} // namespace

Result<PushReport> execute_push(const PushPlan& plan, image::ImageSource& source, registry::Client& client,
                                const std::string& repo, const PushOptions& options) {
    PushReport report;
    report.repository = client.registry() + "/" + repo;
    report.digest = plan.root.digest;
    report.media_type = plan.root.media_type;
    report.dry_run = options.dry_run;

    // 1. Tag preflight, before a single byte is uploaded. A failed lookup is an error, never "absent".
    std::vector<bool> tag_exists(plan.tags.size(), false);
    for (std::size_t i = 0; i < plan.tags.size(); ++i) {
        const auto& tag = plan.tags[i];
        auto info = client.head_manifest(repo, tag);
        if (!info)
            return std::unexpected(info.error().with_context("checking whether tag '" + tag + "' exists"));
        if (*info && (*info)->digest != plan.root.digest)
            return fail(ErrorKind::tag_conflict, "tag " + report.repository + ":" + tag + " already points to " +
                                                     (*info)->digest.str() + ", not to " + plan.root.digest.str() +
                                                     "; tags are immutable: push under a new tag");
        tag_exists[i] = info->has_value();
    }

    // 2. Blobs, in parallel: skip what the registry has, upload the rest.
    std::mutex stats_mutex;
    std::vector<char> missing(plan.blobs.size(), 0);
    log::info("pushing " + plan.root.digest.str() + " (" + std::to_string(plan.blobs.size()) + " blobs, " +
              human_bytes(plan.blob_bytes()) + ") to " + report.repository);
    auto blob_status = parallel_for(plan.blobs.size(), options.jobs, [&](std::size_t i) -> Status {
        const auto& blob = plan.blobs[i];
        auto size = client.blob_size(repo, blob.digest);
        if (!size)
            return std::unexpected(size.error());
        if (*size && **size == blob.size) {
            std::lock_guard lock(stats_mutex);
            report.blobs.existing++;
            report.blobs.existing_bytes += blob.size;
            log::info(short_digest(blob.digest) + ": already exists");
            return {};
        }
        if (*size)
            log::warn("registry has blob " + blob.digest.str() + " with size " + std::to_string(**size) +
                      " instead of " + std::to_string(blob.size) + "; uploading it again");
        if (options.dry_run) {
            std::lock_guard lock(stats_mutex);
            missing[i] = 1;
            report.blobs.uploaded++;
            report.blobs.uploaded_bytes += blob.size;
            log::info(short_digest(blob.digest) + ": would upload " + human_bytes(blob.size));
            return {};
        }
        TW_TRY(client.upload_blob(repo, blob, [&]() { return source.open_blob(blob); }));
        std::lock_guard lock(stats_mutex);
        report.blobs.uploaded++;
        report.blobs.uploaded_bytes += blob.size;
        log::info(short_digest(blob.digest) + ": uploaded " + human_bytes(blob.size));
        return {};
    });
    if (!blob_status)
        return std::unexpected(blob_status.error());

    if (options.dry_run) {
        for (std::size_t i = 0; i < plan.tags.size(); ++i)
            report.tags.push_back({plan.tags[i], tag_exists[i] ? "unchanged" : "planned"});
        return report;
    }

    // 3. Child manifests by digest, deepest first (the registry checks references on PUT).
    for (const auto& child : plan.children) {
        auto existing = client.head_manifest(repo, child.digest.str());
        if (!existing)
            return std::unexpected(existing.error());
        if (*existing)
            continue;
        TW_TRY(put_checked(client, repo, child.digest.str(), child));
        report.manifests_written++;
    }

    // 4. The root under its first tag, so it exists tagged or not at all; then the other tags.
    bool root_written = false;
    for (std::size_t i = 0; i < plan.tags.size(); ++i) {
        if (tag_exists[i]) {
            report.tags.push_back({plan.tags[i], "unchanged"});
            continue;
        }
        TW_TRY(put_checked(client, repo, plan.tags[i], plan.root));
        if (!root_written)
            report.manifests_written++;
        root_written = true;
        report.tags.push_back({plan.tags[i], "created"});
        log::info("tagged " + report.repository + ":" + plan.tags[i]);
    }
    if (plan.tags.empty()) {
        auto existing = client.head_manifest(repo, plan.root.digest.str());
        if (!existing)
            return std::unexpected(existing.error());
        if (!*existing) {
            TW_TRY(put_checked(client, repo, plan.root.digest.str(), plan.root));
            report.manifests_written++;
        }
    }

    // 5. Verify what the registry now serves.
    std::vector<std::string> refs = plan.tags;
    if (refs.empty())
        refs.push_back(plan.root.digest.str());
    VerifyReport checked;
    for (std::size_t i = 0; i < refs.size(); ++i) {
        // Blobs and children are checked once (through the first reference); other tags only resolve.
        if (i == 0) {
            auto v = verify_image(client, repo, refs[i], plan.root.digest, options.jobs);
            if (!v)
                return std::unexpected(v.error());
            checked = *v;
        } else {
            auto info = client.head_manifest(repo, refs[i]);
            if (!info)
                return std::unexpected(info.error());
            if (!*info || (*info)->digest != plan.root.digest)
                return fail(ErrorKind::verification, "after the push, " + report.repository + ":" + refs[i] +
                                                         " does not resolve to " + plan.root.digest.str());
        }
    }
    log::info("verified: " + std::to_string(checked.manifests_checked) + " manifest(s) and " +
              std::to_string(checked.blobs_checked) + " blob(s) present; " + std::to_string(refs.size()) +
              " reference(s) resolve to " + short_digest(plan.root.digest));
    report.verified = true;
    return report;
}

nlohmann::json to_json(const PushReport& r) {
    nlohmann::json tags = nlohmann::json::array();
    for (const auto& t : r.tags)
        tags.push_back({{"tag", t.tag}, {"status", t.status}});
    return {
        {"repository", r.repository},
        {"digest", r.digest.str()},
        {"mediaType", r.media_type},
        {"tags", tags},
        {"blobs",
         {{"uploaded", r.blobs.uploaded},
          {"existing", r.blobs.existing},
          {"mounted", r.blobs.mounted},
          {"uploadedBytes", r.blobs.uploaded_bytes},
          {"existingBytes", r.blobs.existing_bytes},
          {"mountedBytes", r.blobs.mounted_bytes}}},
        {"manifestsWritten", r.manifests_written},
        {"dryRun", r.dry_run},
        {"verified", r.verified},
    };
}

nlohmann::json to_json(const VerifyReport& r) {
    return {
        {"repository", r.repository},     {"digest", r.digest.str()},       {"mediaType", r.media_type},
        {"tags", r.tags_checked},         {"manifests", r.manifests_checked}, {"blobs", r.blobs_checked},
        {"bytes", r.bytes_checked},       {"verified", true},
    };
}

} // namespace tagwarden::push
