#include <tagwarden/core/parallel.hpp>
#include <tagwarden/push/push.hpp>

#include <mutex>
#include <set>

namespace tagwarden::push {

namespace {

Error verification_error(const std::string& message) { return Error(ErrorKind::verification, message); }

// Reclassifies "not found" as a verification failure; other errors (auth, network) keep their kind.
Error reclassify(Error e) {
    if (e.kind == ErrorKind::not_found)
        e.kind = ErrorKind::verification;
    return e;
}

} // namespace

Result<VerifyReport> verify_image(registry::Client& client, const std::string& repo, const std::string& reference,
                                  const std::optional<Digest>& expected, int jobs) {
    VerifyReport report;
    report.repository = client.registry() + "/" + repo;
    std::string shown = report.repository + (reference.starts_with("sha256:") ? "@" : ":") + reference;

    auto head = client.head_manifest(repo, reference);
    if (!head)
        return std::unexpected(reclassify(head.error()));
    if (!*head)
        return std::unexpected(verification_error(shown + " does not exist in the registry"));
    if (expected && (*head)->digest != *expected)
        return std::unexpected(verification_error(shown + " resolves to " + (*head)->digest.str() + ", expected " +
                                                  expected->str()));
    auto root = client.get_manifest(repo, (*head)->digest.str());
    if (!root)
        return std::unexpected(reclassify(root.error()));
    report.digest = root->digest;
    report.media_type = root->media_type;
    if (!reference.starts_with("sha256:"))
        report.tags_checked.push_back(reference);

    // Walk the graph: every child manifest must resolve by digest with its declared size; collect blobs.
    std::vector<image::Descriptor> blobs;
    std::set<Digest> seen;
    std::vector<image::Manifest> pending{*root};
    report.manifests_checked = 1;
    while (!pending.empty()) {
        auto m = std::move(pending.back());
        pending.pop_back();
        if (m.image) {
            for (const auto* d : {&m.image->config})
                if (seen.insert(d->digest).second)
                    blobs.push_back(*d);
            for (const auto& l : m.image->layers)
                if (seen.insert(l.digest).second)
                    blobs.push_back(l);
            continue;
        }
        for (const auto& child : m.index->manifests) {
            if (!seen.insert(child.digest).second)
                continue;
            auto c = client.get_manifest(repo, child.digest.str());
            if (!c) {
                auto e = reclassify(c.error());
                if (e.kind == ErrorKind::verification)
                    e.message = "child manifest " + child.digest.str() + " of " + shown + " is missing: " + e.message;
                return std::unexpected(e);
            }
            if (c->bytes.size() != child.size)
                return std::unexpected(verification_error("child manifest " + child.digest.str() + " of " + shown +
                                                           " has " + std::to_string(c->bytes.size()) +
                                                           " bytes; the index declares " + std::to_string(child.size)));
            report.manifests_checked++;
            pending.push_back(std::move(*c));
        }
    }

    std::mutex mutex;
    auto status = parallel_for(blobs.size(), jobs, [&](std::size_t i) -> Status {
        const auto& b = blobs[i];
        auto size = client.blob_size(repo, b.digest);
        if (!size)
            return std::unexpected(reclassify(size.error()));
        if (!*size)
            return fail(ErrorKind::verification, "blob " + b.digest.str() + " of " + shown + " is missing from " +
                                                     report.repository);
        if (**size != b.size)
            return fail(ErrorKind::verification, "blob " + b.digest.str() + " of " + shown + " has " +
                                                     std::to_string(**size) + " bytes in the registry; the manifest declares " +
                                                     std::to_string(b.size));
        std::lock_guard lock(mutex);
        report.blobs_checked++;
        report.bytes_checked += b.size;
        return {};
    });
    if (!status)
        return std::unexpected(status.error());
    return report;
}

} // namespace tagwarden::push
