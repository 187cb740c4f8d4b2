#pragma once

#include <tagwarden/core/digest.hpp>
#include <tagwarden/core/error.hpp>

#include <optional>
#include <string>
#include <vector>

namespace tagwarden::push {

// What a run that writes tags has done so far, kept on disk so that a later `push --resume` can finish
// or undo a run that was killed half-way. Saved before the first manifest is written, after every
// write, and removed when the run ends cleanly (done or rolled back).
struct Journal {
    struct Tag {
        std::string tag;
        std::optional<Digest> previous;  // what the tag pointed to before (set only when overwriting)
        bool written = false;
    };

    std::string run_id;
    std::string registry;
    std::string repository;
    Digest digest;
    std::string media_type;
    std::string manifest;             // the root manifest bytes, so a resume can write the tags
    bool root_preexisting = false;    // the manifest existed before this run (then it is never deleted)
    std::vector<Digest> children_created;
    std::vector<Tag> tags;
    std::string path;                 // where it is stored (not serialized)

    [[nodiscard]] std::string name() const { return registry + "/" + repository; }
};

// Writes the journal atomically (temporary file + rename) into `directory`/journal/<run_id>.json.
Status save_journal(Journal& journal, const std::string& directory);
Result<Journal> load_journal(const std::string& path);
void remove_journal(const Journal& journal);
// Paths of every journal in `directory`/journal.
std::vector<std::string> list_journals(const std::string& directory);

} // namespace tagwarden::push
