#pragma once

#include <tagwarden/lock/lock.hpp>
#include <tagwarden/push/journal.hpp>
#include <tagwarden/push/report.hpp>
#include <tagwarden/registry/client.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace tagwarden::push {

struct UndoOptions {
    lock::LockSet* locks = nullptr;                  // checked before every undo write
    std::chrono::milliseconds write_timeout{15000};  // bound of one undo write; the lease must outlast it
    int jobs = 4;
};

// Undoes what the journal's run wrote, and only that, under cancel::Shield (it runs after a signal too):
// - before each undo write the lock must still be held with time to spare; if not, nothing more is undone
//   (lock_lost);
// - a tag is acted on only if it still points at the run's digest: an overwritten tag is put back to its
//   previous manifest, a created tag is deleted by tag where the registry allows it;
// - the run's manifest is deleted by digest only when the run created it, no tag outside the run's
//   writes points at it (a promotion of the same digest keeps it), and no tagged index lists it;
// - child manifests are never deleted (another index may share them): kept, and reported.
// Everything not undone is in UndoReport::left with its reason.
UndoReport undo_writes(registry::Client& client, const Journal& journal, const UndoOptions& options);

// Every tag of the repository that needs `digest`: tags pointing at it, and tags of indexes that list it
// (named "TAG (an index that lists it)"), from the tag list and a HEAD per tag (GET for indexes), in
// parallel. An untagged index that lists the digest cannot be seen this way: the window is documented.
Result<std::vector<std::string>> tags_pointing_at(registry::Client& client, const std::string& repo, const Digest& digest,
                                                  int jobs);

} // namespace tagwarden::push
