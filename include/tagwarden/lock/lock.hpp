#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/http/transport.hpp>

#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tagwarden::lock {

using Clock = std::chrono::system_clock;

// Who holds a lock: enough for an operator to find the pipeline run.
struct LockOwner {
    std::string host;
    long pid = 0;
    std::string run_id;  // unique per tagwarden run
    std::string ci_url;  // GitHub Actions run, CodeBuild build or GitLab job, when the environment says so
    [[nodiscard]] std::string describe() const;
    // The owner of this process: host name, pid, a fresh run id, and the CI run URL (current_ci_run():
    // GitHub Actions, CodeBuild, GitLab CI).
    static LockOwner current();
};

struct LockInfo {
    std::string key;
    LockOwner owner;
    Clock::time_point acquired;
    std::chrono::seconds ttl{0};
    bool held = true;  // false for a stale record (file backend: nobody holds the flock)
    [[nodiscard]] std::string describe() const;
};

nlohmann::json to_json(const LockInfo& info);
// {"host", "pid", "runId", "ciUrl"}, as every lock record and journal stores its owner; absent fields read empty.
nlohmann::json to_json(const LockOwner& owner);
LockOwner lock_owner_from_json(const nlohmann::json& j);
Result<LockInfo> lock_info_from_json(const nlohmann::json& j);

// A run's journal as a backend stores it: the document is the push area's JSON (opaque here).
struct JournalRecord {
    std::string run_id;
    std::string document;
    LockOwner owner;
    Clock::time_point expires;  // after this the record may be dropped (DynamoDB TTL); shown by `lock list`
};

// A run left behind as `tagwarden lock list` shows it: {"runId", "owner": {host, pid, runId, ciUrl},
// "registry", "repository", "digest", "tags": [names], "expiresAt"}. The registry, repository, digest and
// tags are read from the document (the push journal's fields); an unreadable document leaves them empty
// and adds "error". "expiresAt" is empty when the record has no expiry (a journal of an older version).
nlohmann::json to_json(const JournalRecord& record);
// One line: "run ID on REG/REPO@sha256:... (tags a, b) left by pid N on HOST (CI URL), expires T; resume
// with: tagwarden push --resume REG/REPO".
std::string describe(const JournalRecord& record);

// Where journals of runs live, so that `push --resume` can find a run that another process (or another
// machine, for network backends) left half-done. Writes are durable when they return.
class JournalStore {
public:
    virtual ~JournalStore() = default;
    [[nodiscard]] virtual std::string describe() const = 0;
    // Creates or replaces the record of record.run_id.
    virtual Status put(const JournalRecord& record) = 0;
    // The record, or nullopt when there is none (finished, undone, or never written).
    virtual Result<std::optional<JournalRecord>> get(const std::string& run_id) = 0;
    virtual Result<std::vector<JournalRecord>> list() = 0;
    // Removing an absent record is not an error.
    virtual Status remove(const std::string& run_id) = 0;
};

// Journals as files DIRECTORY/journal/<run_id>.json (written to a temporary file, fsync'ed, renamed, and
// the directory fsync'ed). For the file lock backend: one machine.
std::unique_ptr<JournalStore> make_file_journal_store(std::string directory);

// A held lock. Releasing is idempotent; the destructor releases.
class Lease {
public:
    virtual ~Lease() = default;
    [[nodiscard]] virtual const std::string& key() const = 0;
    // Until when the lease is known to hold without another renewal: the start of the last successful
    // acquire or renew request plus the TTL (steady clock). time_point::max() for a lease that cannot
    // lapse while this process lives (flock).
    [[nodiscard]] virtual std::chrono::steady_clock::time_point valid_until() const = 0;
    // Extends the lease (etcd keep-alive, DynamoDB heartbeat). Returns Error{lock_unavailable} when the
    // lease is gone (expired, revoked or taken over).
    virtual Status renew() = 0;
    // Fencing: returns ok only if this process still holds the lock right now.
    virtual Status check() = 0;
    virtual Status release() = 0;
};

class LockBackend {
public:
    virtual ~LockBackend() = default;
    [[nodiscard]] virtual std::string describe() const = 0;
    // Tries once. Returns the lease, or Error{lock_unavailable} whose message names the holder.
    virtual Result<std::unique_ptr<Lease>> try_acquire(const std::string& key, const LockOwner& owner,
                                                      std::chrono::seconds ttl) = 0;
    // Every lock record the backend has.
    virtual Result<std::vector<LockInfo>> list() = 0;
    // Removes a lock whoever holds it; the holder's next check() fails. Returns Error{not_found} if absent.
    virtual Status force_release(const std::string& key) = 0;
    // Whether two machines using the same URL share the locks (etcd, DynamoDB); false for file://.
    [[nodiscard]] virtual bool spans_machines() const = 0;
    // The store for journals beside the locks (etcd keys, DynamoDB items); null for file:// (journals then
    // stay on the machine, in the state directory).
    virtual std::unique_ptr<JournalStore> journal_store() { return nullptr; }
    // Prepares the backend for use (`tagwarden lock init`): DynamoDB creates the table (on-demand billing,
    // TTL on ExpiresAt) if missing; file creates the 0700 directory; etcd only checks it answers.
    // Returns a line saying what it did.
    virtual Result<std::string> init();
};

