#pragma once

#include <tagwarden/aws/config.hpp>
#include <tagwarden/aws/credentials.hpp>
#include <tagwarden/core/error.hpp>
#include <tagwarden/http/transport.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The AWS default credential chain, in the SDKs' order:
//   1. environment      AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]
//   2. web identity     AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN [+ AWS_ROLE_SESSION_NAME] -> STS
//                       AssumeRoleWithWebIdentity (unsigned)
//   3. shared files     the selected profile: role_arn with source_profile / credential_source /
//                       web_identity_token_file (STS AssumeRole, signed with the source credentials;
//                       chains of roles allowed), static keys, credential_process
//   4. container        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2$URI) or
//                       AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to a loopback/ECS/EKS address),
//                       Authorization from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN
//   5. IMDSv2           token PUT, then role name and credentials GETs; AWS_EC2_METADATA_DISABLED=true skips
//                       it, AWS_EC2_METADATA_SERVICE_ENDPOINT (or _ENDPOINT_MODE=IPv6) moves it
// A provider that is not configured is skipped with a reason; one that is configured but fails stops the
// chain with its error (as botocore does), except IMDS, whose absence is normal off EC2. No credentials at
// all is Error{auth} listing every provider and why it was skipped. Every secret obtained (secret key,
// session token, web identity token, container authorization token) is registered with log::add_secret.
namespace tagwarden::aws {

using Clock = std::chrono::system_clock;

// Credentials with where they came from and, for temporary ones, when they expire.
struct TimedCredentials {
    Credentials credentials;
    std::optional<Clock::time_point> expiration; // nullopt: long-term keys
    std::string source;                          // "environment", "profile ci (credential_process)", ...
};

// What one provider found: credentials, or why it does not apply.
struct ProviderOutcome {
    std::optional<TimedCredentials> credentials;
    std::string skipped; // the reason, when there are no credentials

    static ProviderOutcome skip(std::string reason) { return {std::nullopt, std::move(reason)}; }
    static ProviderOutcome found(TimedCredentials c) { return {std::move(c), {}}; }
};

class CredentialProvider {
  public:
    virtual ~CredentialProvider() = default;
    [[nodiscard]] virtual std::string name() const = 0;
    // Credentials, a skip reason, or an error (configured but failed).
    virtual Result<ProviderOutcome> load() = 0;
};

// What a signer asks for credentials: the chain, or fixed credentials.
class CredentialSource {
  public:
    virtual ~CredentialSource() = default;
    // Current credentials, refreshed before they expire.
    virtual Result<Credentials> credentials() = 0;
    // The service rejected the current credentials as expired (ExpiredTokenException): drop any cache so the
    // next credentials() fetches new ones.
    virtual void invalidate() {}
};

class StaticCredentialSource final : public CredentialSource {
  public:
    explicit StaticCredentialSource(Credentials credentials);
    Result<Credentials> credentials() override { return m_credentials; }

  private:
    Credentials m_credentials;
};

// Runs a credential_process command line and returns its standard output.
using ProcessRunner = std::function<Result<std::string>(const std::string& command)>;

// The default ProcessRunner: COMMAND split into words as botocore splits it (split_command_line, i.e.
// shlex.split) and run directly, without a shell, so `;`, `$(...)` and `|` are plain arguments. stdout is
// captured, stderr passed through; the program's process group is killed after `timeout` (null:
// credential_program_timeout(), 30 s by default). A line that cannot be split is Error{invalid_input}; a
// program that cannot start, fails, or times out is Error{auth}.
Result<std::string> run_credential_process(const std::string& command,
                                           std::optional<std::chrono::milliseconds> timeout = std::nullopt);

struct ChainOptions {
    Environment environment;                             // read instead of the process environment
    std::shared_ptr<http::Transport> transport;          // STS and container credentials
    std::shared_ptr<http::Transport> metadata_transport; // IMDS; null: `transport`
    std::function<Clock::time_point()> clock;            // null: the system clock
    ProcessRunner run_process;                           // null: run_credential_process
    // Cached temporary credentials are refreshed when they expire within this window.
    std::chrono::seconds refresh_window{300};
    // Shared config override (tests); null: load_shared_config(environment) on first use.
    std::optional<SharedConfig> shared_config;
};

// The providers of the default chain, in order, over `options` (which they keep a copy of).
std::vector<std::unique_ptr<CredentialProvider>> make_default_providers(const ChainOptions& options);

class CredentialChain final : public CredentialSource {
  public:
    // The default chain.
    explicit CredentialChain(ChainOptions options);
    // A custom list of providers (tests, or a single forced provider).
    CredentialChain(ChainOptions options, std::vector<std::unique_ptr<CredentialProvider>> providers);

    // Cached credentials, refreshed (by re-running the provider that produced them) when they expire within
    // the refresh window. If a refresh fails while the cached credentials are still valid, they are used
    // and a warning is logged. Thread-safe.
    Result<Credentials> credentials() override;
    void invalidate() override;
    // As credentials(), with the source and expiration.
    Result<TimedCredentials> resolve();

    // The region for clients: AWS_REGION, AWS_DEFAULT_REGION, the profile's region.
    [[nodiscard]] std::optional<std::string> region() const;
    // The endpoint for `service` in `region` (see resolve_endpoint).
    [[nodiscard]] std::string endpoint(const ServiceInfo& service, std::string_view region) const;
    // The endpoint configured for `service` (see configured_endpoint), if any.
    [[nodiscard]] std::optional<std::string> configured_endpoint(const ServiceInfo& service) const;
    [[nodiscard]] std::vector<std::string> provider_names() const;
    [[nodiscard]] const Environment& environment() const { return m_options.environment; }

  private:
    Result<TimedCredentials> run_chain();
    [[nodiscard]] Clock::time_point now() const;

    ChainOptions m_options;
    std::optional<SharedConfig> m_config; // loaded once; empty when the files could not be read
    std::vector<std::unique_ptr<CredentialProvider>> m_providers;
    std::mutex m_mutex;
    std::optional<TimedCredentials> m_cached;
    std::size_t m_cached_provider = 0;
};

// The chain over the process environment. `transport` (null: a new curl transport) carries STS and container
// requests; IMDS gets its own curl transport with 1 s connect and stall timeouts.
std::shared_ptr<CredentialChain>
make_default_credential_chain(std::shared_ptr<http::Transport> transport = nullptr);

// --- Pieces of the providers, exposed for tests -------------------------------------------------------

// Parses credential_process output: {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken"?,
// "Expiration"? (ISO 8601)}. Error{auth} on anything else; the message never contains the output.
Result<TimedCredentials> parse_credential_process_output(std::string_view output);

// Parses a container or IMDS credentials document: {"AccessKeyId", "SecretAccessKey", "Token",
// "Expiration", "Code"? (IMDS: must be "Success")}.
Result<TimedCredentials> parse_metadata_credentials(std::string_view body, std::string_view source);

// Whether AWS_CONTAINER_CREDENTIALS_FULL_URI may be used over plain http: loopback hosts (127.0.0.0/8,
// ::1, localhost) and the ECS/EKS agent addresses (169.254.170.2, 169.254.170.23, fd00:ec2::23), as the SDKs
// allow. https is always allowed.
bool container_full_uri_allowed(std::string_view url);

} // namespace tagwarden::aws
