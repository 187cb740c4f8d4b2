#include <tagwarden/aws/sts.hpp>

#include <tagwarden/aws/sigv4.hpp>
#include <tagwarden/aws/wire.hpp>
#include <tagwarden/core/log.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>

namespace tagwarden::aws {

namespace {

constexpr std::string_view k_version = "2011-06-15";

// STS error codes that mean the caller's credentials or token are not accepted.
constexpr std::array<std::string_view, 12> k_auth_codes = {
    "InvalidIdentityToken",       "ExpiredToken",
    "ExpiredTokenException",      "AccessDenied",
    "AccessDeniedException",      "InvalidClientTokenId",
    "SignatureDoesNotMatch",      "IncompleteSignature",
    "MissingAuthenticationToken", "UnrecognizedClientException",
    "RegionDisabledException",    "InvalidAuthorizationMessageException"};

constexpr std::array<std::string_view, 5> k_retry_codes = {"Throttling", "ThrottlingException",
                                                           "RequestLimitExceeded", "IDPCommunicationError",
                                                           "ServiceUnavailable"};

template <std::size_t N> bool contains(const std::array<std::string_view, N>& list, std::string_view v) {
    for (auto x : list)
        if (x == v)
            return true;
    return false;
}

// Sends `make()` with up to 3 attempts on transient failures (network, 5xx, throttling codes).
template <class MakeRequest>
Result<http::Response> send_sts(http::Transport& transport, MakeRequest&& make, std::string_view operation) {
    http::RetryPolicy policy;
    policy.max_attempts = 3;
    for (int attempt = 1;; ++attempt) {
        auto request = make();
        if (!request)
            return std::unexpected(request.error());
        request->retryable = false;
        auto response = transport.send(*request);
        std::string reason;
        if (!response) {
            if (!response.error().transient || attempt >= policy.max_attempts)
                return std::unexpected(response.error().with_context("STS " + std::string(operation)));
            reason = response.error().message;
        } else if (response->status >= 200 && response->status < 300) {
            return response;
        } else {
            auto err = sts_error(response->status, response->body, operation);
            if (!err.transient || attempt >= policy.max_attempts)
                return std::unexpected(err);
            reason = err.message;
        }
        auto delay = policy.delay(attempt, std::nullopt);
        http::log_retry("STS " + std::string(operation), attempt, policy.max_attempts, delay, reason);
        if (!http::sleep_for(delay))
            return std::unexpected(http::cancelled_wait("STS " + std::string(operation)));
    }
}

std::vector<std::pair<std::string, std::string>> common_fields(std::string_view action,
                                                               const AssumeRoleParams& params) {
    std::vector<std::pair<std::string, std::string>> fields = {{"Action", std::string(action)},
                                                               {"Version", std::string(k_version)},
                                                               {"RoleArn", params.role_arn},
                                                               {"RoleSessionName", params.session_name}};
    if (params.duration)
        fields.emplace_back("DurationSeconds", std::to_string(params.duration->count()));
    return fields;
}

} // namespace

std::optional<StsError> parse_sts_error(std::string_view xml) {
    auto code = xml_text(xml, {"Error", "Code"});
    if (!code)
        return std::nullopt;
    return StsError{*code, xml_text(xml, {"Error", "Message"}).value_or("")};
}

Result<TimedCredentials> parse_sts_credentials(std::string_view xml, std::string_view source) {
    auto key = xml_text(xml, {"Credentials", "AccessKeyId"});
    auto secret = xml_text(xml, {"Credentials", "SecretAccessKey"});
    auto token = xml_text(xml, {"Credentials", "SessionToken"});
    auto expiration = xml_text(xml, {"Credentials", "Expiration"});
    if (!key || !secret || key->empty() || secret->empty())
        return fail(ErrorKind::auth,
                    std::string(source) +
                        ": the STS answer has no Credentials (AccessKeyId, SecretAccessKey)");
    TimedCredentials out;
    out.credentials = {*key, *secret, token.value_or("")};
    log::add_secret(out.credentials.secret_access_key);
    log::add_secret(out.credentials.session_token);
    out.source = std::string(source);
    if (expiration && !expiration->empty()) {
        auto when = parse_iso8601(*expiration);
        if (!when)
            return fail(ErrorKind::auth, std::string(source) + ": unreadable Expiration in the STS answer: " +
                                             when.error().message);
        out.expiration = *when;
    }
    return out;
}

Error sts_error(int http_status, std::string_view body, std::string_view operation) {
    auto parsed = parse_sts_error(body);
    std::string code = parsed ? parsed->code : "";
    std::string text = "STS " + std::string(operation) + " failed (HTTP " + std::to_string(http_status) + ")";
    if (parsed)
        text += ": " + parsed->code + (parsed->message.empty() ? "" : ": " + parsed->message);
    Error e;
    e.http_status = http_status;
    e.registry_code = code;
    if (contains(k_auth_codes, code) || (code.empty() && (http_status == 401 || http_status == 403))) {
        e.kind = ErrorKind::auth;
    } else if (contains(k_retry_codes, code) || http_status == 429 || http_status >= 500) {
        e.kind = ErrorKind::registry;
        e.transient = true;
    } else {
        e.kind = ErrorKind::registry;
    }
    e.message = log::redact(text);
    return e;
}

namespace {

// The request maker send_sts calls for each attempt: a POST of `body` to STS signed with `credentials`.
std::function<Result<http::Request>()> signed_sts_request(const std::string& endpoint, std::string body,
                                                          const Credentials& credentials, std::string_view region,
                                                          Clock::time_point now, std::string operation) {
    return [url = endpoint + "/", body = std::move(body), &credentials,
            signing_region = region.empty() ? std::string("us-east-1") : std::string(region), now,
            operation = std::move(operation)]() -> Result<http::Request> {
        http::Request request;
        request.method = "POST";
        request.url = url;
        request.headers.add("Content-Type", std::string(k_sts.content_type));
        SigningRequest to_sign{"POST", url, {{"Content-Type", std::string(k_sts.content_type)}}, sha256_hex(body)};
        auto signed_headers = sign(to_sign, credentials, signing_region, "sts", now);
        if (!signed_headers)
            return std::unexpected(signed_headers.error().with_context("STS " + operation));
        for (const auto& [name, value] : signed_headers->headers_to_add)
            request.headers.add(name, value);
        request.body = std::make_shared<http::StringBody>(body);
        return request;
    };
}

} // namespace

Result<TimedCredentials> assume_role(http::Transport& transport, const std::string& endpoint,
                                     std::string_view region, const Credentials& source,
                                     const AssumeRoleParams& params, Clock::time_point now) {
    auto fields = common_fields("AssumeRole", params);
    if (!params.external_id.empty())
        fields.emplace_back("ExternalId", params.external_id);
    auto response = send_sts(transport, signed_sts_request(endpoint, form_encode(fields), source, region, now,
                                                           "AssumeRole"),
                             "AssumeRole");
    if (!response)
        return std::unexpected(response.error().with_context("assuming role " + params.role_arn));
    return parse_sts_credentials(response->body, "role " + params.role_arn);
}

Result<TimedCredentials> assume_role_with_web_identity(http::Transport& transport,
                                                       const std::string& endpoint,
                                                       const AssumeRoleParams& params,
                                                       const std::string& web_identity_token) {
    log::add_secret(web_identity_token);
    auto fields = common_fields("AssumeRoleWithWebIdentity", params);
    fields.emplace_back("WebIdentityToken", web_identity_token);
    const std::string body = form_encode(fields);
    auto make = [&]() -> Result<http::Request> {
        http::Request request;
        request.method = "POST";
        request.url = endpoint + "/";
        request.headers.add("Content-Type", std::string(k_sts.content_type));
        request.body = std::make_shared<http::StringBody>(body);
        return request;
    };
    auto response = send_sts(transport, make, "AssumeRoleWithWebIdentity");
    if (!response)
        return std::unexpected(response.error().with_context("web identity for role " + params.role_arn));
    return parse_sts_credentials(response->body, "web identity role " + params.role_arn);
}

Result<std::string> get_caller_account(http::Transport& transport, const std::string& endpoint,
                                       std::string_view region, const Credentials& credentials,
                                       Clock::time_point now) {
    const std::string body = form_encode({{"Action", "GetCallerIdentity"}, {"Version", std::string(k_version)}});
    auto response = send_sts(transport, signed_sts_request(endpoint, body, credentials, region, now, "GetCallerIdentity"),
                             "GetCallerIdentity");
    if (!response)
        return std::unexpected(response.error());
    auto account = xml_text(response->body, {"GetCallerIdentityResult", "Account"});
    if (!account || account->size() != 12 ||
        !std::all_of(account->begin(), account->end(), [](unsigned char c) { return std::isdigit(c) != 0; }))
        return fail(ErrorKind::registry, "STS GetCallerIdentity answered no 12-digit Account");
    return *account;
}

} // namespace tagwarden::aws
