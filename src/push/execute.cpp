#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/parallel.hpp>
#include <tagwarden/core/progress.hpp>
#include <tagwarden/push/execute.hpp>
#include <tagwarden/push/journal.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>

namespace tagwarden::push {

namespace {

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

} // namespace

Status put_manifest_checked(registry::Client& client, const std::string& repo, const std::string& reference,
                            const image::Manifest& manifest, const registry::WriteFence& fence) {
    auto stored = client.put_manifest(repo, reference, manifest, fence);
    if (!stored)
        return std::unexpected(stored.error());
    if (*stored != manifest.digest)
        return fail(ErrorKind::verification, "registry reports digest " + stored->str() + " for manifest " +
                                                 manifest.digest.str() + " written as " + repo + ":" + reference +
                                                 "; it altered the manifest bytes");
    return {};
}

namespace {

// What a tag points to now, and what this run will do with it.
struct TagPlan {
    std::string tag;
    std::optional<Digest> current;
    TagAction action = TagAction::create;
};


// Applies the tag rules to what a tag points at now. A lookup failure is an error, never "absent".
Result<TagPlan> decide_tag(const std::string& tag, const std::optional<Digest>& current, const Digest& digest,
                           const PushOptions& options, const std::string& shown_repo) {
    TagPlan t{tag, current, TagAction::create};
    if (!current)
        return t;
    if (*current == digest) {
        t.action = TagAction::unchanged;
        return t;
    }
    auto conflict = "tag " + shown_repo + ":" + tag + " already points to " + current->str() + ", not to " + digest.str();
    if (is_protected_tag(options.naming, tag))
        return fail(ErrorKind::tag_conflict, conflict + "; it belongs to the protected environment '" +
                                                 environment_of(options.naming, tag).value_or("?") +
                                                 "' and can never be overwritten: release under a new version");
    if (options.registry_immutable && options.registry_immutable(tag))
        return fail(ErrorKind::tag_conflict,
                    conflict + "; the registry makes this tag immutable (ECR tag mutability), so it cannot move even "
                               "with --allow-overwrite: push under a new tag");
    if (!options.allow_overwrite)
        return fail(ErrorKind::tag_conflict,
                    conflict + "; tags are immutable: push under a new tag, or pass --allow-overwrite to move it");
    t.action = TagAction::overwrite;
    return t;
}

Result<std::vector<TagPlan>> plan_tags(registry::Client& client, const std::string& repo, const PushPlan& plan,
                                       const PushOptions& options, const std::string& shown_repo) {
    std::vector<TagPlan> out;
    for (const auto& tag : plan.tags) {
        auto current = tag_digest(client, repo, tag);
        if (!current)
            return std::unexpected(current.error());
        auto decided = decide_tag(tag, *current, plan.root.digest, options, shown_repo);
        if (!decided)
            return std::unexpected(decided.error());
        out.push_back(std::move(*decided));
    }
    return out;
}

// The blob phase: HEAD every blob, mount or upload what is missing, in parallel.
Status transfer_blobs(const PushPlan& plan, image::ImageSource& source, registry::Client& client, const std::string& repo,
                      const PushOptions& options, PushReport& report) {
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
    auto status = parallel_for(blob_count, options.jobs, [&](std::size_t i) -> Status {
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
            log::info(blob.digest.short_hex() + ": already exists");
            return {};
        }
        if (*size)
            log::warn("registry has blob " + blob.digest.str() + " with size " + std::to_string(**size) +
                      " instead of " + std::to_string(blob.size) + "; uploading it again");
        if (options.dry_run) {
            std::lock_guard lock(stats_mutex);
            report.blobs.uploaded++;
            report.blobs.uploaded_bytes += blob.size;
            log::info(blob.digest.short_hex() +
                      (options.mount_from.empty() ? ": would upload " : ": would mount or upload ") +
                      human_bytes(blob.size));
            return {};
        }
        std::string session;  // an upload the registry opened when it declined the mount
        if (!options.mount_from.empty()) {
            auto mounted = client.mount_blob(repo, blob, options.mount_from, &session);
            if (!mounted)
                return std::unexpected(mounted.error());
            if (*mounted) {
                std::lock_guard lock(stats_mutex);
                report.blobs.mounted++;
                report.blobs.mounted_bytes += blob.size;
                progress->add(static_cast<std::int64_t>(blob.size));
                progress->item_done();
                log::info(blob.digest.short_hex() + ": mounted from " + options.mount_from);
                return {};
            }
            log::info(blob.digest.short_hex() + ": the registry did not mount it; copying");
        }
        TW_TRY(client.upload_blob(repo, blob, [&]() -> Result<std::unique_ptr<image::BlobReader>> {
            auto reader = source.open_blob(blob);
            if (!reader || !progress->enabled())
                return reader;
            return std::make_unique<CountingReader>(std::move(*reader), *progress, counted[i]);
        }, session));
        progress->item_done();
        std::lock_guard lock(stats_mutex);
        report.blobs.uploaded++;
        report.blobs.uploaded_bytes += blob.size;
        log::info(blob.digest.short_hex() + ": uploaded " + human_bytes(blob.size));
        return {};
    });
    progress.reset();
    return status;
}

// The manifest and tag phase of one run, with its journal and its undo.
class Writer {
public:
    Writer(const PushPlan& plan, registry::Client& client, const std::string& repo, const PushOptions& options,
           PushReport& report)
        : m_plan(plan), m_client(client), m_repo(repo), m_options(options), m_report(report),
          m_keeper(options.journals), m_fence(write_fence(options.locks, options.write_timeout)) {}

