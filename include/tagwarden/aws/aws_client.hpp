#pragma once

#include <tagwarden/aws/config.hpp>
#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/core/error.hpp>
#include <tagwarden/http/transport.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

// A client for AWS JSON 1.0/1.1 services (ECR, Service Quotas, DynamoDB): POST / with X-Amz-Target and the
// JSON Content-Type, SigV4-signed, through an http::Transport.
//
// Retries live here, and only here, for these calls: throttling (botocore's throttling codes such as
// ThrottlingException, ThrottledException, TooManyRequestsException, RequestLimitExceeded,
// ProvisionedThroughputExceededException, plus ECR's ThrottleException and HTTP 429), server faults (5xx,
// ServerException, InternalServerError, ServiceUnavailable) and transient network failures are retried with
// jittered exponential backoff (Retry-After honoured); each attempt is signed afresh. Requests are sent with
// retryable=false so a retrying transport underneath never stacks retries on top. LimitExceededException is a
// quota, reported at once, never retried (botocore's standard mode would retry it; in ECR it means "the
// repository is full").
namespace tagwarden::aws {

// An error answer, as the service sent it.
struct AwsErrorInfo {
    int http_status = 0;
    std::string type;    // sanitised: "ThrottlingException" (from X-Amzn-Errortype or __type or code)
    std::string message; // "message" or "Message"
    std::string request_id;
};

// Smithy's sanitising of an error type: the text before the first ':' and after the last '#'
// ("aws.ecr#RepositoryNotFoundException:http://..." -> "RepositoryNotFoundException").
std::string sanitize_error_type(std::string_view type);
// The error in a JSON-protocol response (header X-Amzn-Errortype first, then the body's __type or code).
AwsErrorInfo parse_error_response(int http_status, const http::Headers& headers, std::string_view body);

bool is_throttling_error(const AwsErrorInfo& error);
// Throttling, server faults.
bool is_retryable_error(const AwsErrorInfo& error);
// The Error for an error answer: `kind` auth for AccessDeniedException, UnrecognizedClientException,
// InvalidSignatureException, SignatureDoesNotMatch, ExpiredTokenException, InvalidClientTokenId,
// MissingAuthenticationToken(Exception), IncompleteSignature(Exception), 401/403 without a type;
// not_found for *NotFoundException and ResourceNotFoundException; invalid_input for ValidationException,
// InvalidParameterException, SerializationException; registry otherwise (transient for retryable ones).
// registry_code carries the type, http_status the status. The message is "SERVICE OPERATION: TYPE: MESSAGE"
// with a hint for auth errors, redacted.
Error to_error(const AwsErrorInfo& error, std::string_view service, std::string_view operation);

struct AwsClientConfig {
    std::string region;   // signing region
    std::string endpoint; // "https://api.ecr.us-east-1.amazonaws.com" (no trailing '/')
    std::shared_ptr<CredentialSource> credentials;
    std::shared_ptr<http::Transport> transport;
    http::RetryPolicy retry{};
    std::function<Clock::time_point()> clock; // null: the system clock
};

class AwsJsonClient {
  public:
    AwsJsonClient(const ServiceInfo& service, AwsClientConfig config);

    // Calls `operation` with `input` (an object; an empty object is sent as "{}"). Returns the parsed
    // response body ({} for an empty body), or the mapped error.
    Result<nlohmann::json> call(std::string_view operation, const nlohmann::json& input);

    [[nodiscard]] const std::string& region() const { return m_config.region; }
    [[nodiscard]] const std::string& endpoint() const { return m_config.endpoint; }
    [[nodiscard]] const ServiceInfo& service() const { return m_service; }

  private:
    Result<http::Response> send_once(std::string_view operation, const std::string& body);

    ServiceInfo m_service;
    AwsClientConfig m_config;
};

// A client for `service` configured from the chain: `region` (empty: the chain's region; none at all is
// Error{invalid_input}), the chain's endpoint for it unless `endpoint` is given.
Result<std::unique_ptr<AwsJsonClient>> make_aws_client(const ServiceInfo& service,
                                                       std::shared_ptr<CredentialChain> chain,
                                                       std::shared_ptr<http::Transport> transport,
                                                       std::string region = {}, std::string endpoint = {});

} // namespace tagwarden::aws
