#pragma once

#include <tagwarden/core/digest.hpp>
#include <tagwarden/core/error.hpp>
#include <tagwarden/image/manifest.hpp>
#include <tagwarden/lock/lock.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace tagwarden::push {

// What a run that writes tags has done so far, kept in a lock::JournalStore (beside the lock for etcd and
// DynamoDB, so another runner can resume it; on disk for file://) so that `push --resume` can finish or
// undo a run that was killed half-way. Saved before the first manifest is written and after every write;
// removed when the run ends cleanly (done, or rolled back with nothing left to retry).
struct Journal {
    struct Tag {
        std::string tag;
        std::optional<Digest> previous;  // what the tag pointed to before (set only when overwriting)
        bool written = false;            // the PUT was sent (maybe landed)
    };
    // A manifest the run writes by digest (an index's children), with its bytes so a resume can write it.
    struct Child {
        Digest digest;
        std::string media_type;
        std::string bytes;
        bool created = false;  // this run wrote it (it was absent before)
    };

    std::string run_id;
    std::string registry;
    std::string repository;
    Digest digest;
    std::string media_type;
    std::string manifest;             // the root manifest bytes
    bool root_preexisting = false;    // the manifest existed before this run
    std::vector<Child> children;
    std::vector<Tag> tags;
    lock::LockOwner owner;

    [[nodiscard]] std::string name() const { return registry + "/" + repository; }
    [[nodiscard]] Result<image::Manifest> root() const;
    [[nodiscard]] std::vector<std::string> lock_keys() const;
    Tag* find(const std::string& tag);
};

std::string serialize_journal(const Journal& journal);
Result<Journal> parse_journal(const std::string& document);

// Keeps one run's journal in a store; a null store keeps nothing.
class JournalKeeper {
public:
    explicit JournalKeeper(lock::JournalStore* store, std::chrono::hours retention = std::chrono::hours(24 * 30))
        : m_store(store), m_retention(retention) {}
    [[nodiscard]] bool enabled() const { return m_store != nullptr; }
    Status save(const Journal& journal);
    Status remove(const Journal& journal);
    [[nodiscard]] std::string describe() const { return m_store ? m_store->describe() : std::string("nowhere"); }

private:
    lock::JournalStore* m_store;
    std::chrono::hours m_retention;
};

} // namespace tagwarden::push
