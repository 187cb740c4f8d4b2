#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/strings.hpp>
#include <tagwarden/core/parallel.hpp>
#include <tagwarden/push/execute.hpp>
#include <tagwarden/push/undo.hpp>
#include <tagwarden/image/manifest.hpp>

#include <algorithm>
#include <mutex>
#include <set>

namespace tagwarden::push {

namespace {

// A definite refusal (4xx): asking again will not help.
bool refused(const Error& e) { return e.http_status >= 400 && e.http_status < 500; }

class Undo {
public:
    Undo(registry::Client& client, const Journal& journal, const UndoOptions& options)
        : m_client(client), m_journal(journal), m_options(options),
          m_fence(write_fence(options.locks, options.write_timeout)) {}

    UndoReport run() {
        std::vector<const Journal::Tag*> written;
        for (auto it = m_journal.tags.rbegin(); it != m_journal.tags.rend(); ++it)
            if (it->written)
                written.push_back(&*it);

        // 1. Every tag this run wrote: put overwritten ones back, collect created ones still ours.
        std::vector<std::string> ours;  // created tags that still point at the run's digest
        for (const auto* t : written) {
            if (m_stopped) {
                leave_tag(t->tag, m_stop_reason, true);
                continue;
            }
            auto head = m_client.head_manifest(repo(), t->tag);
            if (!head) {
                leave_tag(t->tag, "could not read it: " + head.error().message, true);
                continue;
            }
            std::optional<Digest> now;
            if (*head)
                now = (*head)->digest;
            if (now != m_journal.digest) {
                if (now == t->previous)
                    continue;  // the write never landed
                leave_tag(t->tag, now ? "it now points at " + now->str() + ", written by someone else after this run"
                                      : "someone else deleted it after this run wrote it",
                          false);
                continue;
            }
            if (t->previous)
                restore(*t);
            else
                ours.push_back(t->tag);
        }

        // 2. Created tags: deleted one by one where the registry allows it.
        std::vector<std::string> remaining;
        std::string tag_delete_refusal;
        for (const auto& tag : ours) {
            if (m_stopped) {
                leave_tag(tag, m_stop_reason, true);
                continue;
            }
            auto r = m_client.delete_manifest(repo(), tag, m_fence);
            if (r || r.error().kind == ErrorKind::not_found) {
                removed_tag(tag);
            } else if (lost(r.error())) {
                leave_tag(tag, m_stop_reason, true);
            } else {
                tag_delete_refusal = r.error().message;
                remaining.push_back(tag);
            }
        }

        // 3. The run's own manifest, by digest, when nothing but this run's tags points at it.
        if (!m_stopped && !m_journal.root_preexisting)
            remove_manifest(remaining, tag_delete_refusal);
        else if (!remaining.empty())
            for (const auto& tag : remaining)
                leave_tag(tag,
                          m_stopped ? m_stop_reason
                                    : "the registry does not delete a single tag (" + tag_delete_refusal +
                                          "), and the manifest was in the repository before this run, so it stays",
                          true);
        return std::move(m_report);
    }

private:
    const std::string& repo() const { return m_journal.repository; }
    std::string shown(const std::string& tag) const { return "tag " + m_journal.name() + ":" + tag; }
    std::string shown_manifest(const Digest& d) const { return "manifest " + m_journal.name() + "@" + d.str(); }

    bool lost(const Error& e) {
        if (e.kind != ErrorKind::lock_unavailable)
            return false;
        m_stopped = true;
        m_report.lock_lost = true;
        m_stop_reason = "not undone: the lock was lost (" + e.message + ")";
        return true;
    }

    void leave_tag(const std::string& tag, const std::string& reason, bool incomplete) {
        m_report.left.push_back({shown(tag), reason});
        m_report.tags.push_back({tag, TagStatus::left, std::nullopt});
        m_report.incomplete = m_report.incomplete || incomplete;
        log::warn("left " + shown(tag) + ": " + reason);
    }

    void removed_tag(const std::string& tag) {
        m_report.done.push_back("removed " + shown(tag));
        m_report.tags.push_back({tag, TagStatus::removed, std::nullopt});
        log::info("undo: removed " + shown(tag));
    }

    void restore(const Journal::Tag& t) {
        auto old = m_client.get_manifest(repo(), t.previous->str());
        if (!old) {
            leave_tag(t.tag, "its previous manifest " + t.previous->str() + " cannot be read: " + old.error().message,
                      true);
            return;
        }
        auto r = m_client.put_manifest(repo(), t.tag, *old, m_fence);
        if (!r) {
            if (!lost(r.error()))
                leave_tag(t.tag, "restoring it to " + t.previous->str() + " failed: " + r.error().message, true);
            else
                leave_tag(t.tag, m_stop_reason, true);
            return;
        }
        m_report.done.push_back("restored " + shown(t.tag) + " to " + t.previous->str());
        m_report.tags.push_back({t.tag, TagStatus::restored, t.previous});
        log::info("undo: restored " + shown(t.tag) + " to " + t.previous->str());
    }

