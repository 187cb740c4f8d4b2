#include <tagwarden/aws/aws_client.hpp>

#include <tagwarden/aws/sigv4.hpp>
#include <tagwarden/core/log.hpp>

#include <array>

namespace tagwarden::aws {

namespace {

template <std::size_t N> bool one_of(const std::array<std::string_view, N>& list, std::string_view v) {
    for (auto x : list)
        if (x == v)
            return true;
    return false;
}

// botocore's ThrottledRetryableChecker codes (retries/standard.py) minus LimitExceededException, plus
// ThrottleException (ECR troubleshooting page).
constexpr std::array<std::string_view, 14> k_throttling = {"Throttling",
                                                           "ThrottlingException",
                                                           "ThrottledException",
                                                           "ThrottleException",
                                                           "RequestThrottledException",
                                                           "TooManyRequestsException",
                                                           "ProvisionedThroughputExceededException",
                                                           "TransactionInProgressException",
                                                           "RequestLimitExceeded",
                                                           "BandwidthLimitExceeded",
                                                           "RequestThrottled",
                                                           "SlowDown",
                                                           "PriorRequestNotComplete",
                                                           "EC2ThrottledException"};

// Service Quotas names its server fault ServiceException (HTTP 500).
constexpr std::array<std::string_view, 6> k_server_faults = {"ServerException", "InternalServerError",
                                                             "InternalFailure", "ServiceUnavailable",
                                                             "InternalServerException", "ServiceException"};

constexpr std::array<std::string_view, 14> k_auth = {"AccessDeniedException",
                                                     "AccessDenied",
                                                     "UnrecognizedClientException",
                                                     "InvalidSignatureException",
                                                     "SignatureDoesNotMatch",
                                                     "ExpiredTokenException",
                                                     "ExpiredToken",
                                                     "InvalidClientTokenId",
                                                     "MissingAuthenticationToken",
                                                     "MissingAuthenticationTokenException",
                                                     "IncompleteSignature",
                                                     "IncompleteSignatureException",
                                                     "NotAuthorized",
                                                     "AuthFailure"};

constexpr std::array<std::string_view, 4> k_invalid = {"ValidationException", "InvalidParameterException",
                                                       "SerializationException",
                                                       "InvalidParameterValueException"};

std::string auth_hint(std::string_view type) {
    if (type == "ExpiredTokenException" || type == "ExpiredToken")
        return " (the session token has expired: refresh the credentials)";
    if (type == "UnrecognizedClientException" || type == "InvalidClientTokenId")
        return " (the access key or session token is not valid: check the credentials' source and that the "
               "key was not revoked)";
    if (type == "InvalidSignatureException" || type == "SignatureDoesNotMatch")
        return " (the signature was rejected: check the secret access key and the system clock)";
    if (type == "AccessDeniedException" || type == "AccessDenied")
        return " (the credentials are valid but lack an IAM permission for this call)";
    return "";
}

} // namespace

std::string sanitize_error_type(std::string_view type) {
    if (auto colon = type.find(':'); colon != std::string_view::npos)
        type = type.substr(0, colon);
    if (auto hash = type.rfind('#'); hash != std::string_view::npos)
        type = type.substr(hash + 1);
    while (!type.empty() && (type.front() == ' ' || type.front() == '\t'))
        type.remove_prefix(1);
    while (!type.empty() && (type.back() == ' ' || type.back() == '\t'))
        type.remove_suffix(1);
    return std::string(type);
}

AwsErrorInfo parse_error_response(int http_status, const http::Headers& headers, std::string_view body) {
    AwsErrorInfo info;
    info.http_status = http_status;
    info.request_id = headers.get("x-amzn-RequestId").value_or(headers.get("x-amz-request-id").value_or(""));
    nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
    std::string type;
    if (auto header = headers.get("X-Amzn-Errortype"))
        type = *header;
    if (doc.is_object()) {
        auto text = [&](const char* key) -> std::string {
            auto it = doc.find(key);
            return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        if (type.empty())
            type = text("__type");
        if (type.empty())
            type = text("code");
        info.message = text("message");
        if (info.message.empty())
            info.message = text("Message");
        if (info.message.empty())
            info.message = text("errorMessage");
    }
    info.type = sanitize_error_type(type);
    if (info.message.empty() && !doc.is_object() && !body.empty())
        info.message = std::string(body.substr(0, 200));
    return info;
}

bool is_throttling_error(const AwsErrorInfo& error) {
    return error.http_status == 429 || one_of(k_throttling, error.type);
}

bool is_retryable_error(const AwsErrorInfo& error) {
    if (error.type == "LimitExceededException")
        return false;
    return is_throttling_error(error) || one_of(k_server_faults, error.type) ||
           (error.type.empty() && (error.http_status >= 500 || error.http_status == 408)) ||
           error.http_status == 502 || error.http_status == 503 || error.http_status == 504;
}

Error to_error(const AwsErrorInfo& error, std::string_view service, std::string_view operation) {
    Error e;
    e.http_status = error.http_status;
    e.registry_code = error.type;
    std::string text = std::string(service) + " " + std::string(operation) + ": ";
    text += error.type.empty() ? "HTTP " + std::to_string(error.http_status) : error.type;
    if (!error.message.empty()) {
        // AWS messages can span lines (InvalidSignatureException carries the canonical request and the
        // string to sign): keep the first line, so an error stays one line.
        auto first = error.message.substr(0, error.message.find_first_of("\r\n"));
        if (first.size() > 300)
            first = first.substr(0, 300) + "...";
        text += ": " + first;
    }
    if (one_of(k_auth, error.type) ||
        (error.type.empty() && (error.http_status == 401 || error.http_status == 403))) {
        e.kind = ErrorKind::auth;
        text += auth_hint(error.type);
    } else if (error.type == "ResourceNotFoundException" || error.type == "NoSuchResourceException" ||
               (error.type.ends_with("NotFoundException"))) {
        e.kind = ErrorKind::not_found;
    } else if (one_of(k_invalid, error.type)) {
        e.kind = ErrorKind::invalid_input;
    } else if (error.type == "LimitExceededException") {
        e.kind = ErrorKind::registry;
        text += " (a service quota was reached; this is not retried)";
    } else {
        e.kind = ErrorKind::registry;
        e.transient = is_retryable_error(error);
        if (is_throttling_error(error))
            text += " (throttled)";
    }
    if (!error.request_id.empty())
        text += " [request id " + error.request_id + "]";
    e.message = log::redact(text);
    return e;
}

AwsJsonClient::AwsJsonClient(const ServiceInfo& service, AwsClientConfig config)
    : m_service(service), m_config(std::move(config)) {
    while (m_config.endpoint.size() > 1 && m_config.endpoint.back() == '/')
        m_config.endpoint.pop_back();
}

Result<http::Response> AwsJsonClient::send_once(std::string_view operation, const std::string& body) {
    auto credentials = m_config.credentials->credentials();
    if (!credentials)
        return std::unexpected(credentials.error());
    const std::string url = m_config.endpoint + "/";
    const std::string target = std::string(m_service.target_prefix) + "." + std::string(operation);
    SigningRequest to_sign;
    to_sign.method = "POST";
    to_sign.url = url;
    to_sign.headers = {{"Content-Type", std::string(m_service.content_type)}, {"X-Amz-Target", target}};
    to_sign.payload_hash = sha256_hex(body);
    auto now = m_config.clock ? m_config.clock() : Clock::now();
    auto signed_headers = sign(to_sign, *credentials, m_config.region, m_service.signing_name, now);
    if (!signed_headers)
        return std::unexpected(signed_headers.error());
    http::Request request;
    request.method = "POST";
    request.url = url;
    request.retryable = false;
    request.follow_redirects = false;
    for (const auto& [name, value] : to_sign.headers)
        request.headers.add(name, value);
    for (const auto& [name, value] : signed_headers->headers_to_add)
        request.headers.add(name, value);
    request.body = std::make_shared<http::StringBody>(body);
    return m_config.transport->send(request);
}

Result<nlohmann::json> AwsJsonClient::call(std::string_view operation, const nlohmann::json& input) {
    const std::string what = std::string(m_service.name) + " " + std::string(operation);
    std::string body = "{}";
    if (!input.is_null() && !(input.is_object() && input.empty())) {
        try {
            body = input.dump();
        } catch (const nlohmann::json::exception&) {
            return fail(ErrorKind::invalid_input, what + ": the request holds text that is not valid UTF-8");
        }
    }
    const auto& policy = m_config.retry;
    bool renewed_credentials = false;
    for (int attempt = 1;; ++attempt) {
        auto response = send_once(operation, body);
        std::string reason;
        std::optional<std::string> retry_after;
        if (!response) {
            Error e = response.error();
            if (!e.transient || attempt >= policy.max_attempts)
                return std::unexpected(e.with_context(what));
            reason = e.message;
        } else if (response->status >= 200 && response->status < 300) {
            if (response->body.empty())
                return nlohmann::json::object();
            auto doc = nlohmann::json::parse(response->body, nullptr, false);
            if (doc.is_discarded())
                return fail(ErrorKind::registry, what + ": the answer is not JSON (HTTP " +
                                                     std::to_string(response->status) + ")");
            return doc;
        } else {
            auto info = parse_error_response(response->status, response->headers, response->body);
            if ((info.type == "ExpiredTokenException" || info.type == "ExpiredToken") &&
                !renewed_credentials) {
                // Temporary credentials expired earlier than their stated expiry (clock skew, revoked
                // session): fetch new ones once and resend.
                renewed_credentials = true;
                m_config.credentials->invalidate();
                --attempt;
                continue;
            }
            Error e = to_error(info, m_service.name, operation);
            if (!is_retryable_error(info) || attempt >= policy.max_attempts) {
                if (is_retryable_error(info))
                    e.message += " after " + std::to_string(attempt) + " attempts";
                return std::unexpected(e);
            }
            reason = info.type.empty() ? "HTTP " + std::to_string(info.http_status) : info.type;
            retry_after = response->headers.get("Retry-After");
        }
        auto delay = policy.delay(attempt, retry_after);
        http::log_retry(what, attempt, policy.max_attempts, delay, reason);
        if (!http::sleep_for(delay))
            return std::unexpected(http::cancelled_wait(what));
    }
}

Result<std::unique_ptr<AwsJsonClient>> make_aws_client(const ServiceInfo& service,
                                                       std::shared_ptr<CredentialChain> chain,
                                                       std::shared_ptr<http::Transport> transport,
                                                       std::string region, std::string endpoint) {
    if (region.empty())
        region = chain->region().value_or("");
    if (region.empty())
        return fail(ErrorKind::invalid_input,
                    "no AWS region for " + std::string(service.name) +
                        ": set AWS_REGION (or AWS_DEFAULT_REGION, or region in the profile)");
    if (endpoint.empty())
        endpoint = chain->endpoint(service, region);
    AwsClientConfig config;
    config.region = std::move(region);
    config.endpoint = std::move(endpoint);
    config.credentials = std::move(chain);
    config.transport = std::move(transport);
    return std::make_unique<AwsJsonClient>(service, std::move(config));
}

} // namespace tagwarden::aws