    Status run(std::vector<TagPlan> tag_plan) {
        auto root_before = m_client.head_manifest(m_repo, m_plan.root.digest.str());
        if (!root_before)
            return std::unexpected(root_before.error());
        start_journal(tag_plan, root_before->has_value());
        if (!m_journal.tags.empty())
            TW_TRY(m_keeper.save(m_journal));

        // Child manifests by digest, deepest first (the registry checks references on PUT).
        for (std::size_t i = 0; i < m_plan.children.size(); ++i) {
            if (auto r = stop_if_cancelled(); !r)
                return rollback(r.error());
            const auto& child = m_plan.children[i];
            auto existing = m_client.head_manifest(m_repo, child.digest.str());
            if (!existing)
                return rollback(existing.error());
            if (*existing)
                continue;
            m_journal.children[i].created = true;  // maybe written from here on
            if (auto r = save(); !r)
                return rollback(r.error());
            if (auto r = put_manifest_checked(m_client, m_repo, child.digest.str(), child, m_fence); !r)
                return rollback(r.error());
            m_report.manifests_written++;
        }

        // A manifest already in the repository (a promotion, another tag for a pushed image) is checked,
        // with everything it references, before it is tagged: a tag written next to an existing manifest may
        // not be removable again (DELETE by tag is optional in the distribution spec; docker-registry 2.8
        // refuses it), so a broken image must be caught before the write, not after.
        if (*root_before) {
            auto v = timed_verify(m_plan.root.digest.str());
            if (!v)
                return rollback(v.error());
            m_checked = *v;
        }

        // Whether this run could take its tags back: a created tag is undone by DELETE, which some registries
        // refuse (docker-registry's default, Docker Hub). Without it, the image is verified right after its
        // first tag, so that a later failure leaves every written tag on a complete, verified image.
        bool creates = std::any_of(tag_plan.begin(), tag_plan.end(), [](const TagPlan& t) { return t.action == TagAction::create; });
        if (creates && !*root_before) {
            auto deletable = m_client.can_delete_manifests(m_repo);
            if (!deletable)
                return rollback(deletable.error().with_context("checking whether the registry deletes manifests"));
            m_report.all_or_none = *deletable;
            if (!*deletable)
                log::warn(m_report.repository + " refuses DELETE, so a failed run cannot take its tags back: the image "
                          "is verified after its first tag, and a later failure leaves the tags written so far on "
                          "that complete, verified image (all-or-none needs a registry that deletes: ECR, "
                          "distribution with delete enabled, Harbor)");
        }

        // The root under its first tag, so it exists tagged or not at all; then the other tags.
        bool root_written = false;
        for (const auto& t : tag_plan) {
            if (t.action == TagAction::unchanged) {
                m_report.tags.push_back({t.tag, TagStatus::unchanged, std::nullopt});
                continue;
            }
            if (auto r = stop_if_cancelled(); !r)
                return rollback(r.error());
            if (auto r = write_tag(t); !r)
                return rollback(r.error().with_context("writing tag " + m_report.repository + ":" + t.tag));
            if (!root_written) {
                m_report.manifests_written++;
                if (!m_report.all_or_none && !m_checked) {
                    auto v = timed_verify(t.tag);
                    if (!v)
                        return rollback(v.error());
                    m_checked = *v;
                }
            }
            root_written = true;
            if (t.action == TagAction::overwrite) {
                m_report.tags.push_back({t.tag, TagStatus::overwritten, t.current});
                log::warn("moved " + m_report.repository + ":" + t.tag + " from " + t.current->str() + " to " +
                          m_plan.root.digest.str() + " (--allow-overwrite)");
            } else {
                m_report.tags.push_back({t.tag, TagStatus::created, std::nullopt});
                log::info("tagged " + m_report.repository + ":" + t.tag);
            }
        }
        if (m_plan.tags.empty() && !*root_before) {
            TW_TRY(put_manifest_checked(m_client, m_repo, m_plan.root.digest.str(), m_plan.root, m_fence));
            m_report.manifests_written++;
        }

        // Verify what the registry now serves; a failure takes this run's tags back.
        if (auto r = stop_if_cancelled(); !r)
            return rollback(r.error());
        std::vector<std::string> refs = m_plan.tags;
        if (refs.empty())
            refs.push_back(m_plan.root.digest.str());
        for (const auto& ref : refs) {
            // Blobs and children are checked once (before tagging, or through the first reference); the
            // other references only resolve.
            if (!m_checked) {
                auto v = timed_verify(ref);
                if (!v)
                    return rollback(v.error());
                m_checked = *v;
            } else {
                auto info = [&] {
                    PhaseTimer timer(m_report.timings.verify);
                    return m_client.head_manifest(m_repo, ref);
                }();
                if (!info)
                    return rollback(info.error());
                if (!*info || (*info)->digest != m_plan.root.digest)
                    return rollback(Error(ErrorKind::verification, "after the push, " + m_report.repository + ":" +
                                                                       ref + " does not resolve to " +
                                                                       m_plan.root.digest.str()));
            }
        }
        if (!m_journal.tags.empty())
            if (auto r = m_keeper.remove(m_journal); !r)
                log::warn("the run finished, but its journal could not be removed: " + r.error().message);
        log::info("verified: " + std::to_string(m_checked->manifests_checked) + " manifest(s) and " +
                  std::to_string(m_checked->blobs_checked) + " blob(s) present; " + std::to_string(refs.size()) +
                  " reference(s) resolve to " + m_plan.root.digest.short_hex());
        m_report.verified = true;
        return {};
    }

private:
    void start_journal(const std::vector<TagPlan>& tag_plan, bool root_preexisting) {
        m_journal.run_id = m_options.run_id.empty() ? lock::LockOwner::current().run_id : m_options.run_id;
        m_journal.owner = m_options.locks ? m_options.locks->owner() : lock::LockOwner::current();
        m_journal.owner.run_id = m_journal.run_id;
        m_journal.registry = m_client.registry();
        m_journal.repository = m_repo;
        m_journal.digest = m_plan.root.digest;
        m_journal.media_type = m_plan.root.media_type;
        m_journal.manifest = m_plan.root.bytes;
        m_journal.root_preexisting = root_preexisting;
        for (const auto& c : m_plan.children)
            m_journal.children.push_back({c.digest, c.media_type, c.bytes, false});
        for (const auto& t : tag_plan)
            if (t.action != TagAction::unchanged)
                m_journal.tags.push_back(
                    {t.tag, t.action == TagAction::overwrite ? t.current : std::nullopt, false});
    }

