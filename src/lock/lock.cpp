#include <tagwarden/lock/dynamodb_lock.hpp>
#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/ci.hpp>
#include <tagwarden/core/json_fields.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/strings.hpp>
#include <tagwarden/lock/lock.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <random>
#include <unistd.h>

namespace tagwarden::lock {

using nlohmann::json;

namespace {

std::string random_id() {
    std::random_device rd;
    std::mt19937_64 rng((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    char buffer[33];
    std::snprintf(buffer, sizeof buffer, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    return buffer;
}

} // namespace

LockOwner LockOwner::current() {
    LockOwner o;
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) == 0)
        o.host = host;
    o.pid = static_cast<long>(getpid());
    o.run_id = random_id();
    if (auto run = current_ci_run())
        o.ci_url = run->run_url;
    return o;
}

std::string LockOwner::describe() const {
    std::string s = "pid " + std::to_string(pid) + " on " + (host.empty() ? std::string("?") : host);
    if (!ci_url.empty())
        s += " (" + ci_url + ")";
    return s;
}

std::string LockInfo::describe() const {
    std::string s = key + " held by " + owner.describe() + " since " + format_utc(acquired);
    if (ttl.count() > 0)
        s += ", ttl " + std::to_string(ttl.count()) + "s";
    if (!held)
        s += " [stale: nobody holds it]";
    return s;
}

json to_json(const LockInfo& i) {
    return {{"key", i.key},
            {"owner", to_json(i.owner)},
            {"acquiredAt", format_utc(i.acquired)},
            {"acquiredEpoch", std::chrono::duration_cast<std::chrono::seconds>(i.acquired.time_since_epoch()).count()},
            {"ttlSeconds", i.ttl.count()},
            {"held", i.held}};
}

json to_json(const LockOwner& o) {
    return {{"host", o.host}, {"pid", o.pid}, {"runId", o.run_id}, {"ciUrl", o.ci_url}};
}

LockOwner lock_owner_from_json(const json& j) {
    LockOwner o;
    if (!j.is_object())
        return o;
    // A field of another type reads as absent, as in a record written by an older version.
    o.host = string_field(j, "host").value_or("");
    o.pid = static_cast<decltype(o.pid)>(int_field(j, "pid", 0).value_or(0));
    o.run_id = string_field(j, "runId").value_or("");
    o.ci_url = string_field(j, "ciUrl").value_or("");
    return o;
}

Result<LockInfo> lock_info_from_json(const json& j) {
    try {
        LockInfo i;
        i.key = j.at("key").get<std::string>();
        i.owner = lock_owner_from_json(j.at("owner"));
        i.acquired = Clock::time_point(std::chrono::seconds(j.value("acquiredEpoch", 0LL)));
        i.ttl = std::chrono::seconds(j.value("ttlSeconds", 0LL));
        i.held = j.value("held", true);
        return i;
    } catch (const json::exception& e) {
        return fail(ErrorKind::lock_unavailable, std::string("unreadable lock record: ") + e.what());
    }
}

std::string default_lock_url() {
    auto tmp = env_or_empty("TMPDIR");
    return "file://" + (tmp.empty() ? std::string("/tmp") : tmp) + "/tagwarden-locks";
}

std::string normalize_registry(std::string_view registry) {
    std::string host(registry);
    for (auto& c : host)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (host.ends_with(":443"))
        host.resize(host.size() - 4);
    if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "registry.hub.docker.com")
        host = "docker.io";
    return host;
}

std::string tag_lock_key(std::string_view registry, std::string_view repository, std::string_view tag) {
    return normalize_registry(registry) + "/" + std::string(repository) + ":" + std::string(tag);
}

Result<std::string> LockBackend::init() {
    return fail(ErrorKind::invalid_input, "tagwarden lock init does not apply to " + describe());
}

Error unreachable_error(std::string_view backend, const Error& cause) {
    Error e(ErrorKind::registry, "lock backend unreachable: " + std::string(backend) + ": " + cause.message +
                                     " (check that it runs and answers from this machine, and the lock URL: "
                                     "--lock, TAGWARDEN_LOCK or lock: in tagwarden.yaml)");
    e.transient = cause.transient;
    return e;
}

Error with_lock_context(const Error& error, const std::string& context) {
    if (error.kind == ErrorKind::registry && error.message.starts_with("lock backend unreachable: "))
        return error;
    return error.with_context(context);
}

namespace {

Result<std::unique_ptr<LockBackend>> file_backend_from_url(std::string_view url, std::shared_ptr<http::Transport>) {
    auto dir = url.substr(std::string_view("file://").size());
    if (dir.empty() || dir.front() != '/')
        return fail(ErrorKind::invalid_input,
                    "lock URL '" + std::string(url) + "' needs an absolute directory: file:///var/lock/tagwarden");
    return make_file_backend(std::string(dir));
}

struct BackendScheme {
    std::string_view scheme;  // with "://"
    std::string_view form;    // how the URL is written, for the usage error
    Result<std::unique_ptr<LockBackend>> (*factory)(std::string_view url, std::shared_ptr<http::Transport> transport);
};

constexpr BackendScheme k_backends[] = {
    {"file://", "file:///DIR", file_backend_from_url},
    {"etcd://", "etcd://HOST:PORT[,HOST:PORT][?tls=1]", make_etcd_backend},
    {"dynamodb://", "dynamodb://TABLE?region=R[&endpoint=URL]",
     [](std::string_view url, std::shared_ptr<http::Transport> transport) {
         return make_dynamodb_backend(url, std::move(transport));
     }},
};

} // namespace

Result<std::unique_ptr<LockBackend>> make_lock_backend(std::string_view url, std::shared_ptr<http::Transport> transport) {
    std::string forms;
    for (const auto& row : k_backends) {
        if (url.starts_with(row.scheme))
            return row.factory(url, std::move(transport));
        forms += (forms.empty() ? "" : ", ") + std::string(row.form);
    }
    return fail(ErrorKind::invalid_input, "unsupported lock URL '" + std::string(url) + "': use one of " + forms);
}

json to_json(const JournalRecord& r) {
    json out = {{"runId", r.run_id},
                {"owner", to_json(r.owner)},
                {"registry", ""},
                {"repository", ""},
                {"digest", ""},
                {"tags", json::array()},
                {"expiresAt", r.expires == Clock::time_point{} ? std::string() : format_utc(r.expires)}};
    try {
        auto doc = json::parse(r.document);
        out["registry"] = doc.value("registry", "");
        out["repository"] = doc.value("repository", "");
        out["digest"] = doc.value("digest", "");
        if (auto tags = doc.find("tags"); tags != doc.end() && tags->is_array())
            for (const auto& t : *tags)
                if (t.is_object() && t.contains("tag") && t["tag"].is_string())
                    out["tags"].push_back(t["tag"]);
    } catch (const json::exception& e) {
        out["error"] = std::string("unreadable journal: ") + e.what();
    }
    return out;
}

std::string describe(const JournalRecord& r) {
    auto j = to_json(r);
    auto target = j["registry"].get<std::string>() + "/" + j["repository"].get<std::string>();
    std::string s = "run " + r.run_id + " on " + target;
    if (!j["digest"].get<std::string>().empty())
        s += "@" + j["digest"].get<std::string>();
    std::string tags;
    for (const auto& t : j["tags"])
        tags += (tags.empty() ? "" : ", ") + t.get<std::string>();
    if (!tags.empty())
        s += " (tags " + tags + ")";
    s += " left by " + (r.owner.pid == 0 && r.owner.host.empty() ? std::string("an unknown owner") : r.owner.describe());
    if (r.expires != Clock::time_point{})
        s += ", expires " + format_utc(r.expires);
    if (j.contains("error"))
        return s + " [" + j["error"].get<std::string>() + ": inspect it before resuming]";
    return s + "; resume with: tagwarden push --resume " + target;
}

LockSet::LockSet(LockBackend& backend, LockOwner owner, std::chrono::seconds ttl)
    : m_backend(backend), m_owner(std::move(owner)), m_ttl(ttl) {}

LockSet::~LockSet() { (void)release(); }

Status LockSet::acquire(std::vector<std::string> keys, std::chrono::seconds timeout,
                        const std::function<bool()>& clock_paused) {
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    auto started = std::chrono::steady_clock::now();
    struct AddWait {
        std::chrono::milliseconds& total;
        std::chrono::steady_clock::time_point from;
        ~AddWait() { total += std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - from); }
    } add_wait{m_waited, started};
    auto deadline = started + timeout;
    thread_local std::mt19937_64 rng{std::random_device{}()};
    for (const auto& key : keys) {
        auto delay = std::chrono::milliseconds(100);
        bool waiting_logged = false;
        while (true) {
            if (cancel::should_stop()) {
                (void)release();
                return std::unexpected(cancel::cancelled_error("waiting for lock " + key));
            }
            // One attempt is a short exchange (etcd: lease grant, then the key; DynamoDB: one conditional
            // put) that a cancellation must not tear: a key written by the backend whose answer was cut off
            // would be held until its TTL with no lease here to release it. The loop checks again after it.
            auto lease = [&] {
                cancel::Shield whole_attempt;
                return m_backend.try_acquire(key, m_owner, m_ttl);
            }();
            if (lease) {
                std::lock_guard guard(m_mutex);
                m_leases.push_back(std::move(*lease));
                log::debug("lock acquired: " + key + " via " + m_backend.describe());
                break;
            }
            if (clock_paused && lease.error().kind == ErrorKind::lock_unavailable && clock_paused())
                deadline = std::chrono::steady_clock::now() + timeout;
            if (lease.error().kind != ErrorKind::lock_unavailable || std::chrono::steady_clock::now() >= deadline) {
                auto e = lease.error();
                (void)release();
                if (e.kind == ErrorKind::lock_unavailable)
                    e.message = "lock not acquired within " + std::to_string(timeout.count()) + "s: " + e.message +
                                " (raise --lock-timeout, or if the holder is gone for good: tagwarden lock release '" +
                                key + "' --force)";
                return std::unexpected(e);
            }
            if (!waiting_logged) {
                log::info("waiting for lock: " + lease.error().message);
                waiting_logged = true;
            }
            std::uniform_int_distribution<long long> jitter(delay.count() / 2, delay.count());
            auto sleep = std::chrono::milliseconds(jitter(rng));
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            cancel::sleep_for(std::max(std::chrono::milliseconds(1), std::min(sleep, left)));
            delay = std::min(delay * 2, std::chrono::milliseconds(2000));
        }
    }
    if (!m_keeper.joinable() && !m_leases.empty()) {
        m_stop = false;
        m_keeper = std::thread([this] { keep_alive(); });
    }
    return {};
}

