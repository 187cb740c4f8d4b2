#include <tagwarden/lock/dynamodb_lock.hpp>

#include <tagwarden/aws/aws_client.hpp>
#include <tagwarden/aws/wire.hpp>
#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/strings.hpp>
#include <tagwarden/http/url.hpp>

#include <nlohmann/json.hpp>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>

namespace tagwarden::lock {

namespace {

using nlohmann::json;

// DynamoDB's item limit is 400 KB (names and values); the rest of a journal item stays far below 50 KB.
constexpr std::size_t k_max_journal_document = 350 * 1024;
constexpr std::string_view k_journal_prefix = "journal#";
constexpr std::string_view k_journal_kind = "journal";
// Set on errors from requests that got no answer, so Table::call can name the backend unreachable.
constexpr std::string_view k_no_answer = "tagwarden.NoAnswer";

// Marks failures that produced no response (connection refused, timeout, DNS). AwsJsonClient keeps
// registry_code through its retries and context.
class NoAnswerMarking final : public http::Transport {
  public:
    explicit NoAnswerMarking(std::shared_ptr<http::Transport> inner) : m_inner(std::move(inner)) {}
    Result<http::Response> send(const http::Request& request) override {
        auto r = m_inner->send(request);
        if (!r && r.error().kind == ErrorKind::registry && r.error().http_status == 0) {
            auto e = r.error();
            e.registry_code = std::string(k_no_answer);
            return std::unexpected(e);
        }
        return r;
    }

  private:
    std::shared_ptr<http::Transport> m_inner;
};

bool is_journal_item(const nlohmann::json& item);

bool valid_table_name(std::string_view name) {
    if (name.size() < 3 || name.size() > 255)
        return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
            return false;
    return true;
}

std::string random_token() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
        std::random_device rd;
        for (auto& b : bytes)
            b = static_cast<unsigned char>(rd());
    }
    std::string out;
    char hex[3];
    for (auto b : bytes) {
        std::snprintf(hex, sizeof hex, "%02x", b);
        out += hex;
    }
    return out;
}

json s_value(const std::string& s) {
    return {{"S", s}};
}
json n_value(long long n) {
    return {{"N", std::to_string(n)}};
}

std::string item_string(const json& item, const char* name) {
    auto it = item.find(name);
    if (it == item.end() || !it->is_object())
        return {};
    auto s = it->find("S");
    return s != it->end() && s->is_string() ? s->get<std::string>() : std::string();
}

long long item_number(const json& item, const char* name) {
    auto it = item.find(name);
    if (it == item.end() || !it->is_object())
        return 0;
    auto n = it->find("N");
    if (n == it->end() || !n->is_string())
        return 0;
    try {
        return static_cast<long long>(std::stod(n->get<std::string>()));
    } catch (const std::exception&) {
        return 0;
    }
}

LockInfo info_from_item(const json& item, Clock::time_point now) {
    LockInfo info;
    info.key = item_string(item, "LockKey");
    info.owner.host = item_string(item, "OwnerHost");
    info.owner.pid = static_cast<long>(item_number(item, "OwnerPid"));
    info.owner.run_id = item_string(item, "OwnerRunId");
    info.owner.ci_url = item_string(item, "OwnerCiUrl");
    info.acquired = Clock::time_point(std::chrono::seconds(item_number(item, "AcquiredAt")));
    info.ttl = std::chrono::seconds(item_number(item, "TtlSeconds"));
    info.held = item_number(item, "ExpiresAt") > aws::to_epoch_seconds(now);
    return info;
}

std::string describe_holder(const json& item, Clock::time_point now) {
    auto info = info_from_item(item, now);
    std::string s =
        "pid " + std::to_string(info.owner.pid) + " on " + (info.owner.host.empty() ? "?" : info.owner.host);
    if (!info.owner.ci_url.empty())
        s += " (" + info.owner.ci_url + ")";
    if (!info.owner.run_id.empty())
        s += ", run " + info.owner.run_id;
    s += ", since " + format_utc(info.acquired);
    long long left = item_number(item, "ExpiresAt") - aws::to_epoch_seconds(now);
    s += left > 0 ? ", expires in " + std::to_string(left) + " s" : ", expired";
    return s;
}

