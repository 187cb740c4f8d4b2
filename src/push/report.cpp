#include <tagwarden/core/strings.hpp>
#include <tagwarden/push/report.hpp>

#include <nlohmann/json.hpp>

namespace tagwarden::push {

std::string_view to_string(TagStatus status) {
    switch (status) {
    case TagStatus::created: return "created";
    case TagStatus::unchanged: return "unchanged";
    case TagStatus::overwritten: return "overwritten";
    case TagStatus::planned: return "planned";
    case TagStatus::removed: return "removed";
    case TagStatus::restored: return "restored";
    case TagStatus::left: return "left";
    }
    return "?";
}

std::string_view to_string(ResumeOutcome outcome) {
    switch (outcome) {
    case ResumeOutcome::finished: return "finished";
    case ResumeOutcome::undone: return "undone";
    case ResumeOutcome::skipped: return "skipped";
    case ResumeOutcome::would_finish: return "would-finish";
    case ResumeOutcome::would_undo: return "would-undo";
    }
    return "?";
}

std::string UndoReport::summary() const {
    std::string out;
    if (left.empty()) {
        out = done.empty() ? "; nothing of this run was written" : "; rolled back: no tag of this run remains";
        return out;
    }
    if (!done.empty())
        out += "; undone: " + join(done);
    out += lock_lost ? "; UNDO STOPPED (lock lost), left: " : incomplete ? "; ROLLBACK INCOMPLETE, left: " : "; left: ";
    for (std::size_t i = 0; i < left.size(); ++i)
        out += (i ? "; " : "") + left[i].what + " (" + left[i].reason + ")";
    return out;
}

namespace {

nlohmann::json tags_json(const std::vector<TagOutcome>& tags) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : tags) {
        nlohmann::json o = {{"tag", t.tag}, {"status", to_string(t.status)}};
        if (t.previous)
            o["previousDigest"] = t.previous->str();
        out.push_back(o);
    }
    return out;
}

double seconds_floor(PhaseTimings::Duration d) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) / 1000.0;
}

} // namespace

nlohmann::json to_json(const PhaseTimings& t) {
    return {{"guards", seconds_floor(t.guards)},
            {"lockWait", seconds_floor(t.lock_wait)},
            {"upload", seconds_floor(t.upload)},
            {"manifests", seconds_floor(t.manifests)},
            {"verify", seconds_floor(t.verify)}};
}

nlohmann::json to_json(const PushReport& r) {
    return {
        {"repository", r.repository},
        {"digest", r.digest.str()},
        {"mediaType", r.media_type},
        {"tags", tags_json(r.tags)},
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
        {"allOrNone", r.all_or_none},
        {"timings", to_json(r.timings)},
    };
}

nlohmann::json to_json(const VerifyReport& r) {
    return {
        {"repository", r.repository},     {"digest", r.digest.str()},         {"mediaType", r.media_type},
        {"tags", r.tags_checked},         {"manifests", r.manifests_checked}, {"blobs", r.blobs_checked},
        {"bytes", r.bytes_checked},       {"verified", true},
    };
}

nlohmann::json to_json(const ResumeReport& r) {
    nlohmann::json left = nlohmann::json::array();
    for (const auto& l : r.left)
        left.push_back({{"what", l.what}, {"reason", l.reason}});
    nlohmann::json out = {{"runId", r.run_id},
                          {"repository", r.repository},
                          {"digest", r.digest.str()},
                          {"outcome", to_string(r.outcome)},
                          {"tags", tags_json(r.tags)},
                          {"left", left}};
    if (!r.reason.empty())
        out["reason"] = r.reason;
    return out;
}

} // namespace tagwarden::push