void LockSet::keep_alive() {
    // Renew at a third of the TTL so two renewals can fail before the lease lapses.
    auto period = std::max(std::chrono::milliseconds(200),
                           std::chrono::duration_cast<std::chrono::milliseconds>(m_ttl) / 3);
    while (!m_stop) {
        auto until = std::chrono::steady_clock::now() + period;
        while (!m_stop && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (m_stop)
            return;
        std::lock_guard guard(m_mutex);
        for (auto& lease : m_leases) {
            Status r;
            try {
                r = lease->renew();
            } catch (const std::exception& e) {
                r = fail(ErrorKind::lock_unavailable, "renewing " + lease->key() + ": " + e.what());
            }
            if (!r && !m_lost) {
                m_lost = r.error();
                log::warn("lease lost: " + r.error().message);
            }
        }
    }
}

Status LockSet::check() {
    std::lock_guard guard(m_mutex);
    if (m_lost)
        return fail(ErrorKind::lock_unavailable, "lock lost while working: " + m_lost->message +
                                                     "; stopping before the next registry write");
    for (auto& lease : m_leases) {
        auto r = lease->check();
        if (!r)
            return fail(ErrorKind::lock_unavailable, "lock lost while working: " + r.error().message +
                                                         "; stopping before the next registry write");
    }
    return {};
}

Status LockSet::check_for(std::chrono::milliseconds needed) {
    {
        std::lock_guard guard(m_mutex);
        auto now = std::chrono::steady_clock::now();
        for (auto& lease : m_leases) {
            auto until = lease->valid_until();
            if (until != std::chrono::steady_clock::time_point::max() && until - now <= needed)
                return fail(ErrorKind::lock_unavailable,
                            "the lease on " + lease->key() + " has " +
                                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count()) +
                                " ms left, less than the " + std::to_string(needed.count()) +
                                " ms a write may take (renewals are failing); stopping before the write");
        }
    }
    return check();
}

std::vector<std::string> LockSet::keys() {
    std::lock_guard guard(m_mutex);
    std::vector<std::string> out;
    for (const auto& lease : m_leases)
        out.push_back(lease->key());
    return out;
}

Status LockSet::release() {
    // Runs after a cancelling signal too: the locks must be given back.
    cancel::Shield shield;
    m_stop = true;
    if (m_keeper.joinable())
        m_keeper.join();
    std::lock_guard guard(m_mutex);
    Status result;
    for (auto it = m_leases.rbegin(); it != m_leases.rend(); ++it) {
        auto r = (*it)->release();
        if (!r && result)
            result = r;
    }
    m_leases.clear();
    return result;
}

} // namespace tagwarden::lock