    Status save() { return m_journal.tags.empty() ? Status{} : m_keeper.save(m_journal); }

    Result<VerifyReport> timed_verify(const std::string& reference) {
        PhaseTimer timer(m_report.timings.verify);
        return verify_image(m_client, m_repo, reference, m_plan.root.digest, m_options.jobs);
    }

    Status stop_if_cancelled() {
        if (cancel::should_stop())
            return std::unexpected(cancel::cancelled_error());
        return {};
    }

    // Reads the tag again right before its write, under the lock: a tag moved since the plan (by a writer
    // that does not use tagwarden's locks) is a conflict, not a silent move. Then the fenced PUT.
    Status write_tag(const TagPlan& t) {
        auto now = tag_digest(m_client, m_repo, t.tag);
        if (!now)
            return std::unexpected(now.error());
        if (*now != t.current) {
            if (*now == m_plan.root.digest)
                return fail(ErrorKind::tag_conflict,
                            "tag " + m_report.repository + ":" + t.tag + " was written by someone else while this run "
                                "worked (it now points at this image, " + m_plan.root.digest.str() +
                                ", but not through this run's lock): push again to confirm it");
            return fail(ErrorKind::tag_conflict,
                        "tag " + m_report.repository + ":" + t.tag + " changed while this run worked: it pointed at " +
                            (t.current ? t.current->str() : std::string("nothing")) + " and now points at " +
                            (*now ? (*now)->str() : std::string("nothing")) +
                            "; another writer does not use this lock (configure the same --lock everywhere)");
        }
        return journaled_tag_write(m_client, m_repo, m_journal, m_keeper, t.tag, m_plan.root, m_fence);
    }