// State shared by the backend and its leases.
struct Table {
    std::string name;
    std::string region;
    std::string endpoint;
    std::shared_ptr<aws::AwsJsonClient> client;
    std::function<Clock::time_point()> clock;

    Clock::time_point now() const { return clock ? clock() : Clock::now(); }

    // How the URL names this table (for messages): the endpoint only when it is not AWS's default.
    std::string url() const {
        auto url = "dynamodb://" + name + "?region=" + region;
        if (endpoint != aws::default_endpoint(aws::k_dynamodb, region))
            url += "&endpoint=" + http::url_encode(endpoint);
        return url;
    }

    Error missing_table(const Error& e) const {
        Error out(ErrorKind::invalid_input,
                  "the DynamoDB lock table " + name + " does not exist in " + region + " (" + e.message +
                      "). Create it with: tagwarden lock init '" + url() + "' (or: " +
                      dynamodb_create_table_command(name, region, endpoint) +
                      ", then enable TTL on ExpiresAt)");
        out.registry_code = e.registry_code;
        out.http_status = e.http_status;
        return out;
    }

    // The call, with a missing table and an unreachable endpoint made into their own errors.
    Result<json> call(std::string_view operation, const json& input) const {
        auto out = raw_call(operation, input);
        if (!out && out.error().registry_code == "ResourceNotFoundException")
            return std::unexpected(missing_table(out.error()));
        return out;
    }

    // The call, with only an unreachable endpoint made into its own error.
    Result<json> raw_call(std::string_view operation, const json& input) const {
        auto out = client->call(operation, input);
        if (!out && out.error().registry_code == k_no_answer)
            return std::unexpected(unreachable_error("dynamodb://" + name + " at " + endpoint, out.error()));
        return out;
    }

    // The item, or null when absent.
    Result<json> get(const std::string& key) const {
        auto out = call(
            "GetItem", {{"TableName", name}, {"Key", {{"LockKey", s_value(key)}}}, {"ConsistentRead", true}});
        if (!out)
            return std::unexpected(out.error());
        auto item = out->find("Item");
        return item != out->end() && item->is_object() ? *item : json();
    }
};

class DynamoDbLease final : public Lease {
  public:
    DynamoDbLease(std::shared_ptr<Table> table, std::string key, std::string token, std::chrono::seconds ttl,
                  std::chrono::steady_clock::time_point requested)
        : m_table(std::move(table)), m_key(std::move(key)), m_token(std::move(token)), m_ttl(ttl),
          m_valid_until(requested + ttl) {}
    ~DynamoDbLease() override { (void)release(); }

    const std::string& key() const override { return m_key; }
    std::chrono::steady_clock::time_point valid_until() const override { return m_valid_until; }

    Status renew() override {
        if (m_released)
            return fail(ErrorKind::lock_unavailable, "the lock " + m_key + " was released");
        auto requested = std::chrono::steady_clock::now();
        long long expires = aws::to_epoch_seconds(m_table->now() + m_ttl);
        auto out = m_table->call(
            "UpdateItem",
            {{"TableName", m_table->name},
             {"Key", {{"LockKey", s_value(m_key)}}},
             {"UpdateExpression", "SET ExpiresAt = :expires"},
             {"ConditionExpression", "LeaseToken = :mine"},
             {"ExpressionAttributeValues", {{":expires", n_value(expires)}, {":mine", s_value(m_token)}}}});
        if (!out) {
            if (out.error().registry_code == "ConditionalCheckFailedException")
                return fail(ErrorKind::lock_unavailable,
                            "the lock " + m_key +
                                " was lost (force-released or taken over after it expired)");
            return std::unexpected(with_lock_context(out.error(), "renewing the lock " + m_key));
        }
        m_valid_until = requested + m_ttl;
        return {};
    }

