// Locks in etcd through its v3 HTTP/JSON gateway: a lease per lock, a transaction that creates the key
// only if it does not exist (create_revision == 0), keep-alive while held, revoke on release.
// A holder that dies stops renewing; etcd deletes its key when the lease's TTL runs out.
#include "stored_journal.hpp"

#include <tagwarden/core/base64.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/lock/lock.hpp>

#include <nlohmann/json.hpp>

namespace tagwarden::lock {

namespace {

using nlohmann::json;

constexpr std::string_view k_key_prefix = "tagwarden/locks/";
constexpr std::string_view k_journal_prefix = "tagwarden/journals/";
// etcd refuses requests over --max-request-bytes (1.5 MiB by default); values travel base64-encoded.
constexpr std::size_t k_max_journal_bytes = 1024 * 1024;

class EtcdClient {
public:
    EtcdClient(std::vector<std::string> endpoints, std::shared_ptr<http::Transport> transport)
        : m_endpoints(std::move(endpoints)), m_transport(std::move(transport)) {}

    // POSTs `body` to /v3/<path> on the first endpoint that answers. No endpoint answering is
    // unreachable_error (Error{registry}); an answer other than 200 is Error{registry} with its status.
    Result<json> call(const std::string& path, const json& body) {
        Error last(ErrorKind::internal, "no etcd endpoint configured");
        for (const auto& endpoint : m_endpoints) {
            http::Request req;
            req.method = "POST";
            req.url = endpoint + "/v3/" + path;
            req.headers.set("Content-Type", "application/json");
            req.body = std::make_shared<http::StringBody>(body.dump());
            auto r = m_transport->send(req);
            if (!r) {
                last = r.error();
                continue;
            }
            if (r->status != 200) {
                std::string message = r->body;
                try {
                    auto doc = json::parse(r->body);
                    message = doc.value("message", doc.value("error", r->body));
                } catch (const json::exception&) {
                }
                Error e(ErrorKind::registry, "etcd at " + endpoint + " answered HTTP " + std::to_string(r->status) +
                                                 " to " + path + ": " + message);
                e.http_status = r->status;
                return std::unexpected(e);
            }
            try {
                return json::parse(r->body);
            } catch (const json::exception&) {
                return fail(ErrorKind::registry, "etcd at " + endpoint + " answered " + path +
                                                     " with something that is not JSON: is it etcd's v3 gateway?");
            }
        }
        return std::unexpected(unreachable_error(describe(), last));
    }

    [[nodiscard]] std::string describe() const {
        std::string s = "etcd://";
        for (std::size_t i = 0; i < m_endpoints.size(); ++i) {
            auto e = m_endpoints[i];
            s += (i ? "," : "") + e.substr(e.find("://") + 3);
        }
        return s;
    }

private:
    std::vector<std::string> m_endpoints;
    std::shared_ptr<http::Transport> m_transport;
};

// etcd's JSON gateway writes int64 fields as strings ("TTL": "30"); absent means 0.
long long etcd_int(const json& object, const char* field) {
    auto it = object.find(field);
    if (it == object.end())
        return 0;
    if (it->is_number_integer())
        return it->get<long long>();
    if (!it->is_string())
        return 0;
    try {
        return std::stoll(it->get<std::string>());
    } catch (const std::exception&) {
        return 0;
    }
}

std::string etcd_key(const std::string& key) { return base64_encode(std::string(k_key_prefix) + key); }

std::string holder_message(const std::string& key, const json& kv) {
    try {
        auto value = base64_decode(kv.value("value", ""));
        if (value) {
            auto info = lock_info_from_json(json::parse(*value));
            if (info)
                return info->describe();
        }
    } catch (const json::exception&) {
    }
    return key + " is held by another process";
}

class EtcdLease final : public Lease {
public:
    EtcdLease(std::shared_ptr<EtcdClient> client, std::string key, std::string lease_id, std::chrono::seconds ttl,
              std::chrono::steady_clock::time_point requested)
        : m_client(std::move(client)), m_key(std::move(key)), m_lease_id(std::move(lease_id)), m_ttl(ttl),
          m_valid_until(requested + ttl) {}
    ~EtcdLease() override { (void)release(); }

    [[nodiscard]] const std::string& key() const override { return m_key; }
    [[nodiscard]] std::chrono::steady_clock::time_point valid_until() const override { return m_valid_until; }

    Status renew() override {
        if (m_released)
            return fail(ErrorKind::lock_unavailable, m_key + " was released");
        auto requested = std::chrono::steady_clock::now();
        auto r = m_client->call("lease/keepalive", {{"ID", m_lease_id}});
        if (!r && r.error().http_status != 0)
            return fail(ErrorKind::lock_unavailable, "the etcd lease of " + m_key + " is gone: " + r.error().message);
        if (!r)
            return std::unexpected(r.error());
        auto result = r->value("result", json::object());
        auto granted = etcd_int(result, "TTL");
        if (granted <= 0)
            return fail(ErrorKind::lock_unavailable, "the etcd lease of " + m_key + " expired");
        m_valid_until = requested + std::min(m_ttl, std::chrono::seconds(granted));
        return {};
    }

