#pragma once

#include <tagwarden/lock/lock.hpp>
#include <tagwarden/push/journal.hpp>
#include <tagwarden/push/report.hpp>
#include <tagwarden/push/undo.hpp>
#include <tagwarden/registry/client.hpp>

#include <chrono>

namespace tagwarden::push {

struct ResumeOptions {
    lock::LockSet* locks = nullptr;        // the journal's tags are locked before anything is decided
    lock::LockBackend* backend = nullptr;  // to see whether the journal's own run still holds its locks
    lock::JournalStore* journals = nullptr;
    std::chrono::seconds lock_timeout{60};
    std::chrono::milliseconds write_timeout{15000};
    int jobs = 4;
    bool dry_run = false;                  // decide and report; write nothing (registry, journal, locks)
};

// Finishes or undoes the run of one journal:
// - a journal whose locks are held by its own (live) run is left alone (skipped): at once with file://
//   (flock ends with the process); with etcd/DynamoDB after waiting about one TTL for the lease to lapse
//   (a live run keeps renewing it; a dead one's lapses and the resume goes on);
// - otherwise its tags are locked and the journal is read again (a run that ended meanwhile: skipped);
// - it is finished (missing child manifests written from the journal's bytes, the remaining tags, then
//   verification) when every tag is still as the run left it, and undone (undo_writes rules) otherwise.
// The journal is removed when done, unless an undo is incomplete.
Result<ResumeReport> resume_run(const Journal& journal, registry::Client& client, const ResumeOptions& options);

} // namespace tagwarden::push
