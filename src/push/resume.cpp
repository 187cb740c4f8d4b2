#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/push/execute.hpp>
#include <tagwarden/push/resume.hpp>

namespace tagwarden::push {

namespace {

struct Decision {
    bool can_finish = true;
    std::string reason;  // why it cannot be finished
};

// Reads every tag of the journal: a tag that points at the run's digest is written (maybe after the last
// journal save); one still at its previous state is not; anything else was moved by someone else.
Result<Decision> decide(Journal& journal, registry::Client& client) {
    Decision d;
    for (auto& t : journal.tags) {
        auto read = tag_digest(client, journal.repository, t.tag);
        if (!read)
            return std::unexpected(read.error());
        const auto& now = *read;
        if (now == journal.digest) {
            t.written = true;
            continue;
        }
        if (now == t.previous) {
            t.written = false;
            continue;
        }
        if (d.can_finish)
            d.reason = "tag " + journal.name() + ":" + t.tag + " now points at " +
                       (now ? now->str() : std::string("nothing")) + ", written by someone else after the run";
        d.can_finish = false;
    }
    return d;
}

} // namespace

Result<ResumeReport> resume_run(const Journal& original, registry::Client& client, const ResumeOptions& options) {
    ResumeReport report;
    report.run_id = original.run_id;
    report.repository = original.name();
    report.digest = original.digest;
    const auto& repo = original.repository;

    // 1. A journal whose run is alive (its locks are held by its own run id) is that run's business.
    std::optional<std::chrono::seconds> owner_ttl;
    if (options.backend) {
        auto held = options.backend->list();
        if (!held)
            return std::unexpected(held.error().with_context("listing the locks of " + options.backend->describe()));
        for (const auto& l : *held) {
            if (!l.held || original.run_id.empty() || l.owner.run_id != original.run_id)
                continue;
            if (!options.backend->spans_machines() || options.dry_run) {
                report.outcome = ResumeOutcome::skipped;
                report.reason = "its run still holds its locks: " + l.describe();
                log::info("run " + original.run_id + " left alone: " + report.reason);
                return report;
            }
            owner_ttl = std::max(owner_ttl.value_or(std::chrono::seconds(0)), l.ttl);
        }
    }

    Journal journal = original;
    if (options.dry_run) {
        auto d = decide(journal, client);
        if (!d)
            return std::unexpected(d.error());
        report.outcome = d->can_finish ? ResumeOutcome::would_finish : ResumeOutcome::would_undo;
        report.reason = d->reason;
        for (const auto& t : journal.tags)
            report.tags.push_back({t.tag, t.written ? TagStatus::unchanged : TagStatus::planned, t.previous});
        return report;
    }

    // 2. The tags' locks, then the journal again: its run may have ended while we waited.
    if (options.locks) {
        // A lease held by the journal's own run lapses within its TTL if that run is dead; a live run renews it.
        // Twice the TTL and 5 s more: a loaded etcd or DynamoDB may expire a lease late (seen at 1.5x on a
        // busy 2-core machine), and a dead run taken for alive leaves its tags half-written until next time.
        auto timeout = options.lock_timeout;
        if (owner_ttl)
            timeout = std::min(timeout, *owner_ttl * 2 + std::chrono::seconds(5));
        auto acquired = options.locks->acquire(journal.lock_keys(), timeout);
        if (!acquired) {
            if (owner_ttl && acquired.error().kind == ErrorKind::lock_unavailable) {
                report.outcome = ResumeOutcome::skipped;
                report.reason = "its run is alive: it kept renewing its lease for " + std::to_string(timeout.count()) + " s";
                log::info("run " + original.run_id + " left alone: " + report.reason);
                return report;
            }
            return std::unexpected(acquired.error());
        }
    }
    JournalKeeper keeper(options.journals);
    if (options.journals) {
        auto again = options.journals->get(journal.run_id);
        if (!again)
            return std::unexpected(again.error());
        if (!*again) {
            report.outcome = ResumeOutcome::skipped;
            report.reason = "its run ended while this resume waited for the locks";
            return report;
        }
        auto parsed = parse_journal((*again)->document);
        if (!parsed)
            return std::unexpected(parsed.error());
        journal = std::move(*parsed);
    }
    auto root = journal.root();
    if (!root)
        return std::unexpected(root.error());

    auto d = decide(journal, client);
    if (!d)
        return std::unexpected(d.error());
    auto fence = write_fence(options.locks, options.write_timeout);

    auto undo = [&](const std::string& why) -> Result<ResumeReport> {
        auto undone = undo_writes(client, journal,
                                  UndoOptions{options.locks, options.write_timeout, options.jobs});
        report.outcome = ResumeOutcome::undone;
        report.reason = why;
        report.tags = undone.tags;
        report.left = undone.left;
        if (undone.incomplete) {
            (void)keeper.save(journal);
            return fail(undone.lock_lost ? ErrorKind::lock_unavailable : ErrorKind::registry,
                        "run " + journal.run_id + " on " + journal.name() + " could not be undone completely (" + why +
                            ")" + undone.summary() + "; its journal is kept: run `tagwarden push --resume` again");
        }
        TW_TRY(keeper.remove(journal));
        log::info("run " + journal.run_id + " undone (" + why + ")" + undone.summary());
        return report;
    };

    if (!d->can_finish)
        return undo(d->reason);

    // 3. Finish: child manifests from the journal's bytes, then the tags still to write, then verify.
    for (auto& child : journal.children) {
        if (cancel::should_stop())
            return std::unexpected(cancel::cancelled_error("resuming run " + journal.run_id + " (journal kept)"));
        auto existing = client.head_manifest(repo, child.digest.str());
        if (!existing)
            return std::unexpected(existing.error());
        if (*existing)
            continue;
        auto manifest = image::parse_manifest(child.bytes, child.media_type);
        if (!manifest)
            return std::unexpected(manifest.error().with_context("journal of run " + journal.run_id));
        child.created = true;
        TW_TRY(keeper.save(journal));
        if (auto r = put_manifest_checked(client, repo, child.digest.str(), *manifest, fence); !r)
            return undo("writing child manifest " + child.digest.str() + " failed: " + r.error().message);
    }
    for (auto& t : journal.tags) {
        if (t.written) {
            report.tags.push_back({t.tag, TagStatus::unchanged, std::nullopt});
            continue;
        }
        if (cancel::should_stop())
            return std::unexpected(cancel::cancelled_error("resuming run " + journal.run_id + " (journal kept)"));
        auto current = tag_digest(client, repo, t.tag);
        if (!current)
            return std::unexpected(current.error());
        if (*current != t.previous)
            return undo("tag " + journal.name() + ":" + t.tag + " changed while this resume worked");
        if (auto r = journaled_tag_write(client, repo, journal, keeper, t.tag, *root, fence); !r) {
            auto undone = undo("writing tag " + t.tag + " failed: " + r.error().message);
            if (!undone)
                return undone;
            return std::unexpected(r.error().with_context("finishing run " + journal.run_id));
        }
        report.tags.push_back({t.tag, t.previous ? TagStatus::overwritten : TagStatus::created, t.previous});
    }
    auto v = verify_image(client, repo, journal.tags.empty() ? journal.digest.str() : journal.tags.front().tag,
                          journal.digest, options.jobs);
    if (!v)
        return undo("verification failed: " + v.error().message);
    TW_TRY(keeper.remove(journal));
    report.outcome = ResumeOutcome::finished;
    return report;
}

} // namespace tagwarden::push