    std::unexpected<Error> rollback(const Error& cause) {
        auto undone = undo_writes(m_client, m_journal,
                                  UndoOptions{m_options.locks, m_options.write_timeout, m_options.jobs});
        Error e = cause;
        e.message += undone.summary();
        if (undone.lock_lost)
            e.kind = ErrorKind::lock_unavailable;
        if (undone.incomplete) {
            (void)save();
            if (m_keeper.enabled())
                e.message += " (the journal is kept in " + m_keeper.describe() + ": finish with `tagwarden push --resume " +
                             m_report.repository + "`)";
        } else if (!m_journal.tags.empty()) {
            if (auto r = m_keeper.remove(m_journal); !r)
                log::warn("could not remove the journal of run " + m_journal.run_id + ": " + r.error().message);
        }
        return std::unexpected(e);
    }

    const PushPlan& m_plan;
    registry::Client& m_client;
    const std::string& m_repo;
    const PushOptions& m_options;
    PushReport& m_report;
    JournalKeeper m_keeper;
    registry::WriteFence m_fence;
    Journal m_journal;
    std::optional<VerifyReport> m_checked;
};

} // namespace

Result<std::optional<Digest>> tag_digest(registry::Client& client, const std::string& repo, const std::string& tag) {
    auto info = client.head_manifest(repo, tag);
    if (!info) {
        auto e = info.error().with_context("checking whether tag '" + tag + "' exists");
        if (e.kind == ErrorKind::not_found)
            e.kind = ErrorKind::registry;
        return std::unexpected(e);
    }
    if (!*info)
        return std::optional<Digest>{};
    return std::optional<Digest>((*info)->digest);
}

Status journaled_tag_write(registry::Client& client, const std::string& repo, Journal& journal, JournalKeeper& keeper,
                           const std::string& tag, const image::Manifest& manifest, const registry::WriteFence& fence) {
    auto* jt = journal.find(tag);
    if (!jt)
        return fail(ErrorKind::internal, "tag " + tag + " is not in the journal of run " + journal.run_id);
    jt->written = true;  // from here on the write may have landed
    if (!journal.tags.empty())
        TW_TRY(keeper.save(journal));
    auto r = put_manifest_checked(client, repo, tag, manifest, fence);
    if (!r) {
        // A 4xx is the registry's refusal, and a lost lock stops the PUT unsent: nothing was written.
        // Without a definite answer (no response, 5xx) the write may have happened: undo it as if it had.
        auto status = r.error().http_status;
        if ((status >= 400 && status < 500) || r.error().kind == ErrorKind::lock_unavailable)
            jt->written = false;
        return r;
    }
    return {};
}

registry::WriteFence write_fence(lock::LockSet* locks, std::chrono::milliseconds timeout) {
    registry::WriteFence fence;
    fence.timeout = timeout;
    if (locks)
        fence.check = [locks, timeout]() { return locks->check_for(timeout); };
    return fence;
}

