// Lock keys, the backend table, the unreachable-backend error and the `lock list` view of a journal.

#include <tagwarden/http/transport.hpp>
#include <tagwarden/lock/lock.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace tagwarden;
using namespace tagwarden::lock;

namespace {

// A loopback port nobody listens on: bound, then closed.
int closed_port() {
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

} // namespace

TEST_CASE("lock keys: normalize_registry gives one spelling per registry", "[unit][lock]") {
    CHECK(normalize_registry("Registry.Example.COM") == "registry.example.com");
    CHECK(normalize_registry("registry.example.com:443") == "registry.example.com");
    CHECK(normalize_registry("REGISTRY.example.com:443") == "registry.example.com");
    CHECK(normalize_registry("registry.example.com:5000") == "registry.example.com:5000");
    CHECK(normalize_registry("127.0.0.1:5000") == "127.0.0.1:5000");
    CHECK(normalize_registry("index.docker.io") == "docker.io");
    CHECK(normalize_registry("registry-1.docker.io") == "docker.io");
    CHECK(normalize_registry("Registry-1.Docker.IO:443") == "docker.io");
    CHECK(normalize_registry("registry.hub.docker.com") == "docker.io");
    CHECK(normalize_registry("docker.io") == "docker.io");
    CHECK(normalize_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com") ==
          "123456789012.dkr.ecr.eu-west-1.amazonaws.com");
}

TEST_CASE("tag_lock_key: two spellings of one registry share a lock", "[unit][lock]") {
    CHECK(tag_lock_key("R.io:443", "team/app", "1.0-dev") == "r.io/team/app:1.0-dev");
    CHECK(tag_lock_key("r.io", "team/app", "1.0-dev") == tag_lock_key("R.IO:443", "team/app", "1.0-dev"));
    CHECK(tag_lock_key("index.docker.io", "library/nginx", "1") == "docker.io/library/nginx:1");
    CHECK(tag_lock_key("127.0.0.1:5000", "app", "1.0-dev") == "127.0.0.1:5000/app:1.0-dev");
    // Repository and tag are case-sensitive and kept as they are.
    CHECK(tag_lock_key("r.io", "app", "V1") != tag_lock_key("r.io", "app", "v1"));
}

TEST_CASE("lock URLs: one table of schemes", "[unit][lock]") {
    auto file = make_lock_backend("file:///tmp/tw-unit-locks", nullptr);
    REQUIRE(file);
    CHECK((*file)->describe() == "file:///tmp/tw-unit-locks");
    CHECK_FALSE((*file)->spans_machines());
    CHECK((*file)->journal_store() == nullptr);
    auto etcd = make_lock_backend("etcd://127.0.0.1:2379", nullptr);
    REQUIRE(etcd);
    CHECK((*etcd)->spans_machines());
    CHECK((*etcd)->journal_store() != nullptr);
    auto unknown = make_lock_backend("consul://x", nullptr);
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(unknown.error().message, Catch::Contains("file:///DIR") && Catch::Contains("etcd://HOST:PORT") &&
                                            Catch::Contains("dynamodb://TABLE?region=R"));
}

TEST_CASE("an etcd that does not answer is 'lock backend unreachable', not contention", "[unit][lock]") {
    auto port = std::to_string(closed_port());
    auto backend = make_lock_backend("etcd://127.0.0.1:" + port, http::make_curl_transport({}));
    REQUIRE(backend);
    auto lease = (*backend)->try_acquire("r.io/app:1", LockOwner::current(), std::chrono::seconds(10));
    REQUIRE_FALSE(lease);
    CHECK(lease.error().kind == ErrorKind::registry);
    CHECK(exit_code(lease.error().kind) == 8);
    CHECK_THAT(lease.error().message, Catch::StartsWith("lock backend unreachable: etcd://127.0.0.1:" + port));

    // The acquire loop gives up at once: it does not wait --lock-timeout on top of the transport's retries.
    LockSet set(**backend, LockOwner::current(), std::chrono::seconds(10));
    auto start = std::chrono::steady_clock::now();
    auto acquired = set.acquire({"r.io/app:1"}, std::chrono::seconds(60));
    REQUIRE_FALSE(acquired);
    CHECK(acquired.error().kind == ErrorKind::registry);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));

    auto listed = (*backend)->list();
    REQUIRE_FALSE(listed);
    CHECK_THAT(listed.error().message, Catch::StartsWith("lock backend unreachable: "));
    auto journals = (*backend)->journal_store()->list();
    REQUIRE_FALSE(journals);
    CHECK_THAT(journals.error().message, Catch::Contains("lock backend unreachable: "));
    CHECK_FALSE((*backend)->init());
}

TEST_CASE("a journal as `lock list` shows a run left behind", "[unit][lock]") {
    JournalRecord r;
    r.run_id = "0123abcd";
    r.owner = {"runner-7", 4242, "0123abcd", "https://github.example/acme/shop/actions/runs/9"};
    r.expires = Clock::time_point(std::chrono::seconds(1'800'000'000));
    r.document = nlohmann::json{{"version", 1},
                                {"runId", "0123abcd"},
                                {"registry", "r.io"},
                                {"repository", "team/app"},
                                {"digest", "sha256:" + std::string(64, 'a')},
                                {"tags", {{{"tag", "1.0-dev"}, {"written", true}}, {{"tag", "1.0-prod"}, {"written", false}}}}}
                     .dump();
    auto j = to_json(r);
    CHECK(j["runId"] == "0123abcd");
    CHECK(j["owner"]["host"] == "runner-7");
    CHECK(j["owner"]["pid"] == 4242);
    CHECK(j["owner"]["ciUrl"] == "https://github.example/acme/shop/actions/runs/9");
    CHECK(j["registry"] == "r.io");
    CHECK(j["repository"] == "team/app");
    CHECK(j["digest"] == "sha256:" + std::string(64, 'a'));
    CHECK(j["tags"] == nlohmann::json::array({"1.0-dev", "1.0-prod"}));
    CHECK(j["expiresAt"] == "2027-01-15T08:00:00Z");
    CHECK_FALSE(j.contains("error"));
    auto line = describe(r);
    CHECK_THAT(line, Catch::StartsWith("run 0123abcd on r.io/team/app@sha256:aaaa"));
    CHECK_THAT(line, Catch::Contains("(tags 1.0-dev, 1.0-prod)") && Catch::Contains("pid 4242 on runner-7") &&
                         Catch::Contains("(https://github.example/acme/shop/actions/runs/9)") &&
                         Catch::EndsWith("resume with: tagwarden push --resume r.io/team/app"));

    r.document = "{not json";
    auto damaged = to_json(r);
    CHECK(damaged["repository"] == "");
    CHECK(damaged.contains("error"));
    CHECK_THAT(describe(r), Catch::Contains("unreadable journal"));
}
