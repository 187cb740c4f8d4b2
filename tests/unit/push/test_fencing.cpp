#include <tagwarden/lock/lock.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden;
using namespace tagwarden::lock;

namespace {

// A backend whose leases are valid for a set time from acquisition, and never renew.
class ShortLeaseBackend final : public LockBackend {
public:
    explicit ShortLeaseBackend(std::chrono::milliseconds validity) : m_validity(validity) {}
    [[nodiscard]] std::string describe() const override { return "test://short"; }
    [[nodiscard]] bool spans_machines() const override { return true; }
    Result<std::unique_ptr<Lease>> try_acquire(const std::string& key, const LockOwner&, std::chrono::seconds) override {
        return std::unique_ptr<Lease>(std::make_unique<ShortLease>(key, std::chrono::steady_clock::now() + m_validity));
    }
    Result<std::vector<LockInfo>> list() override { return std::vector<LockInfo>{}; }
    Status force_release(const std::string&) override { return {}; }

private:
    class ShortLease final : public Lease {
    public:
        ShortLease(std::string key, std::chrono::steady_clock::time_point until) : m_key(std::move(key)), m_until(until) {}
        [[nodiscard]] const std::string& key() const override { return m_key; }
        [[nodiscard]] std::chrono::steady_clock::time_point valid_until() const override { return m_until; }
        Status renew() override { return fail(ErrorKind::lock_unavailable, "renewals fail in this test"); }
        Status check() override { return {}; }
        Status release() override { return {}; }

    private:
        std::string m_key;
        std::chrono::steady_clock::time_point m_until;
    };
    std::chrono::milliseconds m_validity;
};

} // namespace

TEST_CASE("fencing: a write is allowed only while the lease outlasts it", "[unit][lock][fence]") {
    ShortLeaseBackend backend(std::chrono::seconds(20));
    LockSet set(backend, LockOwner::current(), std::chrono::seconds(60));
    REQUIRE(set.acquire({"r/app:b", "r/app:a"}, std::chrono::seconds(1)));
    CHECK(set.keys() == std::vector<std::string>{"r/app:a", "r/app:b"});
    CHECK(set.check_for(std::chrono::seconds(5)));
    auto too_long = set.check_for(std::chrono::seconds(30));
    REQUIRE_FALSE(too_long);
    CHECK(too_long.error().kind == ErrorKind::lock_unavailable);
    CHECK_THAT(too_long.error().message, Catch::Contains("r/app:a"));
}

TEST_CASE("two spellings of one registry share a lock key", "[unit][lock][keys]") {
    CHECK(tag_lock_key("Registry.Example.com:443", "app", "1.0-dev") == tag_lock_key("registry.example.com", "app", "1.0-dev"));
    CHECK(tag_lock_key("index.docker.io", "library/nginx", "1") == tag_lock_key("docker.io", "library/nginx", "1"));
    CHECK(tag_lock_key("127.0.0.1:5000", "app", "a") != tag_lock_key("127.0.0.1:5001", "app", "a"));
}