    Status check() override {
        if (m_released)
            return fail(ErrorKind::lock_unavailable, m_key + " was released");
        auto r = m_client->call("kv/range", {{"key", etcd_key(m_key)}});
        if (!r)
            return std::unexpected(r.error());
        auto kvs = r->value("kvs", json::array());
        if (kvs.empty())
            return fail(ErrorKind::lock_unavailable, m_key + " no longer exists in etcd (lease expired or force-released)");
        if (kvs[0].value("lease", std::string()) != m_lease_id)
            return fail(ErrorKind::lock_unavailable, m_key + " now belongs to " + holder_message(m_key, kvs[0]));
        return {};
    }

    Status release() override {
        if (m_released)
            return {};
        m_released = true;
        // Revoking the lease deletes the key attached to it.
        auto r = m_client->call("lease/revoke", {{"ID", m_lease_id}});
        if (!r && r.error().http_status == 404) {
            // "requested lease not found": it expired, and its key went with it.
            log::warn("the lock " + m_key + " was no longer held at release (its etcd lease had expired)");
            return {};
        }
        if (!r)
            return std::unexpected(r.error());
        return {};
    }

private:
    std::shared_ptr<EtcdClient> m_client;
    std::string m_key;
    std::string m_lease_id;
    std::chrono::seconds m_ttl;
    std::chrono::steady_clock::time_point m_valid_until;
    bool m_released = false;
};

std::string range_end_of(std::string prefix) {
    prefix.back() = static_cast<char>(prefix.back() + 1);
    return prefix;
}

// Journals as keys tagwarden/journals/<run_id> (no lease: a journal outlives its run), value the stored
// journal JSON.
class EtcdJournalStore final : public JournalStore {
public:
    explicit EtcdJournalStore(std::shared_ptr<EtcdClient> client) : m_client(std::move(client)) {}

    [[nodiscard]] std::string describe() const override { return m_client->describe() + " (" + std::string(k_journal_prefix) + ")"; }

    Status put(const JournalRecord& record) override {
        if (!valid_run_id(record.run_id))
            return fail(ErrorKind::internal, "invalid run id '" + record.run_id + "' for a journal");
        auto value = stored_journal_json(record).dump();
        if (value.size() > k_max_journal_bytes)
            return fail(ErrorKind::invalid_input,
                        "the journal of run " + record.run_id + " is " + std::to_string(value.size() / 1024) +
                            " KiB, more than the " + std::to_string(k_max_journal_bytes / 1024) +
                            " KiB an etcd value may hold here: push this image with a file:// lock, or raise etcd's "
                            "--max-request-bytes");
        auto r = m_client->call("kv/put", {{"key", key_of(record.run_id)}, {"value", base64_encode(value)}});
        if (!r)
            return std::unexpected(with_lock_context(r.error(), "writing the journal of run " + record.run_id));
        return {};
    }

    Result<std::optional<JournalRecord>> get(const std::string& run_id) override {
        if (!valid_run_id(run_id))
            return std::optional<JournalRecord>{};
        auto r = m_client->call("kv/range", {{"key", key_of(run_id)}});
        if (!r)
            return std::unexpected(with_lock_context(r.error(), "reading the journal of run " + run_id));
        auto kvs = r->value("kvs", json::array());
        if (kvs.empty())
            return std::optional<JournalRecord>{};
        auto record = parse(kvs[0]);
        if (!record)
            return std::unexpected(record.error());
        return std::optional<JournalRecord>(std::move(*record));
    }

    Result<std::vector<JournalRecord>> list() override {
        std::string prefix(k_journal_prefix);
        auto r = m_client->call("kv/range",
                                {{"key", base64_encode(prefix)}, {"range_end", base64_encode(range_end_of(prefix))}});
        if (!r)
            return std::unexpected(with_lock_context(r.error(), "listing journals"));
        std::vector<JournalRecord> out;
        for (const auto& kv : r->value("kvs", json::array())) {
            auto record = parse(kv);
            if (!record) {
                log::warn(record.error().message);
                continue;
            }
            out.push_back(std::move(*record));
        }
        return out;
    }

    Status remove(const std::string& run_id) override {
        if (!valid_run_id(run_id))
            return {};
        auto r = m_client->call("kv/deleterange", {{"key", key_of(run_id)}});
        if (!r)
            return std::unexpected(with_lock_context(r.error(), "removing the journal of run " + run_id));
        return {};
    }

private:
    static std::string key_of(const std::string& run_id) { return base64_encode(std::string(k_journal_prefix) + run_id); }

    Result<JournalRecord> parse(const json& kv) const {
        auto key = base64_decode(kv.value("key", "")).value_or("?");
        auto where = "the journal " + key + " in " + m_client->describe();
        auto value = base64_decode(kv.value("value", ""));
        if (!value)
            return fail(ErrorKind::invalid_input, where + " is not base64: inspect it, then remove it by hand");
        try {
            return journal_from_stored_json(json::parse(*value), where);
        } catch (const json::exception& e) {
            return fail(ErrorKind::invalid_input,
                        where + " is damaged (" + e.what() + "): inspect it, then remove it by hand");
        }
    }