    Status check() override {
        if (m_released)
            return fail(ErrorKind::lock_unavailable, "the lock " + m_key + " was released");
        auto item = m_table->get(m_key);
        if (!item)
            return std::unexpected(with_lock_context(item.error(), "checking the lock " + m_key));
        auto now = m_table->now();
        if (item->is_null())
            return fail(ErrorKind::lock_unavailable, "the lock " + m_key + " is gone (force-released)");
        if (item_string(*item, "LeaseToken") != m_token)
            return fail(ErrorKind::lock_unavailable,
                        "the lock " + m_key + " was taken over by " + describe_holder(*item, now));
        if (item_number(*item, "ExpiresAt") <= aws::to_epoch_seconds(now))
            return fail(ErrorKind::lock_unavailable,
                        "the lease on " + m_key + " expired without a heartbeat");
        return {};
    }

    Status release() override {
        if (m_released)
            return {};
        m_released = true;
        auto out =
            m_table->call("DeleteItem", {{"TableName", m_table->name},
                                         {"Key", {{"LockKey", s_value(m_key)}}},
                                         {"ConditionExpression", "LeaseToken = :mine"},
                                         {"ExpressionAttributeValues", {{":mine", s_value(m_token)}}}});
        if (!out) {
            if (out.error().registry_code == "ConditionalCheckFailedException") {
                log::warn("the lock " + m_key +
                          " was no longer held at release (force-released or taken over)");
                return {};
            }
            return std::unexpected(with_lock_context(out.error(), "releasing the lock " + m_key));
        }
        return {};
    }

  private:
    std::shared_ptr<Table> m_table;
    std::string m_key;
    std::string m_token;
    std::chrono::seconds m_ttl;
    std::chrono::steady_clock::time_point m_valid_until;
    bool m_released = false;
};

bool is_journal_item(const json& item) {
    return item_string(item, "Kind") == k_journal_kind || item_string(item, "LockKey").starts_with(k_journal_prefix);
}

// Journals as items of the lock table: LockKey "journal#<run_id>" (lock keys always hold '/' and ':', so
// they never collide), Kind "journal", Document, the owner attributes of a lock item, and ExpiresAt so
// the table's TTL drops a record nobody resumed.
class DynamoDbJournalStore final : public JournalStore {
  public:
    explicit DynamoDbJournalStore(std::shared_ptr<Table> table) : m_table(std::move(table)) {}

    std::string describe() const override { return "dynamodb://" + m_table->name + " (journal# items)"; }

    Status put(const JournalRecord& record) override {
        if (record.run_id.empty())
            return fail(ErrorKind::internal, "a journal needs a run id");
        if (record.document.size() > k_max_journal_document)
            return fail(ErrorKind::invalid_input,
                        "the journal of run " + record.run_id + " is " + std::to_string(record.document.size() / 1024) +
                            " KB, more than the " + std::to_string(k_max_journal_document / 1024) +
                            " KB a DynamoDB item can hold here (items are limited to 400 KB): push this image with "
                            "an etcd:// lock, or a file:// lock on one machine");
        json item = {{"LockKey", s_value(std::string(k_journal_prefix) + record.run_id)},
                     {"Kind", s_value(std::string(k_journal_kind))},
                     {"RunId", s_value(record.run_id)},
                     {"Document", s_value(record.document)},
                     {"ExpiresAt", n_value(aws::to_epoch_seconds(record.expires))},
                     {"OwnerPid", n_value(record.owner.pid)}};
        if (!record.owner.host.empty())
            item["OwnerHost"] = s_value(record.owner.host);
        if (!record.owner.run_id.empty())
            item["OwnerRunId"] = s_value(record.owner.run_id);
        if (!record.owner.ci_url.empty())
            item["OwnerCiUrl"] = s_value(record.owner.ci_url);
        auto out = m_table->call("PutItem", {{"TableName", m_table->name}, {"Item", item}});
        if (!out)
            return std::unexpected(with_lock_context(out.error(), "writing the journal of run " + record.run_id));
        return {};
    }

    Result<std::optional<JournalRecord>> get(const std::string& run_id) override {
        auto item = m_table->get(std::string(k_journal_prefix) + run_id);
        if (!item)
            return std::unexpected(with_lock_context(item.error(), "reading the journal of run " + run_id));
        if (item->is_null() || !is_journal_item(*item))
            return std::optional<JournalRecord>{};
        return std::optional<JournalRecord>(record_from(*item));
    }

