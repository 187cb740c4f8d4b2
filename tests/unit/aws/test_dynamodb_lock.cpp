// The DynamoDB lock backend's pure parts and request shapes (scripted transport).

#include "aws_test_support.hpp"

#include <tagwarden/lock/dynamodb_lock.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace tagwarden;
using namespace tagwarden::lock;
using namespace tagwarden::test;
using nlohmann::json;

namespace {

std::unique_ptr<LockBackend> backend_with(std::shared_ptr<http::Transport> transport, Clock::time_point now) {
    DynamoDbLockOptions options;
    options.table = "tagwarden-locks";
    options.region = "eu-west-1";
    options.endpoint = "http://127.0.0.1:9";
    options.credentials =
        std::make_shared<aws::StaticCredentialSource>(aws::Credentials{"AKIALOCK", "lockSecret0001", ""});
    options.transport = std::move(transport);
    options.clock = [now] { return now; };
    auto backend = make_dynamodb_backend(std::move(options));
    REQUIRE(backend);
    return std::move(*backend);
}

std::string target_of(const SentRequest& r) {
    auto t = r.headers.get("X-Amz-Target").value_or("");
    return t.substr(t.find('.') + 1);
}

} // namespace

TEST_CASE("DynamoDB lock URLs", "[unit][aws][dynamodb]") {
    auto u = parse_dynamodb_lock_url(
        "dynamodb://tagwarden-locks?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A8000%2F");
    REQUIRE(u);
    CHECK(u->table == "tagwarden-locks");
    CHECK(u->region == "eu-west-1");
    CHECK(u->endpoint == "http://127.0.0.1:8000");
    auto raw = parse_dynamodb_lock_url("dynamodb://locks.v1?endpoint=http://localhost:4566&region=us-east-1");
    REQUIRE(raw);
    CHECK(raw->endpoint == "http://localhost:4566");
    auto bare = parse_dynamodb_lock_url("dynamodb://my_table");
    REQUIRE(bare);
    CHECK(bare->region.empty());
    CHECK_FALSE(parse_dynamodb_lock_url("dynamodb://ab?region=x")); // too short
    CHECK_FALSE(parse_dynamodb_lock_url("dynamodb://bad/name?region=x"));
    CHECK_FALSE(parse_dynamodb_lock_url("dynamodb://table?regoin=eu-west-1")); // typo is an error
    CHECK_FALSE(parse_dynamodb_lock_url("dynamodb://table?endpoint=ftp://x"));
    CHECK_FALSE(parse_dynamodb_lock_url("etcd://table"));
    CHECK(
        dynamodb_create_table_command("locks", "eu-west-1", "") ==
        "aws dynamodb create-table --table-name locks --attribute-definitions "
        "AttributeName=LockKey,AttributeType=S "
        "--key-schema AttributeName=LockKey,KeyType=HASH --billing-mode PAY_PER_REQUEST --region eu-west-1");
}

TEST_CASE("DynamoDB lock: conditional PutItem, holder read back on conflict", "[unit][aws][dynamodb]") {
    const auto now = Clock::time_point(std::chrono::seconds(1'800'000'000));
    bool taken = false;
    auto transport = std::make_shared<FakeTransport>([&](const SentRequest& r) -> Result<http::Response> {
        auto in = json::parse(r.body);
        CHECK(in["TableName"] == "tagwarden-locks");
        if (target_of(r) == "PutItem") {
            CHECK(in["ConditionExpression"] == "attribute_not_exists(LockKey) OR ExpiresAt < :now");
            CHECK(in["ExpressionAttributeValues"][":now"]["N"] == "1800000000");
            CHECK(in["Item"]["ExpiresAt"]["N"] == "1800000060");
            CHECK(in["Item"]["LockKey"]["S"] == "reg/app:1.0");
            CHECK(in["Item"]["LeaseToken"]["S"].get<std::string>().size() == 32);
            if (taken)
                return response(
                    400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                                         "message":"The conditional request failed"})");
            taken = true;
            return response(200, "{}");
        }
        if (target_of(r) == "GetItem") {
            CHECK(in["ConsistentRead"] == true);
            return response(200, R"({"Item":{"LockKey":{"S":"reg/app:1.0"},"LeaseToken":{"S":"other"},
                "ExpiresAt":{"N":"1800000030"},"AcquiredAt":{"N":"1799999970"},"TtlSeconds":{"N":"60"},
                "OwnerHost":{"S":"runner-7"},"OwnerPid":{"N":"4242"},"OwnerCiUrl":{"S":"https://ci/run/1"}}})");
        }
        return response(200, "{}");
    });
    auto backend = backend_with(transport, now);
    CHECK(backend->describe() == "dynamodb://tagwarden-locks (region eu-west-1, http://127.0.0.1:9)");
    LockOwner owner;
    owner.host = "me";
    owner.pid = 1;
    auto lease = backend->try_acquire("reg/app:1.0", owner, std::chrono::seconds(60));
    REQUIRE(lease);
    auto second = backend->try_acquire("reg/app:1.0", owner, std::chrono::seconds(60));
    REQUIRE_FALSE(second);
    CHECK(second.error().kind == ErrorKind::lock_unavailable);
    CHECK(second.error().message == "the lock reg/app:1.0 is held by pid 4242 on runner-7 "
                                    "(https://ci/run/1), since 2027-01-15T07:59:30Z, "
                                    "expires in 30 s");
    lease->reset(); // releases: a conditional DeleteItem on our token
    auto requests = transport->requests();
    auto release = requests.back();
    CHECK(target_of(release) == "DeleteItem");
    CHECK(json::parse(release.body)["ConditionExpression"] == "LeaseToken = :mine");
}

TEST_CASE("DynamoDB lock: a missing table names the create-table command", "[unit][aws][dynamodb]") {
    auto transport = std::make_shared<FakeTransport>([](const SentRequest&) -> Result<http::Response> {
        return response(400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                                 "message":"Requested resource not found"})");
    });
    auto backend = backend_with(transport, Clock::now());
    auto lease = backend->try_acquire("k", LockOwner{}, std::chrono::seconds(10));
    REQUIRE_FALSE(lease);
    CHECK(lease.error().kind == ErrorKind::invalid_input);
    CHECK(lease.error().message.find("aws dynamodb create-table --table-name tagwarden-locks") !=
          std::string::npos);
    CHECK(lease.error().message.find("--endpoint-url http://127.0.0.1:9") != std::string::npos);
}
