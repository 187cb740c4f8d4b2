// Journals beside the locks, against real servers on loopback: a single-member etcd (etcd-server) and
// moto's DynamoDB; and `LockBackend::init()` of the DynamoDB backend (table, ACTIVE, TTL on ExpiresAt).

#include "../aws/aws_test_support.hpp"

#include <tagwarden/aws/credentials.hpp>
#include <tagwarden/http/url.hpp>
#include <tagwarden/lock/dynamodb_lock.hpp>
#include <tagwarden/lock/lock.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace tagwarden;
using namespace tagwarden::lock;
using namespace tagwarden::test;
using nlohmann::json;

namespace {

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

// /usr/bin/etcd on free loopback ports with a temporary data directory; killed (its process group) on
// destruction. error() says why it is not up.
class EtcdServer {
  public:
    EtcdServer() {
        if (::access("/usr/bin/etcd", X_OK) != 0) {
            m_error = "/usr/bin/etcd is missing: apt-get install etcd-server";
            return;
        }
        for (int attempt = 0; attempt < 4 && !up(); ++attempt)
            spawn();
    }
    ~EtcdServer() { stop(); }
    EtcdServer(const EtcdServer&) = delete;
    EtcdServer& operator=(const EtcdServer&) = delete;

    [[nodiscard]] const std::string& error() const { return m_error; }
    [[nodiscard]] std::string url() const { return "etcd://127.0.0.1:" + std::to_string(m_port); }

  private:
    bool up() const { return m_pid > 0 && m_error.empty(); }