Result<PushReport> execute_push(const PushPlan& plan, image::ImageSource& source, registry::Client& client,
                                const std::string& repo, const PushOptions& options) {
    PushReport report;
    report.repository = client.registry() + "/" + repo;
    report.digest = plan.root.digest;
    report.media_type = plan.root.media_type;
    report.dry_run = options.dry_run;

    // 1. Tag preflight, before a single byte is uploaded.
    auto tag_plan = [&] {
        PhaseTimer timer(report.timings.guards);
        return plan_tags(client, repo, plan, options, report.repository);
    }();
    if (!tag_plan)
        return std::unexpected(tag_plan.error());

    // 2. Blobs, in parallel: skip what the registry has, upload the rest. Beside them, on their own
    // thread: the tag locks (taken now; the lock timeout runs only once the upload has ended), the tag
    // states again, now authoritative, and the caller's reads (the guarded write's image count and the
    // guards that need it). Whichever fails first stops the other: a refusal stops the upload, a failed
    // upload stops the wait for the locks. Nothing is tagged yet, so either has nothing to undo.
    using Clock = std::chrono::steady_clock;
    bool lock_tags = options.locks && !plan.tags.empty() && !options.dry_run;
    std::atomic<bool> stop_upload{false}, stop_beside{false}, upload_ended{false};
    std::atomic<int> first_failure{0};  // 1: the upload, 2: the work beside it
    Status uploaded, beside;
    auto upload_start = Clock::now(), upload_end = upload_start;
    auto lock_start = upload_start, lock_end = upload_start, beside_end = upload_start;
    (void)parallel_for(2, 2, [&](std::size_t part) -> Status {
        if (part == 0) {
            cancel::StopScope scope(stop_upload);
            upload_start = Clock::now();
            uploaded = transfer_blobs(plan, source, client, repo, options, report);
            upload_end = Clock::now();
            upload_ended = true;
            int none = 0;
            if (!uploaded && first_failure.compare_exchange_strong(none, 1))
                stop_beside = true;
            return {};
        }
        cancel::StopScope scope(stop_beside);
        beside = [&]() -> Status {
            lock_start = lock_end = Clock::now();
            if (lock_tags) {
                std::vector<std::string> keys;
                for (const auto& t : plan.tags)
                    keys.push_back(lock::tag_lock_key(client.registry(), repo, t));
                auto acquired = options.locks->acquire(keys, options.lock_timeout, [&] { return !upload_ended.load(); });
                lock_end = Clock::now();
                TW_TRY(acquired);
                tag_plan = plan_tags(client, repo, plan, options, report.repository);
                if (!tag_plan)
                    return std::unexpected(tag_plan.error());
            }
            if (options.beside_upload)
                TW_TRY(options.beside_upload());
            return {};
        }();
        beside_end = Clock::now();
        int none = 0;
        if (!beside && first_failure.compare_exchange_strong(none, 2))
            stop_upload = true;
        return {};
    });
    // The phases never overlap in the report: the upload is counted whole, the lock wait and the reads
    // beside it only for the time they outlasted it.
    auto outlasting = [&](Clock::time_point from, Clock::time_point to) {
        auto start = std::max(from, upload_end);
        return to > start ? to - start : Clock::duration{};
    };
    report.timings.upload += upload_end - upload_start;
    report.timings.lock_wait += outlasting(lock_start, lock_end);
    report.timings.guards += outlasting(lock_end, beside_end);
    // A cancelled run (signal, --timeout) says so, whichever side noticed first and however its error reads.
    if (cancel::should_stop())
        return std::unexpected(cancel::cancelled_error("before any manifest was written (nothing to undo)"));
    if (first_failure == 2) {
        auto e = beside.error();
        bool transferring = !options.dry_run && !options.blobs_present;
        if (transferring && e.kind != ErrorKind::cancelled) {
            auto finished = std::to_string(report.blobs.uploaded) + " blob(s) (" +
                            human_bytes(report.blobs.uploaded_bytes) + ")";
            if (uploaded)
                e.message += " (the " + finished + " uploaded stay in the registry, referenced by no manifest)";
            else if (report.blobs.uploaded == 0)
                e.message += " (the upload was stopped before any blob finished)";
            else
                e.message += " (the upload was stopped; " + finished + " finished before that and stay in the "
                             "registry, referenced by no manifest)";
        }
        return std::unexpected(e);
    }
    TW_TRY(uploaded);
    TW_TRY(beside);
    if (options.after_upload && !options.dry_run) {
        PhaseTimer timer(report.timings.guards);
        auto checked = options.after_upload();
        if (cancel::should_stop())
            return std::unexpected(cancel::cancelled_error("before any manifest was written (nothing to undo)"));
        TW_TRY(checked);
    }

    if (options.dry_run) {
        for (const auto& t : *tag_plan)
            report.tags.push_back({t.tag, t.action == TagAction::unchanged ? TagStatus::unchanged : TagStatus::planned,
                                   t.current});
        return report;
    }

    // 3. Manifests and tags, journaled, undone on failure; the verification inside is timed on its own.
    Writer writer(plan, client, repo, options, report);
    auto verify_before = report.timings.verify;
    auto writing = std::chrono::steady_clock::now();
    auto written = writer.run(std::move(*tag_plan));
    report.timings.manifests += std::chrono::steady_clock::now() - writing - (report.timings.verify - verify_before);
    TW_TRY(written);
    return report;
}

} // namespace tagwarden::push