    Result<std::vector<JournalRecord>> list() override {
        std::vector<JournalRecord> out;
        json start;
        do {
            json input = {{"TableName", m_table->name},
                          {"ConsistentRead", true},
                          {"FilterExpression", "#kind = :journal"},
                          {"ExpressionAttributeNames", {{"#kind", "Kind"}}},
                          {"ExpressionAttributeValues", {{":journal", s_value(std::string(k_journal_kind))}}}};
            if (!start.is_null())
                input["ExclusiveStartKey"] = start;
            auto page = m_table->call("Scan", input);
            if (!page)
                return std::unexpected(with_lock_context(page.error(), "listing journals"));
            if (auto items = page->find("Items"); items != page->end() && items->is_array())
                for (const auto& item : *items)
                    if (is_journal_item(item))
                        out.push_back(record_from(item));
            auto last = page->find("LastEvaluatedKey");
            start = last != page->end() && last->is_object() && !last->empty() ? *last : json();
        } while (!start.is_null());
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.run_id < b.run_id; });
        return out;
    }

    Status remove(const std::string& run_id) override {
        auto out = m_table->call("DeleteItem", {{"TableName", m_table->name},
                                                {"Key", {{"LockKey", s_value(std::string(k_journal_prefix) + run_id)}}}});
        if (!out)
            return std::unexpected(with_lock_context(out.error(), "removing the journal of run " + run_id));
        return {};
    }

  private:
    static JournalRecord record_from(const json& item) {
        JournalRecord r;
        r.run_id = item_string(item, "RunId");
        if (r.run_id.empty())
            r.run_id = item_string(item, "LockKey").substr(k_journal_prefix.size());
        r.document = item_string(item, "Document");
        r.owner.host = item_string(item, "OwnerHost");
        r.owner.pid = static_cast<long>(item_number(item, "OwnerPid"));
        r.owner.run_id = item_string(item, "OwnerRunId");
        r.owner.ci_url = item_string(item, "OwnerCiUrl");
        r.expires = Clock::time_point(std::chrono::seconds(item_number(item, "ExpiresAt")));
        return r;
    }

    std::shared_ptr<Table> m_table;
};

class DynamoDbBackend final : public LockBackend {
  public:
    explicit DynamoDbBackend(std::shared_ptr<Table> table) : m_table(std::move(table)) {}

    bool spans_machines() const override { return true; }

    std::string describe() const override {
        return "dynamodb://" + m_table->name + " (region " + m_table->region + ", " + m_table->endpoint + ")";
    }

    Result<std::unique_ptr<Lease>> try_acquire(const std::string& key, const LockOwner& owner,
                                               std::chrono::seconds ttl) override {
        if (key.empty())
            return fail(ErrorKind::invalid_input, "empty lock key");
        if (ttl.count() <= 0)
            return fail(ErrorKind::invalid_input, "lock ttl must be positive");
        auto requested = std::chrono::steady_clock::now();
        auto now = m_table->now();
        std::string token = random_token();
        json item = {{"LockKey", s_value(key)},
                     {"LeaseToken", s_value(token)},
                     {"AcquiredAt", n_value(aws::to_epoch_seconds(now))},
                     {"ExpiresAt", n_value(aws::to_epoch_seconds(now + ttl))},
                     {"TtlSeconds", n_value(ttl.count())},
                     {"OwnerPid", n_value(owner.pid)}};
        if (!owner.host.empty())
            item["OwnerHost"] = s_value(owner.host);
        if (!owner.run_id.empty())
            item["OwnerRunId"] = s_value(owner.run_id);
        if (!owner.ci_url.empty())
            item["OwnerCiUrl"] = s_value(owner.ci_url);
        auto out = m_table->call(
            "PutItem", {{"TableName", m_table->name},
                        {"Item", item},
                        {"ConditionExpression", "attribute_not_exists(LockKey) OR ExpiresAt < :now"},
                        {"ExpressionAttributeValues", {{":now", n_value(aws::to_epoch_seconds(now))}}}});
        if (!out) {
            if (out.error().registry_code != "ConditionalCheckFailedException")
                return std::unexpected(with_lock_context(out.error(), "acquiring the lock " + key));
            auto holder = m_table->get(key);
            std::string who = !holder ? "another process (unreadable: " + holder.error().message + ")"
                              : holder->is_null() ? "another process (released just now: try again)"
                                                  : describe_holder(*holder, now);
            return fail(ErrorKind::lock_unavailable, "the lock " + key + " is held by " + who);
        }
        return std::unique_ptr<Lease>(std::make_unique<DynamoDbLease>(m_table, key, std::move(token), ttl, requested));
    }

