#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/http/transport.hpp>

#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <chrono>
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
    std::string ci_url;  // GitHub Actions run or CodeBuild build, when the environment says so
    [[nodiscard]] std::string describe() const;
    // The owner of this process: host name, pid, a fresh run id, and the CI run URL from GITHUB_* or
    // CODEBUILD_* variables.
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
Result<LockInfo> lock_info_from_json(const nlohmann::json& j);

// A held lock. Releasing is idempotent; the destructor releases.
class Lease {
public:
    virtual ~Lease() = default;
    [[nodiscard]] virtual const std::string& key() const = 0;
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
};

// Chooses the backend by URL scheme: file:///dir, etcd://host:port[,host:port], dynamodb://TABLE?region=R.
// `transport` is used by network backends.
Result<std::unique_ptr<LockBackend>> make_lock_backend(std::string_view url, std::shared_ptr<http::Transport> transport);

std::unique_ptr<LockBackend> make_file_backend(std::string directory);
Result<std::unique_ptr<LockBackend>> make_etcd_backend(std::string_view url, std::shared_ptr<http::Transport> transport);

// The default lock URL: file://${TMPDIR:-/tmp}/tagwarden-locks.
std::string default_lock_url();

// The lock key for a tag: "registry/repo:tag".
std::string tag_lock_key(std::string_view repository, std::string_view tag);

// Several locks held together, taken in sorted key order (so overlapping sets cannot deadlock), kept
// alive by one thread, and released together (also on destruction).
class LockSet {
public:
    LockSet(LockBackend& backend, LockOwner owner, std::chrono::seconds ttl);
    ~LockSet();
    LockSet(const LockSet&) = delete;
    LockSet& operator=(const LockSet&) = delete;

    // Acquires every key, retrying with jittered backoff until `timeout`. On failure releases what it
    // took and returns Error{lock_unavailable} naming the key and its holder.
    Status acquire(std::vector<std::string> keys, std::chrono::seconds timeout);
    // Fencing: ok only when every lease is still held (checked with the backend, not from memory).
    Status check();
    Status release();

private:
    void keep_alive();

    LockBackend& m_backend;
    LockOwner m_owner;
    std::chrono::seconds m_ttl;
    std::mutex m_mutex;
    std::vector<std::unique_ptr<Lease>> m_leases;
    std::optional<Error> m_lost;
    std::atomic<bool> m_stop{false};
    std::thread m_keeper;
};

} // namespace tagwarden::lock