    void spawn() {
        stop();
        m_port = free_port();
        int peer = free_port();
        auto data = m_dir.path() / ("data-" + std::to_string(m_port));
        auto client = "http://127.0.0.1:" + std::to_string(m_port);
        auto peer_url = "http://127.0.0.1:" + std::to_string(peer);
        auto log = (m_dir.path() / "etcd.log").string();
        std::vector<std::string> args = {"/usr/bin/etcd", "--name", "tw-unit", "--data-dir", data.string(),
                                         "--listen-client-urls", client, "--advertise-client-urls", client,
                                         "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                                         "--initial-cluster", "tw-unit=" + peer_url, "--initial-cluster-state", "new",
                                         "--enable-v2=false"};
        pid_t pid = ::fork();
        if (pid == 0) {
            ::setsid();
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        m_pid = pid;
        auto transport = http::make_curl_transport({});
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
                m_pid = -1;
                m_error = "etcd exited at start; see its log";
                return;
            }
            http::Request req;
            req.method = "POST";
            req.url = client + "/v3/kv/range";
            req.body = std::make_shared<http::StringBody>(R"({"key":"cHJvYmU="})");
            auto r = transport->send(req);
            if (r && r->status == 200) {
                m_error.clear();
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        m_error = "etcd did not answer on " + client + " within 30 s";
    }

    void stop() {
        if (m_pid > 0) {
            ::kill(-m_pid, SIGKILL);
            ::waitpid(m_pid, nullptr, 0);
            m_pid = -1;
        }
    }

    TempDir m_dir;
    int m_port = 0;
    pid_t m_pid = -1;
    std::string m_error = "not started";
};

JournalRecord record(const std::string& run_id, std::string document) {
    JournalRecord r;
    r.run_id = run_id;
    r.document = std::move(document);
    r.owner = {"runner-" + run_id, 4242, run_id, "https://ci.example/runs/" + run_id};
    r.expires = Clock::time_point(std::chrono::seconds(1'900'000'000));
    return r;
}

std::string journal_document(const std::string& repo) {
    return json{{"registry", "r.io"}, {"repository", repo}, {"digest", "sha256:" + std::string(64, 'c')},
                {"tags", {{{"tag", "1.0-dev"}, {"written", true}}}}}
        .dump();
}

// put, get, replace, list, remove: what `push --resume` on another runner relies on.
void round_trip(JournalStore& store) {
    REQUIRE(store.list());
    CHECK(store.list()->empty());
    auto missing = store.get("nope");
    REQUIRE(missing);
    CHECK_FALSE(missing->has_value());

    REQUIRE(store.put(record("run-a", journal_document("team/a"))));
    REQUIRE(store.put(record("run-b", journal_document("team/b"))));
    auto a = store.get("run-a");
    REQUIRE(a);
    REQUIRE(a->has_value());
    CHECK((*a)->run_id == "run-a");
    CHECK((*a)->document == journal_document("team/a"));
    CHECK((*a)->owner.host == "runner-run-a");
    CHECK((*a)->owner.pid == 4242);
    CHECK((*a)->owner.run_id == "run-a");
    CHECK((*a)->owner.ci_url == "https://ci.example/runs/run-a");
    CHECK((*a)->expires == Clock::time_point(std::chrono::seconds(1'900'000'000)));

    // A put replaces the record of the same run.
    REQUIRE(store.put(record("run-a", journal_document("team/a2"))));
    a = store.get("run-a");
    REQUIRE(a);
    REQUIRE(a->has_value());
    CHECK((*a)->document == journal_document("team/a2"));

    auto all = store.list();
    REQUIRE(all);
    std::vector<std::string> ids;
    for (const auto& r : *all)
        ids.push_back(r.run_id);
    std::sort(ids.begin(), ids.end());
    CHECK(ids == std::vector<std::string>{"run-a", "run-b"});

    REQUIRE(store.remove("run-a"));
    REQUIRE(store.remove("run-a"));  // absent: not an error
    a = store.get("run-a");
    REQUIRE(a);
    CHECK_FALSE(a->has_value());
    REQUIRE(store.list());
    CHECK(store.list()->size() == 1);
}

std::unique_ptr<LockBackend> dynamodb(const MotoServer& moto, const std::string& table) {
    DynamoDbLockOptions options;
    options.table = table;
    options.region = "us-east-1";
    options.endpoint = moto.url();
    options.credentials =
        std::make_shared<aws::StaticCredentialSource>(aws::Credentials{"AKIAJOURNAL", "journalSecret01", ""});
    options.transport = http::make_curl_transport({});
    options.retry.max_attempts = 2;
    options.retry.base_delay = std::chrono::milliseconds(10);
    auto backend = make_dynamodb_backend(std::move(options));
    REQUIRE(backend);
    return std::move(*backend);
}

std::string boto(const MotoServer& moto, const std::string& body) {
    const std::string script = "import boto3, json\n"
                               "ddb = boto3.client('dynamodb', endpoint_url='" + moto.url() +
                               "', region_name='us-east-1', aws_access_key_id='AKIASETUP', "
                               "aws_secret_access_key='setup')\n" + body;
    auto out = run_python(moto.python(), script);
    INFO("boto3 script:\n" << script << "\noutput:\n" << out.output);
    REQUIRE(out.exit_code == 0);
    return out.output;
}

} // namespace

TEST_CASE("etcd journals: put, get, list and remove beside the locks", "[unit][lock][etcd]") {
    EtcdServer etcd;
    INFO(etcd.error());
    REQUIRE(etcd.error().empty());
    auto backend = make_lock_backend(etcd.url(), http::make_curl_transport({}));
    REQUIRE(backend);
    auto store = (*backend)->journal_store();
    REQUIRE(store);
    round_trip(*store);

    // Journals and locks share the server, not the key space.
    auto lease = (*backend)->try_acquire("r.io/team/a:1.0-dev", LockOwner::current(), std::chrono::seconds(30));
    REQUIRE(lease);
    auto locks = (*backend)->list();
    REQUIRE(locks);
    REQUIRE(locks->size() == 1);
    CHECK(locks->front().key == "r.io/team/a:1.0-dev");
    CHECK(store->list()->size() == 1);

    auto done = (*backend)->init();
    REQUIRE(done);
    CHECK_THAT(*done, Catch::Contains("answers") && Catch::Contains("needs no setup"));
}

TEST_CASE("DynamoDB: lock init, journals as items of the lock table", "[unit][lock][dynamodb]") {
    MotoServer moto;
    INFO(moto.error());
    REQUIRE(moto.error().empty());
    auto backend = dynamodb(moto, "tw-journals");

    // Before init the table is missing: the error gives the one command that fixes it.
    auto before = backend->try_acquire("r.io/app:1", LockOwner::current(), std::chrono::seconds(30));
    REQUIRE_FALSE(before);
    CHECK(before.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(before.error().message,
               Catch::Contains("tagwarden lock init 'dynamodb://tw-journals?region=us-east-1&endpoint=" +
                               http::url_encode(moto.url()) + "'") &&
                   Catch::Contains("aws dynamodb create-table --table-name tw-journals"));

    auto made = backend->init();
    INFO((made ? *made : made.error().message));
    REQUIRE(made);
    CHECK_THAT(*made, Catch::StartsWith("created the DynamoDB lock table tw-journals") &&
                          Catch::Contains("enabled TTL on ExpiresAt"));
    auto described = boto(moto, "t = ddb.describe_table(TableName='tw-journals')['Table']\n"
                                "ttl = ddb.describe_time_to_live(TableName='tw-journals')['TimeToLiveDescription']\n"
                                "print(json.dumps({'keys': t['KeySchema'], 'status': t['TableStatus'],\n"
                                "  'billing': t.get('BillingModeSummary', {}).get('BillingMode'), 'ttl': ttl}))\n");
    auto d = json::parse(described);
    CHECK(d["keys"] == json::parse(R"([{"AttributeName":"LockKey","KeyType":"HASH"}])"));
    CHECK(d["status"] == "ACTIVE");
    CHECK(d["billing"] == "PAY_PER_REQUEST");
    CHECK(d["ttl"]["TimeToLiveStatus"] == "ENABLED");
    CHECK(d["ttl"]["AttributeName"] == "ExpiresAt");

    auto again = backend->init();
    REQUIRE(again);
    CHECK_THAT(*again, Catch::Contains("exists") && Catch::Contains("TTL on ExpiresAt already enabled"));

    auto store = backend->journal_store();
    REQUIRE(store);
    round_trip(*store);

    // Lock list skips journal items; the journal list skips locks.
    auto lease = backend->try_acquire("r.io/team/a:1.0-dev", LockOwner::current(), std::chrono::seconds(30));
    REQUIRE(lease);
    auto locks = backend->list();
    REQUIRE(locks);
    REQUIRE(locks->size() == 1);
    CHECK(locks->front().key == "r.io/team/a:1.0-dev");
    auto journals = store->list();
    REQUIRE(journals);
    REQUIRE(journals->size() == 1);
    CHECK(journals->front().run_id == "run-b");
    auto item = json::parse(boto(
        moto, "print(json.dumps(ddb.get_item(TableName='tw-journals', Key={'LockKey': {'S': 'journal#run-b'}})['Item']))\n"));
    CHECK(item["Kind"]["S"] == "journal");
    CHECK(item["ExpiresAt"]["N"] == "1900000000");
    CHECK(item["OwnerPid"]["N"] == "4242");
    CHECK(item["Document"]["S"] == journal_document("team/b"));

    // Over 350 KB is refused before DynamoDB's 400 KB item limit would.
    auto big = store->put(record("run-big", std::string(351 * 1024, 'x')));
    REQUIRE_FALSE(big);
    CHECK_THAT(big.error().message, Catch::Contains("350 KB") && Catch::Contains("etcd://"));
    CHECK(store->put(record("run-fits", std::string(300 * 1024, 'x'))));
}

TEST_CASE("DynamoDB: lock init refuses a table with another key, and an endpoint that does not answer is unreachable",
          "[unit][lock][dynamodb]") {
    MotoServer moto;
    INFO(moto.error());
    REQUIRE(moto.error().empty());
    boto(moto, "ddb.create_table(TableName='tw-other', BillingMode='PAY_PER_REQUEST',\n"
               "  AttributeDefinitions=[{'AttributeName': 'id', 'AttributeType': 'S'}],\n"
               "  KeySchema=[{'AttributeName': 'id', 'KeyType': 'HASH'}])\n");
    auto other = dynamodb(moto, "tw-other")->init();
    REQUIRE_FALSE(other);
    CHECK(other.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(other.error().message, Catch::Contains("not the string hash key LockKey"));

    DynamoDbLockOptions options;
    options.table = "tw-journals";
    options.region = "us-east-1";
    options.endpoint = "http://127.0.0.1:" + std::to_string(free_port());
    options.credentials = std::make_shared<aws::StaticCredentialSource>(aws::Credentials{"AKIAX", "secretX01", ""});
    options.transport = http::make_curl_transport({});
    options.retry.max_attempts = 2;
    options.retry.base_delay = std::chrono::milliseconds(10);
    auto down = make_dynamodb_backend(std::move(options));
    REQUIRE(down);
    auto lease = (*down)->try_acquire("r.io/app:1", LockOwner::current(), std::chrono::seconds(30));
    REQUIRE_FALSE(lease);
    CHECK(lease.error().kind == ErrorKind::registry);
    CHECK_THAT(lease.error().message, Catch::StartsWith("lock backend unreachable: dynamodb://tw-journals at " +
                                                        std::string("http://127.0.0.1:")));
    auto journals = (*down)->journal_store()->list();
    REQUIRE_FALSE(journals);
    CHECK_THAT(journals.error().message, Catch::Contains("lock backend unreachable: "));
}

TEST_CASE("file lock journals: round trip, and a push journal written as is is listed without owner", "[unit][lock]") {
    TempDir dir;
    auto store = make_file_journal_store(dir.path().string());
    round_trip(*store);
    std::filesystem::create_directories(dir.path() / "journal");
    dir.write("journal/legacy-run.json",
              json{{"version", 1}, {"runId", "legacy-run"}, {"registry", "r.io"}, {"repository", "team/old"},
                   {"digest", "sha256:" + std::string(64, 'd')}, {"tags", {{{"tag", "v1"}, {"written", true}}}}}
                  .dump());
    auto listed = store->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 2);
    const auto& legacy = listed->front();
    REQUIRE(legacy.run_id == "legacy-run");
    auto shown = to_json(legacy);
    CHECK(shown["repository"] == "team/old");
    CHECK(shown["tags"] == json::array({"v1"}));
    CHECK(shown["expiresAt"] == "");
    CHECK_THAT(describe(legacy), Catch::Contains("left by an unknown owner; resume with: tagwarden push --resume r.io/team/old"));
}