    std::shared_ptr<EtcdClient> m_client;
};

class EtcdBackend final : public LockBackend {
public:
    explicit EtcdBackend(std::shared_ptr<EtcdClient> client) : m_client(std::move(client)) {}

    [[nodiscard]] std::string describe() const override { return m_client->describe(); }
    [[nodiscard]] bool spans_machines() const override { return true; }

    Result<std::unique_ptr<Lease>> try_acquire(const std::string& key, const LockOwner& owner,
                                               std::chrono::seconds ttl) override {
        auto requested = std::chrono::steady_clock::now();
        auto grant = m_client->call("lease/grant", {{"TTL", ttl.count()}});
        if (!grant)
            return std::unexpected(grant.error());
        std::string lease_id = grant->value("ID", "");
        if (lease_id.empty())
            return fail(ErrorKind::lock_unavailable, "etcd granted no lease: " + grant->value("error", grant->dump()));
        LockInfo info{key, owner, Clock::now(), ttl, true};
        auto k = etcd_key(key);
        json txn = {
            {"compare", {{{"key", k}, {"result", "EQUAL"}, {"target", "CREATE"}, {"create_revision", "0"}}}},
            {"success", {{{"request_put", {{"key", k}, {"value", base64_encode(to_json(info).dump())}, {"lease", lease_id}}}}}},
            {"failure", {{{"request_range", {{"key", k}}}}}},
        };
        auto r = m_client->call("kv/txn", txn);
        if (r && r->value("succeeded", false))
            return std::unique_ptr<Lease>(std::make_unique<EtcdLease>(m_client, key, lease_id, ttl, requested));
        (void)m_client->call("lease/revoke", {{"ID", lease_id}});
        if (!r)
            return std::unexpected(r.error());
        try {
            const auto& kvs = r->at("responses").at(0).at("response_range").at("kvs");
            if (!kvs.empty())
                return fail(ErrorKind::lock_unavailable, holder_message(key, kvs[0]));
        } catch (const json::exception&) {
        }
        return fail(ErrorKind::lock_unavailable, key + " is held by another process");
    }

    Result<std::vector<LockInfo>> list() override {
        std::string prefix(k_key_prefix);
        auto r = m_client->call("kv/range",
                                {{"key", base64_encode(prefix)}, {"range_end", base64_encode(range_end_of(prefix))}});
        if (!r)
            return std::unexpected(r.error());
        std::vector<LockInfo> out;
        for (const auto& kv : r->value("kvs", json::array())) {
            auto value = base64_decode(kv.value("value", ""));
            if (!value)
                continue;
            try {
                auto info = lock_info_from_json(json::parse(*value));
                if (info)
                    out.push_back(*info);
            } catch (const json::exception&) {
            }
        }
        return out;
    }

    Status force_release(const std::string& key) override {
        auto r = m_client->call("kv/deleterange", {{"key", etcd_key(key)}});
        if (!r)
            return std::unexpected(r.error());
        if (etcd_int(*r, "deleted") == 0)
            return fail(ErrorKind::not_found, "no lock " + key + " in " + describe());
        return {};
    }

    std::unique_ptr<JournalStore> journal_store() override { return std::make_unique<EtcdJournalStore>(m_client); }

    Result<std::string> init() override {
        auto r = m_client->call("maintenance/status", json::object());
        if (!r)
            return std::unexpected(r.error());
        return "etcd at " + describe() + " answers (version " + r->value("version", std::string("?")) +
               "); it needs no setup: keys live under " + std::string(k_key_prefix) + " and " +
               std::string(k_journal_prefix);
    }

private:
    std::shared_ptr<EtcdClient> m_client;
};

} // namespace

Result<std::unique_ptr<LockBackend>> make_etcd_backend(std::string_view url, std::shared_ptr<http::Transport> transport) {
    auto rest = url.substr(std::string_view("etcd://").size());
    std::string scheme = "http";
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        auto query = rest.substr(q + 1);
        rest = rest.substr(0, q);
        if (query.find("tls=1") != std::string_view::npos || query.find("tls=true") != std::string_view::npos)
            scheme = "https";
    }
    while (!rest.empty() && rest.back() == '/')
        rest.remove_suffix(1);
    std::vector<std::string> endpoints;
    std::size_t start = 0;
    while (start <= rest.size()) {
        auto comma = rest.find(',', start);
        auto host = rest.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (host.empty() || host.find(':') == std::string_view::npos)
            return fail(ErrorKind::invalid_input, "lock URL '" + std::string(url) +
                                                      "': each etcd endpoint must be HOST:PORT (etcd://127.0.0.1:2379)");
        endpoints.push_back(scheme + "://" + std::string(host));
        if (comma == std::string_view::npos)
            break;
        start = comma + 1;
    }
    return std::unique_ptr<LockBackend>(
        std::make_unique<EtcdBackend>(std::make_shared<EtcdClient>(std::move(endpoints), std::move(transport))));
}

} // namespace tagwarden::lock