    Result<std::vector<LockInfo>> list() override {
        std::vector<LockInfo> out;
        json start;
        auto now = m_table->now();
        do {
            json input = {{"TableName", m_table->name}, {"ConsistentRead", true}};
            if (!start.is_null())
                input["ExclusiveStartKey"] = start;
            auto page = m_table->call("Scan", input);
            if (!page)
                return std::unexpected(with_lock_context(page.error(), "listing DynamoDB locks"));
            if (auto items = page->find("Items"); items != page->end() && items->is_array())
                for (const auto& item : *items)
                    if (!is_journal_item(item))
                        out.push_back(info_from_item(item, now));
            auto last = page->find("LastEvaluatedKey");
            start = last != page->end() && last->is_object() && !last->empty() ? *last : json();
        } while (!start.is_null());
        return out;
    }

    Status force_release(const std::string& key) override {
        auto out = m_table->call("DeleteItem", {{"TableName", m_table->name},
                                                {"Key", {{"LockKey", s_value(key)}}},
                                                {"ReturnValues", "ALL_OLD"}});
        if (!out)
            return std::unexpected(with_lock_context(out.error(), "force-releasing the lock " + key));
        auto old = out->find("Attributes");
        if (old == out->end() || !old->is_object() || old->empty())
            return fail(ErrorKind::not_found, "no lock " + key + " in " + m_table->name);
        log::info("force-released the lock " + key + " (was held by " +
                  describe_holder(*old, m_table->now()) + ")");
        return {};
    }

    std::unique_ptr<JournalStore> journal_store() override {
        return std::make_unique<DynamoDbJournalStore>(m_table);
    }

    Result<std::string> init() override {
        auto where = m_table->name + " in " + m_table->region;
        bool created = false;
        auto described = m_table->raw_call("DescribeTable", {{"TableName", m_table->name}});
        if (!described && described.error().registry_code == "ResourceNotFoundException") {
            auto made = m_table->raw_call(
                "CreateTable",
                {{"TableName", m_table->name},
                 {"AttributeDefinitions", {{{"AttributeName", "LockKey"}, {"AttributeType", "S"}}}},
                 {"KeySchema", {{{"AttributeName", "LockKey"}, {"KeyType", "HASH"}}}},
                 {"BillingMode", "PAY_PER_REQUEST"}});
            if (!made && made.error().registry_code != "ResourceInUseException")
                return std::unexpected(with_lock_context(made.error(), 
                    "creating the DynamoDB lock table " + where +
                    " (the credentials need dynamodb:CreateTable, DescribeTable, UpdateTimeToLive and "
                    "DescribeTimeToLive)"));
            created = made.has_value();
            described = wait_until_active();
        } else if (described && described->value("Table", json::object()).value("TableStatus", "") != "ACTIVE") {
            described = wait_until_active();  // being created (or updated) by someone else
        }
        if (!described)
            return std::unexpected(with_lock_context(described.error(), "describing the DynamoDB lock table " + where));
        TW_TRY(check_key_schema(*described));
        auto ttl = ensure_ttl();
        if (!ttl)
            return std::unexpected(ttl.error());
        if (created)
            return "created the DynamoDB lock table " + where +
                   " (hash key LockKey, on-demand billing) and enabled TTL on ExpiresAt";
        return "the DynamoDB lock table " + where + " exists (hash key LockKey); " + *ttl;
    }

