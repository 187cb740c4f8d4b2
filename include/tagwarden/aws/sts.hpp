#pragma once

#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/core/error.hpp>
#include <tagwarden/http/transport.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

// AWS STS over its query protocol (form-encoded POST, XML answers), only what the credential chain needs.
namespace tagwarden::aws {

// <ErrorResponse><Error><Type/><Code/><Message/></Error></ErrorResponse>
struct StsError {
    std::string code;
    std::string message;
};
std::optional<StsError> parse_sts_error(std::string_view xml);

// The <Credentials> of an AssumeRole / AssumeRoleWithWebIdentity answer. `source` names them in messages.
// Registers the secret key and session token as secrets.
Result<TimedCredentials> parse_sts_credentials(std::string_view xml, std::string_view source);

// Maps an STS error answer to an Error: InvalidIdentityToken, ExpiredToken*, AccessDenied,
// InvalidClientTokenId, SignatureDoesNotMatch, ... -> auth; Throttling, IDPCommunicationError, 5xx ->
// registry (transient); anything else -> registry.
Error sts_error(int http_status, std::string_view body, std::string_view operation);

struct AssumeRoleParams {
    std::string role_arn;
    std::string session_name;
    std::string external_id;                      // optional
    std::optional<std::chrono::seconds> duration; // optional DurationSeconds
};

// STS AssumeRole, SigV4-signed with `source` for service "sts" in `region` (us-east-1 for the global
// endpoint). Retried on throttling and transient failures.
Result<TimedCredentials> assume_role(http::Transport& transport, const std::string& endpoint,
                                     std::string_view region, const Credentials& source,
                                     const AssumeRoleParams& params, Clock::time_point now);

// STS AssumeRoleWithWebIdentity: an unsigned form POST carrying the token. Registers the token as a secret.
Result<TimedCredentials> assume_role_with_web_identity(http::Transport& transport,
                                                       const std::string& endpoint,
                                                       const AssumeRoleParams& params,
                                                       const std::string& web_identity_token);

// STS GetCallerIdentity (needs no IAM permission): the 12-digit account of `credentials`, SigV4-signed for
// `region`. Retried as AssumeRole.
Result<std::string> get_caller_account(http::Transport& transport, const std::string& endpoint,
                                       std::string_view region, const Credentials& credentials,
                                       Clock::time_point now);

} // namespace tagwarden::aws
