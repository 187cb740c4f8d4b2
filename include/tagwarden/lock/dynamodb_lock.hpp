#pragma once

#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/core/error.hpp>
#include <tagwarden/http/transport.hpp>
#include <tagwarden/lock/lock.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

// The DynamoDB lock backend (src/lock/dynamodb_lock.cpp): one item per lock in a table keyed by the string
// attribute LockKey, with LeaseToken (random, per acquisition), ExpiresAt and AcquiredAt (epoch seconds),
// TtlSeconds and the owner (OwnerHost, OwnerPid, OwnerRunId, OwnerCiUrl).
//   acquire   PutItem if attribute_not_exists(LockKey) OR ExpiresAt < :now; on a failed condition the
//             holder is read back (consistent GetItem) into the Error{lock_unavailable} message
//   renew     UpdateItem SET ExpiresAt if LeaseToken = :mine
//   check     consistent GetItem: the token is still ours and ExpiresAt is in the future
//   release   DeleteItem if LeaseToken = :mine
//   list      Scan (consistent), journal items skipped; force_release: unconditional DeleteItem
// Journals (journal_store()) are items of the same table: LockKey "journal#<run_id>", Kind "journal",
// Document, the owner attributes, ExpiresAt (the table's TTL drops them); documents over 350 KB are refused.
// init() creates the table (PAY_PER_REQUEST) when missing, waits until ACTIVE and enables TTL on ExpiresAt.
// Elsewhere a missing table is Error{invalid_input} giving `tagwarden lock init` and the create-table command;
// an endpoint that does not answer is unreachable_error (Error{registry}).
namespace tagwarden::lock {

// dynamodb://TABLE?region=R[&endpoint=URL] (the endpoint may be percent-encoded).
struct DynamoDbLockUrl {
    std::string table;
    std::string region;   // empty: from the environment / profile
    std::string endpoint; // empty: AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL, or https://dynamodb.REGION...
};
Result<DynamoDbLockUrl> parse_dynamodb_lock_url(std::string_view url);

// The `aws dynamodb create-table` command that makes a table this backend can use.
std::string dynamodb_create_table_command(std::string_view table, std::string_view region,
                                          std::string_view endpoint);

struct DynamoDbLockOptions {
    std::string table;
    std::string region;
    std::string endpoint; // full URL, no trailing '/'
    std::shared_ptr<aws::CredentialSource> credentials;
    std::shared_ptr<http::Transport> transport;
    std::function<Clock::time_point()> clock; // null: the system clock
    http::RetryPolicy retry{};
};

Result<std::unique_ptr<LockBackend>> make_dynamodb_backend(DynamoDbLockOptions options);

// The scheme-table factory: parses `url`; credentials, region and endpoint fall back to the AWS default chain
// over the process environment; requests go through `transport` (null: a new curl transport).
Result<std::unique_ptr<LockBackend>> make_dynamodb_backend(std::string_view url,
                                                           std::shared_ptr<http::Transport> transport);

} // namespace tagwarden::lock