// The error for a backend that produced no answer (connection refused, timeout, DNS): Error{registry}
// "lock backend unreachable: BACKEND: CAUSE", with the fix.
Error unreachable_error(std::string_view backend, const Error& cause);
// `error` with "context: " prefixed, except an unreachable_error, whose message keeps its prefix.
Error with_lock_context(const Error& error, const std::string& context);

// Chooses the backend by URL scheme (one table: file:///dir, etcd://host:port[,host:port],
// dynamodb://TABLE?region=R). `transport` is used by network backends.
// A backend that cannot be reached answers with Error{registry} whose message starts with
// "lock backend unreachable" (exit 8), never with lock_unavailable (which means: someone holds it).
Result<std::unique_ptr<LockBackend>> make_lock_backend(std::string_view url, std::shared_ptr<http::Transport> transport);

// flock(2) on DIRECTORY/<file_lock_name(key)>; the directory is created 0700 and must belong to the user
// and not be writable by group or others.
std::unique_ptr<LockBackend> make_file_backend(std::string directory);
// The lock file's name for `key`: its percent-encoding + ".lock" when that fits in 200 bytes, else a
// readable prefix of it, "-", the sha256 hex of the key, ".lock" (the key itself is in the file).
std::string file_lock_name(std::string_view key);
Result<std::unique_ptr<LockBackend>> make_etcd_backend(std::string_view url, std::shared_ptr<http::Transport> transport);

// The default lock URL: file://${TMPDIR:-/tmp}/tagwarden-locks.
std::string default_lock_url();

// The registry host as lock keys spell it: lower case, the default HTTPS port dropped ("r.io:443" ->
// "r.io"), Docker Hub's aliases (index.docker.io, registry-1.docker.io) -> "docker.io".
std::string normalize_registry(std::string_view registry);

// The lock key for a tag: "registry/repo:tag", the registry normalised (two spellings of one registry
// share a lock).
std::string tag_lock_key(std::string_view registry, std::string_view repository, std::string_view tag);

// Several locks held together, taken in sorted key order (so overlapping sets cannot deadlock), kept
// alive by one thread, and released together (also on destruction).
class LockSet {
public:
    LockSet(LockBackend& backend, LockOwner owner, std::chrono::seconds ttl);
    ~LockSet();
    LockSet(const LockSet&) = delete;
    LockSet& operator=(const LockSet&) = delete;

    // Acquires every key, retrying with jittered backoff until `timeout`. On failure releases what it
    // took and returns Error{lock_unavailable} naming the key and its holder. While `clock_paused`
    // returns true the timeout does not run (the caller still has other work in flight, e.g. uploads):
    // the wait is only ever cut short by the time spent waiting after that work ended.
    Status acquire(std::vector<std::string> keys, std::chrono::seconds timeout,
                   const std::function<bool()>& clock_paused = {});
    // Fencing: ok only when every lease is still held (checked with the backend, not from memory).
    Status check();
    // Fencing for a write that may take up to `needed`: ok only when every lease is still held (as
    // check()) and is known to stay valid for longer than `needed` (Lease::valid_until()).
    Status check_for(std::chrono::milliseconds needed);
    // The keys held now.
    [[nodiscard]] std::vector<std::string> keys();
    [[nodiscard]] LockBackend& backend() { return m_backend; }
    [[nodiscard]] const LockOwner& owner() const { return m_owner; }
    [[nodiscard]] std::chrono::seconds ttl() const { return m_ttl; }
    // Time spent in acquire() so far, waiting included (reports: "lock wait").
    [[nodiscard]] std::chrono::milliseconds waited() const { return m_waited; }
    Status release();

private:
    void keep_alive();

    LockBackend& m_backend;
    LockOwner m_owner;
    std::chrono::seconds m_ttl;
    std::chrono::milliseconds m_waited{0};
    std::mutex m_mutex;
    std::vector<std::unique_ptr<Lease>> m_leases;
    std::optional<Error> m_lost;
    std::atomic<bool> m_stop{false};
    std::thread m_keeper;
};

} // namespace tagwarden::lock