  private:
    // DescribeTable until the table is ACTIVE (a new table takes seconds; give it five minutes).
    Result<json> wait_until_active() {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
        while (true) {
            auto described = m_table->raw_call("DescribeTable", {{"TableName", m_table->name}});
            if (described && described->value("Table", json::object()).value("TableStatus", "") == "ACTIVE")
                return described;
            if (!described && described.error().registry_code != "ResourceNotFoundException")
                return described;
            if (std::chrono::steady_clock::now() >= deadline)
                return fail(ErrorKind::registry, "the DynamoDB table " + m_table->name +
                                                     " did not become ACTIVE within 5 minutes: run tagwarden lock "
                                                     "init again later");
            if (!cancel::sleep_for(std::chrono::milliseconds(500)))
                return std::unexpected(cancel::cancelled_error("waiting for the DynamoDB table " + m_table->name));
        }
    }

    Status check_key_schema(const json& described) const {
        auto table = described.value("Table", json::object());
        auto schema = table.value("KeySchema", json::array());
        std::string type;
        for (const auto& a : table.value("AttributeDefinitions", json::array()))
            if (a.value("AttributeName", "") == "LockKey")
                type = a.value("AttributeType", "");
        bool fits = schema.size() == 1 && schema[0].value("AttributeName", "") == "LockKey" &&
                    schema[0].value("KeyType", "") == "HASH" && type == "S";
        if (fits)
            return {};
        return fail(ErrorKind::invalid_input, "the DynamoDB table " + m_table->name + " in " + m_table->region +
                                                  " exists but its key is " + schema.dump() +
                                                  ", not the string hash key LockKey alone: it cannot hold tagwarden "
                                                  "locks. Name another table in the lock URL (dynamodb://NEW-TABLE?region=" +
                                                  m_table->region + ") and run tagwarden lock init with it");
    }

    // TTL on ExpiresAt, so items of dead holders and journals nobody resumed are dropped. Returns what it did.
    Result<std::string> ensure_ttl() {
        auto current = m_table->raw_call("DescribeTimeToLive", {{"TableName", m_table->name}});
        if (!current)
            return std::unexpected(with_lock_context(current.error(), "reading the TTL setting of " + m_table->name));
        auto description = current->value("TimeToLiveDescription", json::object());
        auto status = description.value("TimeToLiveStatus", "DISABLED");
        auto attribute = description.value("AttributeName", "");
        if (status == "ENABLED" || status == "ENABLING") {
            if (attribute == "ExpiresAt")
                return std::string("TTL on ExpiresAt already enabled");
            return fail(ErrorKind::invalid_input,
                        "the DynamoDB table " + m_table->name + " has TTL on " + attribute +
                            ", not on ExpiresAt: stale locks and journals would never expire. Disable it (aws dynamodb "
                            "update-time-to-live --table-name " + m_table->name +
                            " --time-to-live-specification Enabled=false,AttributeName=" + attribute +
                            "), then run tagwarden lock init again");
        }
        if (status == "DISABLING")
            return fail(ErrorKind::registry, "TTL of the DynamoDB table " + m_table->name +
                                                 " is being disabled: run tagwarden lock init again in an hour");
        auto updated = m_table->raw_call(
            "UpdateTimeToLive", {{"TableName", m_table->name},
                                 {"TimeToLiveSpecification", {{"Enabled", true}, {"AttributeName", "ExpiresAt"}}}});
        if (!updated)
            return std::unexpected(with_lock_context(updated.error(), "enabling TTL on ExpiresAt of " + m_table->name));
        return std::string("enabled TTL on ExpiresAt");
    }

    std::shared_ptr<Table> m_table;
};

} // namespace