    void remove_manifest(const std::vector<std::string>& remaining, const std::string& tag_delete_refusal) {
        const auto& digest = m_journal.digest;
        auto exists = m_client.head_manifest(repo(), digest.str());
        if (!exists) {
            for (const auto& tag : remaining)
                leave_tag(tag, "could not check the manifest: " + exists.error().message, true);
            return;
        }
        if (!*exists) {
            for (const auto& tag : remaining)
                removed_tag(tag);
            return;
        }
        auto pointing = tags_pointing_at(m_client, repo(), digest, m_options.jobs);
        if (!pointing) {
            for (const auto& tag : remaining)
                leave_tag(tag, "could not list the tags on its manifest: " + pointing.error().message, true);
            m_report.left.push_back({shown_manifest(digest), "could not list its tags: " + pointing.error().message});
            m_report.incomplete = true;
            return;
        }
        std::vector<std::string> others;
        for (const auto& tag : *pointing)
            if (std::find(remaining.begin(), remaining.end(), tag) == remaining.end())
                others.push_back(tag);
        if (!others.empty()) {
            // Someone else's tag (a promotion of the same digest, another run's push) keeps the manifest.
            for (const auto& tag : remaining)
                leave_tag(tag,
                          "the registry does not delete a single tag (" + tag_delete_refusal +
                              "), and deleting the manifest would also remove " + join(others) +
                              ", which this run did not write",
                          true);
            if (!remaining.empty() || !m_journal.children.empty())
                log::info("undo: kept " + shown_manifest(digest) + ": it carries " + join(others));
            return;
        }
        auto r = m_client.delete_manifest(repo(), digest.str(), m_fence);
        if (r || r.error().kind == ErrorKind::not_found) {
            for (const auto& tag : remaining)
                removed_tag(tag);
            m_report.done.push_back("removed " + shown_manifest(digest));
            log::info("undo: removed " + shown_manifest(digest));
            keep_children();
            return;
        }
        if (lost(r.error())) {
            for (const auto& tag : remaining)
                leave_tag(tag, m_stop_reason, true);
            m_report.left.push_back({shown_manifest(digest), m_stop_reason});
            return;
        }
        bool definite = refused(r.error());
        std::string reason = "the registry refused to delete the manifest: " + r.error().message +
                             (definite ? " (enable deletes in the registry, or remove it by hand)" : "");
        for (const auto& tag : remaining)
            leave_tag(tag, reason, true);
        m_report.left.push_back({shown_manifest(digest), reason});
    }

    // Children this run wrote stay: another index in the repository may share them.
    void keep_children() {
        for (const auto& c : m_journal.children) {
            if (!c.created)
                continue;
            m_report.left.push_back({shown_manifest(c.digest),
                                     "kept on purpose: another index may reference this child manifest; it is "
                                     "untagged, so the lifecycle policy's untagged rule expires it"});
        }
    }

    registry::Client& m_client;
    const Journal& m_journal;
    const UndoOptions& m_options;
    registry::WriteFence m_fence;
    UndoReport m_report;
    bool m_stopped = false;
    std::string m_stop_reason;
};

} // namespace

UndoReport undo_writes(registry::Client& client, const Journal& journal, const UndoOptions& options) {
    cancel::Shield shield;
    return Undo(client, journal, options).run();
}

Result<std::vector<std::string>> tags_pointing_at(registry::Client& client, const std::string& repo,
                                                  const Digest& digest, int jobs) {
    auto tags = client.list_tags(repo);
    if (!tags)
        return std::unexpected(tags.error());
    std::mutex mutex;
    std::vector<std::string> out;
    TW_TRY(parallel_for(tags->size(), jobs, [&](std::size_t i) -> Status {
        const auto& tag = (*tags)[i];
        auto head = client.head_manifest(repo, tag);
        if (!head)
            return std::unexpected(head.error().with_context("reading tag " + tag));
        if (!*head)
            return {};
        if ((*head)->digest == digest) {
            std::lock_guard lock(mutex);
            out.push_back(tag);
            return {};
        }
        // An index under another tag that lists the digest as one of its manifests needs it too.
        if (!image::is_index_media_type((*head)->media_type))
            return {};
        auto index = client.get_manifest(repo, (*head)->digest.str());
        if (!index)
            return std::unexpected(index.error().with_context("reading the index under tag " + tag));
        if (index->index)
            for (const auto& child : index->index->manifests)
                if (child.digest == digest) {
                    std::lock_guard lock(mutex);
                    out.push_back(tag + " (an index that lists it)");
                    break;
                }
        return {};
    }));
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace tagwarden::push
