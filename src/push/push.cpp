#include <tagwarden/core/log.hpp>
#include <tagwarden/core/parallel.hpp>
#include <tagwarden/core/progress.hpp>
#include <tagwarden/push/push.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <mutex>

namespace tagwarden::push {

namespace {

std::string short_digest(const Digest& d) { return std::string(d.hex().substr(0, 12)); }

// Counts the bytes of one blob into the progress line; a reopened blob (a retry) starts its count over.
class CountingReader final : public image::BlobReader {
public:
    CountingReader(std::unique_ptr<image::BlobReader> inner, Progress& progress, std::atomic<std::int64_t>& counted)
        : m_inner(std::move(inner)), m_progress(progress), m_counted(counted) {
        m_progress.add(-m_counted.exchange(0));
    }
    Result<std::size_t> read(char* buffer, std::size_t size) override {
        auto n = m_inner->read(buffer, size);
        if (n && *n) {
            m_counted += static_cast<std::int64_t>(*n);
            m_progress.add(static_cast<std::int64_t>(*n));
        }
        return n;
    }

private:
    std::unique_ptr<image::BlobReader> m_inner;
    Progress& m_progress;
    std::atomic<std::int64_t>& m_counted;
};

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

// What a tag points to now, and what this run will do with it.
struct TagPlan {
    std::string tag;
    std::optional<Digest> current;
    std::string action;  // "create", "unchanged", "overwrite"
};

// Reads every tag's state and applies the tag rules. A lookup failure is an error, never "absent".
Result<std::vector<TagPlan>> plan_tags(registry::Client& client, const std::string& repo, const PushPlan& plan,
                                       const PushOptions& options, const std::string& shown_repo) {
    std::vector<TagPlan> out;
    for (const auto& tag : plan.tags) {
        auto info = client.head_manifest(repo, tag);
        if (!info) {
            auto e = info.error().with_context("checking whether tag '" + tag + "' exists");
            if (e.kind == ErrorKind::not_found)
                e.kind = ErrorKind::registry;
            return std::unexpected(e);
        }
        TagPlan t{tag, std::nullopt, "create"};
        if (*info) {
            t.current = (*info)->digest;
            if ((*info)->digest == plan.root.digest) {
                t.action = "unchanged";
            } else if (is_protected_tag(options.naming, tag)) {
                return fail(ErrorKind::tag_conflict,
                            "tag " + shown_repo + ":" + tag + " already points to " + (*info)->digest.str() +
                                ", not to " + plan.root.digest.str() + "; it belongs to the protected environment '" +
                                environment_of(options.naming, tag).value_or("?") +
                                "' and can never be overwritten: release under a new version");
            } else if (options.registry_immutable && options.registry_immutable(tag)) {
                return fail(ErrorKind::tag_conflict,
                            "tag " + shown_repo + ":" + tag + " already points to " + (*info)->digest.str() +
                                ", not to " + plan.root.digest.str() +
                                "; the registry makes this tag immutable (ECR tag mutability), so it cannot move even "
                                "with --allow-overwrite: push under a new tag");
            } else if (!options.allow_overwrite) {
                return fail(ErrorKind::tag_conflict,
                            "tag " + shown_repo + ":" + tag + " already points to " + (*info)->digest.str() +
                                ", not to " + plan.root.digest.str() +
                                "; tags are immutable: push under a new tag, or pass --allow-overwrite to move it");
            } else {
                t.action = "overwrite";
            }
        }
        out.push_back(std::move(t));
    }
    return out;
}

// Removes, or restores, what a run wrote: overwritten tags get their previous manifest back; created tags
// go with the manifest (DELETE by digest) when the manifest is this run's own, else one by one.
Status undo_writes(registry::Client& client, const Journal& journal) {
    const auto& repo = journal.repository;
    std::vector<std::string> failures;
    bool created_any = false;
    for (auto it = journal.tags.rbegin(); it != journal.tags.rend(); ++it) {
        if (!it->written)
            continue;
        if (it->previous) {
            // A tag that never moved (its write failed) needs no restoring.
            if (auto now = client.head_manifest(repo, it->tag); now && *now && (*now)->digest == *it->previous)
                continue;
            auto old = client.get_manifest(repo, it->previous->str());
            if (!old) {
                failures.push_back(it->tag + " (previous manifest unreadable: " + old.error().message + ")");
                continue;
            }
            auto r = client.put_manifest(repo, it->tag, *old);
            if (!r)
                failures.push_back(it->tag + " (" + r.error().message + ")");
            else
                log::info("restored " + journal.name() + ":" + it->tag + " to " + it->previous->str());
        } else {
            created_any = true;
        }
    }
    bool wrote_any = std::any_of(journal.tags.begin(), journal.tags.end(), [](const auto& t) { return t.written; });
    // A manifest this run brought into the repository goes again, even when its only tags were overwrites
    // (now pointed back): otherwise it would stay behind untagged.
    if (created_any || (wrote_any && !journal.root_preexisting)) {
        if (!journal.root_preexisting) {
            auto r = client.delete_manifest(repo, journal.digest.str());
            if (!r && r.error().kind != ErrorKind::not_found)
                failures.push_back("manifest " + journal.digest.str() + " (" + r.error().message + ")");
            else
                log::info("removed " + journal.name() + "@" + journal.digest.str() + " and the tags this run created");
        } else {
            for (const auto& t : journal.tags) {
                if (!t.written || t.previous)
                    continue;
                // Only a tag that really points at this run's manifest is removed.
                auto now = client.head_manifest(repo, t.tag);
                if (now && (!*now || (*now)->digest != journal.digest))
                    continue;
                auto r = client.delete_manifest(repo, t.tag);
                if (!r && r.error().kind != ErrorKind::not_found)
                    failures.push_back(t.tag + " (" + r.error().message + ")");
            }
        }
    }
    if (!journal.root_preexisting) {
        for (const auto& child : journal.children_created) {
            auto r = client.delete_manifest(repo, child.str());
            if (!r && r.error().kind != ErrorKind::not_found)
                failures.push_back("child manifest " + child.str() + " (" + r.error().message + ")");
        }
    }
    if (!failures.empty()) {
        std::string list;
        for (const auto& f : failures)
            list += (list.empty() ? "" : "; ") + f;
        return fail(ErrorKind::registry, "could not undo: " + list);
    }
    return {};
}

// Writes a manifest under `reference` and records it in the journal (when one is kept).
// `attempted` tells whether the PUT was sent (false when fencing stopped it).
Status write_tag(registry::Client& client, const std::string& repo, const std::string& tag, const image::Manifest& root,
                 lock::LockSet* locks, Journal* journal, const std::string& journal_dir, bool& attempted) {
    // Fencing: a lease that lapsed while we worked must not be followed by a write.
    if (locks)
        TW_TRY(locks->check());
    attempted = true;
    TW_TRY(put_checked(client, repo, tag, root));
    if (journal) {
        for (auto& t : journal->tags)
            if (t.tag == tag)
                t.written = true;
        TW_TRY(save_journal(*journal, journal_dir));
    }
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

    // 1. Tag preflight, before a single byte is uploaded.
    auto tag_plan = plan_tags(client, repo, plan, options, report.repository);
    if (!tag_plan)
        return std::unexpected(tag_plan.error());

    // 2. Blobs, in parallel: skip what the registry has, upload the rest.
    std::mutex stats_mutex;
    log::info((options.blobs_present ? "writing " : "pushing ") + plan.root.digest.str() + " (" +
              std::to_string(plan.blobs.size()) + " blobs, " + human_bytes(plan.blob_bytes()) + ") to " +
              report.repository);
    auto blob_count = options.blobs_present ? std::size_t{0} : plan.blobs.size();
    std::optional<Progress> progress;
    if (!options.dry_run && !options.blobs_present)
        progress.emplace("uploading", plan.blob_bytes(), static_cast<int>(plan.blobs.size()));
    std::vector<std::atomic<std::int64_t>> counted(plan.blobs.size());
    if (options.blobs_present)
        log::info("every blob is already in " + report.repository + ": no blob is read or written");
    auto blob_status = parallel_for(blob_count, options.jobs, [&](std::size_t i) -> Status {
        const auto& blob = plan.blobs[i];
        auto size = client.blob_size(repo, blob.digest);
        if (!size)
            return std::unexpected(size.error());
        if (*size && **size == blob.size) {
            std::lock_guard lock(stats_mutex);
            report.blobs.existing++;
            report.blobs.existing_bytes += blob.size;
            if (progress) {
                progress->add(static_cast<std::int64_t>(blob.size));
                progress->item_done();
            }
            log::info(short_digest(blob.digest) + ": already exists");
            return {};
        }
        if (*size)
            log::warn("registry has blob " + blob.digest.str() + " with size " + std::to_string(**size) +
                      " instead of " + std::to_string(blob.size) + "; uploading it again");
        if (options.dry_run) {
            std::lock_guard lock(stats_mutex);
            report.blobs.uploaded++;
            report.blobs.uploaded_bytes += blob.size;
            log::info(short_digest(blob.digest) + (options.mount_from.empty() ? ": would upload " : ": would mount or upload ") +
                      human_bytes(blob.size));
            return {};
        }
        if (!options.mount_from.empty()) {
            auto mounted = client.mount_blob(repo, blob, options.mount_from);
            if (!mounted)
                return std::unexpected(mounted.error());
            if (*mounted) {
                std::lock_guard lock(stats_mutex);
                report.blobs.mounted++;
                report.blobs.mounted_bytes += blob.size;
                progress->add(static_cast<std::int64_t>(blob.size));
                progress->item_done();
                log::info(short_digest(blob.digest) + ": mounted from " + options.mount_from);
                return {};
            }
            log::info(short_digest(blob.digest) + ": the registry did not mount it; copying");
        }
        TW_TRY(client.upload_blob(repo, blob, [&]() -> Result<std::unique_ptr<image::BlobReader>> {
            auto reader = source.open_blob(blob);
            if (!reader || !progress->enabled())
                return reader;
            return std::make_unique<CountingReader>(std::move(*reader), *progress, counted[i]);
        }));
        progress->item_done();
        std::lock_guard lock(stats_mutex);
        report.blobs.uploaded++;
        report.blobs.uploaded_bytes += blob.size;
        log::info(short_digest(blob.digest) + ": uploaded " + human_bytes(blob.size));
        return {};
    });
    progress.reset();
    if (!blob_status)
        return std::unexpected(blob_status.error());

    if (options.dry_run) {
        for (const auto& t : *tag_plan)
            report.tags.push_back({t.tag, t.action == "unchanged" ? "unchanged" : "planned", t.current});
        return report;
    }

    // 3. Locks before any manifest is written; then the tag states again, now authoritative.
    if (options.locks && !plan.tags.empty()) {
        std::vector<std::string> keys;
        for (const auto& t : plan.tags)
            keys.push_back(lock::tag_lock_key(client.registry(), repo, t));
        TW_TRY(options.locks->acquire(keys, options.lock_timeout));
        tag_plan = plan_tags(client, repo, plan, options, report.repository);
        if (!tag_plan)
            return std::unexpected(tag_plan.error());
    }

    // 4. The journal, so a killed run can be finished or undone.
    auto root_before = client.head_manifest(repo, plan.root.digest.str());
    if (!root_before)
        return std::unexpected(root_before.error());
    Journal journal;
    journal.run_id = options.run_id.empty() ? lock::LockOwner::current().run_id : options.run_id;
    journal.registry = client.registry();
    journal.repository = repo;
    journal.digest = plan.root.digest;
    journal.media_type = plan.root.media_type;
    journal.manifest = plan.root.bytes;
    journal.root_preexisting = root_before->has_value();
    for (const auto& t : *tag_plan)
        if (t.action != "unchanged")
            journal.tags.push_back({t.tag, t.action == "overwrite" ? t.current : std::nullopt, false});
    Journal* jp = options.journal_dir.empty() || journal.tags.empty() ? nullptr : &journal;
    if (jp)
        TW_TRY(save_journal(journal, options.journal_dir));

    auto rollback = [&](const Error& cause) -> Error {
        auto undone = undo_writes(client, journal);
        Error e = cause;
        if (undone) {
            if (jp)
                remove_journal(journal);
            e.message += "; rolled back: no tag of this run remains";
        } else {
            e.message += "; ROLLBACK INCOMPLETE: " + undone.error().message +
                         (jp ? " (finish with: tagwarden push --resume " + report.repository + ")" : "");
        }
        return e;
    };

    // 5. Child manifests by digest, deepest first (the registry checks references on PUT).
    for (const auto& child : plan.children) {
        auto existing = client.head_manifest(repo, child.digest.str());
        if (!existing)
            return std::unexpected(rollback(existing.error()));
        if (*existing)
            continue;
        if (auto r = put_checked(client, repo, child.digest.str(), child); !r)
            return std::unexpected(rollback(r.error()));
        journal.children_created.push_back(child.digest);
        if (jp)
            if (auto r = save_journal(journal, options.journal_dir); !r)
                return std::unexpected(rollback(r.error()));
        report.manifests_written++;
    }

    // 6. A manifest already in the repository (a promotion, another tag for a pushed image) is checked,
    // with everything it references, before it is tagged: a tag written next to an existing manifest may
    // not be removable again (DELETE by tag is optional in the distribution spec; docker-registry 2.8
    // refuses it), so a broken image must be caught before the write, not after.
    std::optional<VerifyReport> checked;
    if (*root_before) {
        auto v = verify_image(client, repo, plan.root.digest.str(), plan.root.digest, options.jobs);
        if (!v)
            return std::unexpected(rollback(v.error()));
        checked = *v;
    }

    // 7. The root under its first tag, so it exists tagged or not at all; then the other tags.
    bool root_written = false;
    for (const auto& t : *tag_plan) {
        if (t.action == "unchanged") {
            report.tags.push_back({t.tag, "unchanged", std::nullopt});
            continue;
        }
        bool attempted = false;
        if (auto r = write_tag(client, repo, t.tag, plan.root, options.locks, jp, options.journal_dir, attempted); !r) {
            // Without a definite answer (no response, 5xx) the write may have happened: undo it as if it had.
            // A 4xx is the registry's refusal: nothing was written.
            auto status = r.error().http_status;
            bool maybe_written = attempted && !(status >= 400 && status < 500);
            for (auto& jt : journal.tags)
                if (jt.tag == t.tag)
                    jt.written = maybe_written;
            return std::unexpected(rollback(r.error().with_context("writing tag " + report.repository + ":" + t.tag)));
        }
        for (auto& jt : journal.tags)
            if (jt.tag == t.tag)
                jt.written = true;
        if (!root_written)
            report.manifests_written++;
        root_written = true;
        if (t.action == "overwrite") {
            report.tags.push_back({t.tag, "overwritten", t.current});
            log::warn("moved " + report.repository + ":" + t.tag + " from " + t.current->str() + " to " +
                      plan.root.digest.str() + " (--allow-overwrite)");
        } else {
            report.tags.push_back({t.tag, "created", std::nullopt});
            log::info("tagged " + report.repository + ":" + t.tag);
        }
    }
    if (plan.tags.empty() && !*root_before) {
        TW_TRY(put_checked(client, repo, plan.root.digest.str(), plan.root));
        report.manifests_written++;
    }

    // 8. Verify what the registry now serves; a failure takes this run's tags back.
    std::vector<std::string> refs = plan.tags;
    if (refs.empty())
        refs.push_back(plan.root.digest.str());
    for (std::size_t i = 0; i < refs.size(); ++i) {
        // Blobs and children are checked once (before tagging, or through the first reference); the
        // other references only resolve.
        if (!checked) {
            auto v = verify_image(client, repo, refs[i], plan.root.digest, options.jobs);
            if (!v)
                return std::unexpected(rollback(v.error()));
            checked = *v;
        } else {
            auto info = client.head_manifest(repo, refs[i]);
            if (!info)
                return std::unexpected(rollback(info.error()));
            if (!*info || (*info)->digest != plan.root.digest)
                return std::unexpected(rollback(Error(ErrorKind::verification,
                                                      "after the push, " + report.repository + ":" + refs[i] +
                                                          " does not resolve to " + plan.root.digest.str())));
        }
    }
    if (jp)
        remove_journal(journal);
    log::info("verified: " + std::to_string(checked->manifests_checked) + " manifest(s) and " +
              std::to_string(checked->blobs_checked) + " blob(s) present; " + std::to_string(refs.size()) +
              " reference(s) resolve to " + short_digest(plan.root.digest));
    report.verified = true;
    return report;
}

Result<ResumeReport> resume_run(Journal journal, registry::Client& client, lock::LockSet* locks,
                                std::chrono::seconds lock_timeout, int jobs) {
    ResumeReport report;
    report.run_id = journal.run_id;
    report.repository = journal.name();
    report.digest = journal.digest;
    const auto& repo = journal.repository;
    if (locks) {
        std::vector<std::string> keys;
        for (const auto& t : journal.tags)
            keys.push_back(lock::tag_lock_key(journal.registry, journal.repository, t.tag));
        TW_TRY(locks->acquire(keys, lock_timeout));
    }
    auto root = image::parse_manifest(journal.manifest, journal.media_type);
    if (!root)
        return std::unexpected(root.error().with_context("journal " + journal.path));

    // Finish only if nobody touched the tags the run had yet to write.
    bool can_finish = true;
    for (auto& t : journal.tags) {
        auto info = client.head_manifest(repo, t.tag);
        if (!info)
            return std::unexpected(info.error());
        std::optional<Digest> now = *info ? std::optional<Digest>((*info)->digest) : std::nullopt;
        if (now == journal.digest) {
            t.written = true;  // written before the run died, maybe after its last journal save
            continue;
        }
        if (t.written || now != t.previous)
            can_finish = false;
    }
    if (can_finish) {
        for (auto& t : journal.tags) {
            if (t.written) {
                report.tags.push_back({t.tag, "unchanged", std::nullopt});
                continue;
            }
            bool attempted = false;
            auto r = write_tag(client, repo, t.tag, *root, locks, &journal,
                               std::filesystem::path(journal.path).parent_path().parent_path().string(), attempted);
            if (!r)
                return std::unexpected(r.error());
            report.tags.push_back({t.tag, t.previous ? "overwritten" : "created", t.previous});
        }
        auto v = verify_image(client, repo, journal.tags.empty() ? journal.digest.str() : journal.tags.front().tag,
                              journal.digest, jobs);
        if (!v)
            return std::unexpected(v.error());
        report.outcome = "finished";
    } else {
        TW_TRY(undo_writes(client, journal));
        for (const auto& t : journal.tags)
            if (t.written)
                report.tags.push_back({t.tag, "removed", std::nullopt});
        report.outcome = "undone";
    }
    remove_journal(journal);
    return report;
}

nlohmann::json to_json(const PushReport& r) {
    nlohmann::json tags = nlohmann::json::array();
    for (const auto& t : r.tags) {
        nlohmann::json o = {{"tag", t.tag}, {"status", t.status}};
        if (t.previous)
            o["previousDigest"] = t.previous->str();
        tags.push_back(o);
    }
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

namespace tagwarden::push {

nlohmann::json to_json(const ResumeReport& r) {
    nlohmann::json tags = nlohmann::json::array();
    for (const auto& t : r.tags)
        tags.push_back({{"tag", t.tag}, {"status", t.status}});
    return {{"runId", r.run_id}, {"repository", r.repository}, {"digest", r.digest.str()}, {"outcome", r.outcome}, {"tags", tags}};
}

} // namespace tagwarden::push