Result<DynamoDbLockUrl> parse_dynamodb_lock_url(std::string_view url) {
    constexpr std::string_view scheme = "dynamodb://";
    const std::string usage = " (expected dynamodb://TABLE?region=REGION[&endpoint=URL])";
    if (!url.starts_with(scheme))
        return fail(ErrorKind::invalid_input, "not a DynamoDB lock URL: " + std::string(url) + usage);
    std::string_view rest = url.substr(scheme.size());
    auto q = rest.find('?');
    DynamoDbLockUrl out;
    out.table = std::string(rest.substr(0, q));
    while (!out.table.empty() && out.table.back() == '/')
        out.table.pop_back();
    if (!valid_table_name(out.table))
        return fail(ErrorKind::invalid_input, "invalid DynamoDB table name '" + out.table + "' in " +
                                                  std::string(url) + " (3-255 of a-z A-Z 0-9 _ - .)" + usage);
    if (q != std::string_view::npos) {
        std::string_view query = rest.substr(q + 1);
        while (!query.empty()) {
            auto amp = query.find('&');
            std::string_view pair = query.substr(0, amp);
            query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
            if (pair.empty())
                continue;
            auto eq = pair.find('=');
            std::string name(pair.substr(0, eq));
            std::string value =
                eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
            if (name == "region")
                out.region = value;
            else if (name == "endpoint")
                out.endpoint = value;
            else
                return fail(ErrorKind::invalid_input,
                            "unknown DynamoDB lock URL option '" + name + "'" + usage);
        }
    }
    while (out.endpoint.size() > 1 && out.endpoint.back() == '/')
        out.endpoint.pop_back();
    if (!out.endpoint.empty() && !out.endpoint.starts_with("http://") &&
        !out.endpoint.starts_with("https://"))
        return fail(ErrorKind::invalid_input,
                    "the DynamoDB endpoint must be an http(s) URL: " + out.endpoint);
    return out;
}

std::string dynamodb_create_table_command(std::string_view table, std::string_view region,
                                          std::string_view endpoint) {
    std::string cmd = "aws dynamodb create-table --table-name " + std::string(table) +
                      " --attribute-definitions AttributeName=LockKey,AttributeType=S"
                      " --key-schema AttributeName=LockKey,KeyType=HASH --billing-mode PAY_PER_REQUEST";
    if (!region.empty())
        cmd += " --region " + std::string(region);
    if (!endpoint.empty())
        cmd += " --endpoint-url " + std::string(endpoint);
    return cmd;
}

Result<std::unique_ptr<LockBackend>> make_dynamodb_backend(DynamoDbLockOptions options) {
    if (!valid_table_name(options.table))
        return fail(ErrorKind::invalid_input, "invalid DynamoDB table name '" + options.table + "'");
    if (options.region.empty())
        return fail(ErrorKind::invalid_input, "no AWS region for the DynamoDB lock table " + options.table +
                                                  ": add ?region=REGION to the lock URL or set AWS_REGION");
    if (!options.credentials || !options.transport)
        return fail(ErrorKind::internal, "DynamoDB lock backend without credentials or transport");
    auto table = std::make_shared<Table>();
    table->name = options.table;
    table->region = options.region;
    table->endpoint =
        options.endpoint.empty() ? aws::default_endpoint(aws::k_dynamodb, options.region) : options.endpoint;
    table->clock = options.clock;
    aws::AwsClientConfig config;
    config.region = options.region;
    config.endpoint = table->endpoint;
    config.credentials = std::move(options.credentials);
    config.transport = std::make_shared<NoAnswerMarking>(std::move(options.transport));
    config.retry = options.retry;
    config.clock = options.clock;
    table->client = std::make_shared<aws::AwsJsonClient>(aws::k_dynamodb, std::move(config));
    return std::unique_ptr<LockBackend>(std::make_unique<DynamoDbBackend>(std::move(table)));
}

Result<std::unique_ptr<LockBackend>> make_dynamodb_backend(std::string_view url,
                                                           std::shared_ptr<http::Transport> transport) {
    auto parsed = parse_dynamodb_lock_url(url);
    if (!parsed)
        return std::unexpected(parsed.error());
    if (!transport)
        transport = http::make_curl_transport({});
    auto chain = aws::make_default_credential_chain(transport);
    DynamoDbLockOptions options;
    options.table = parsed->table;
    options.region = !parsed->region.empty() ? parsed->region : chain->region().value_or("");
    if (options.region.empty())
        return fail(ErrorKind::invalid_input, "no AWS region for the DynamoDB lock table " + parsed->table +
                                                  ": add ?region=REGION to the lock URL or set AWS_REGION");
    options.endpoint =
        !parsed->endpoint.empty() ? parsed->endpoint : chain->endpoint(aws::k_dynamodb, options.region);
    options.credentials = std::move(chain);
    options.transport = std::move(transport);
    return make_dynamodb_backend(std::move(options));
}

} // namespace tagwarden::lock
