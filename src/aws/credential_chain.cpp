#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/core/reference.hpp>

#include <tagwarden/aws/sts.hpp>
#include <tagwarden/aws/wire.hpp>
#include <tagwarden/core/log.hpp>

#include <nlohmann/json.hpp>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace tagwarden::aws {

namespace {

constexpr std::string_view k_container_host = "http://169.254.170.2";
constexpr std::string_view k_imds_endpoint = "http://169.254.169.254";
constexpr std::string_view k_imds_ipv6_endpoint = "http://[fd00:ec2::254]";
constexpr std::string_view k_imds_token_ttl = "21600";

std::string trim_copy(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return std::string(s);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

Result<std::string> read_file(const std::string& path, std::string_view what) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fail(ErrorKind::auth,
                    "cannot read " + std::string(what) + " " + path + ": " + std::strerror(errno));
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void register_secrets(const Credentials& c) {
    log::add_secret(c.secret_access_key);
    log::add_secret(c.session_token);
}

// Shared by the providers of one chain.
struct ChainState {
    ChainOptions options;
    std::optional<SharedConfig> config;
    std::optional<Error> config_error;

    Clock::time_point now() const { return options.clock ? options.clock() : Clock::now(); }
    http::Transport& transport() const { return *options.transport; }
    http::Transport& metadata_transport() const {
        return options.metadata_transport ? *options.metadata_transport : *options.transport;
    }
    std::optional<std::string> region() const {
        return resolve_region(options.environment, config ? &*config : nullptr);
    }
    std::string sts_endpoint() const {
        return resolve_endpoint(k_sts, region().value_or(""), options.environment,
                                config ? &*config : nullptr);
    }
    std::optional<std::string> env(std::string_view name) const {
        return env_value(options.environment, name);
    }
    std::string session_name() const { return "tagwarden-" + std::to_string(to_epoch_seconds(now())); }
};

std::shared_ptr<ChainState> make_state(ChainOptions options) {
    auto state = std::make_shared<ChainState>();
    if (!options.transport)
        options.transport = http::make_curl_transport({});
    if (options.shared_config) {
        state->config = std::move(options.shared_config);
        options.shared_config.reset();
    } else {
        auto loaded = load_shared_config(options.environment);
        if (loaded)
            state->config = std::move(*loaded);
        else
            state->config_error = loaded.error();
    }
    state->options = std::move(options);
    return state;
}

// --- environment -------------------------------------------------------------------------------------

class EnvironmentProvider final : public CredentialProvider {
  public:
    explicit EnvironmentProvider(std::shared_ptr<ChainState> state) : m_state(std::move(state)) {}
    std::string name() const override { return "environment"; }
    Result<ProviderOutcome> load() override {
        auto key = m_state->env("AWS_ACCESS_KEY_ID");
        auto secret = m_state->env("AWS_SECRET_ACCESS_KEY");
        if (!key && !secret)
            return ProviderOutcome::skip("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
        if (!key || !secret)
            return fail(ErrorKind::auth, std::string("partial AWS credentials in the environment: ") +
                                             (key ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") +
                                             " is not set (set both, or neither)");
        TimedCredentials out;
        out.credentials = {*key, *secret, m_state->env("AWS_SESSION_TOKEN").value_or("")};
        register_secrets(out.credentials);
        if (auto expiration = m_state->env("AWS_CREDENTIAL_EXPIRATION"))
            if (auto when = parse_iso8601(*expiration))
                out.expiration = *when;
        out.source = "environment";
        return ProviderOutcome::found(std::move(out));
    }

  private:
    std::shared_ptr<ChainState> m_state;
};

// --- web identity ------------------------------------------------------------------------------------

Result<TimedCredentials> web_identity(const ChainState& state, const std::string& token_file,
                                      const std::string& role_arn, const std::string& session_name,
                                      std::string_view source) {
    auto token = read_file(token_file, "web identity token file");
    if (!token)
        return std::unexpected(token.error());
    std::string trimmed = trim_copy(*token);
    if (trimmed.empty())
        return fail(ErrorKind::auth, "web identity token file " + token_file + " is empty");
    AssumeRoleParams params{role_arn, session_name, "", std::nullopt};
    auto creds = assume_role_with_web_identity(state.transport(), state.sts_endpoint(), params, trimmed);
    if (!creds)
        return std::unexpected(creds.error());
    creds->source = std::string(source);
    return creds;
}

class WebIdentityProvider final : public CredentialProvider {
  public:
    explicit WebIdentityProvider(std::shared_ptr<ChainState> state) : m_state(std::move(state)) {}
    std::string name() const override { return "web identity"; }
    Result<ProviderOutcome> load() override {
        auto file = m_state->env("AWS_WEB_IDENTITY_TOKEN_FILE");
        auto role = m_state->env("AWS_ROLE_ARN");
        if (!file && !role)
            return ProviderOutcome::skip("AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set");
        if (!file)
            return ProviderOutcome::skip("AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not");
        if (!role)
            return ProviderOutcome::skip("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
        auto session = m_state->env("AWS_ROLE_SESSION_NAME").value_or(m_state->session_name());
        auto creds = web_identity(*m_state, *file, *role, session, "web identity (" + *role + ")");
        if (!creds)
            return std::unexpected(creds.error());
        return ProviderOutcome::found(std::move(*creds));
    }

  private:
    std::shared_ptr<ChainState> m_state;
};

// --- container ---------------------------------------------------------------------------------------

class ContainerProvider final : public CredentialProvider {
  public:
    explicit ContainerProvider(std::shared_ptr<ChainState> state) : m_state(std::move(state)) {}
    std::string name() const override { return "container"; }
    Result<ProviderOutcome> load() override {
        std::string url;
        if (auto relative = m_state->env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
            url = std::string(k_container_host) + (relative->starts_with("/") ? "" : "/") + *relative;
        } else if (auto full = m_state->env("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
            if (!container_full_uri_allowed(*full))
                return fail(
                    ErrorKind::auth,
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI must be an https URL, or an http URL to a loopback "
                    "address or the ECS/EKS agent (got " +
                        log::redact(*full) + ")");
            url = *full;
        } else {
            return ProviderOutcome::skip(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set");
        }
        http::Request request;
        request.method = "GET";
        request.url = url;
        std::optional<std::string> token;
        if (auto file = m_state->env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
            auto text = read_file(*file, "container authorization token file");
            if (!text)
                return std::unexpected(text.error());
            token = trim_copy(*text);
        } else if (auto value = m_state->env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
            token = *value;
        }
        if (token) {
            if (token->find_first_of("\r\n") != std::string::npos)
                return fail(ErrorKind::auth, "the container authorization token contains a line break");
            log::add_secret(*token);
            request.headers.add("Authorization", *token);
        }
        request.headers.add("Accept", "application/json");
        auto response = m_state->transport().send(request);
        if (!response)
            return std::unexpected(
                response.error().with_context("container credentials from " + log::redact(url)));
        if (response->status != 200) {
            Error e(response->status == 401 || response->status == 403 ? ErrorKind::auth
                                                                       : ErrorKind::registry,
                    "container credentials from " + url + ": HTTP " + std::to_string(response->status));
            e.http_status = response->status;
            return std::unexpected(e);
        }
        auto creds = parse_metadata_credentials(response->body, "container credentials (" + url + ")");
        if (!creds)
            return std::unexpected(creds.error());
        return ProviderOutcome::found(std::move(*creds));
    }

  private:
    std::shared_ptr<ChainState> m_state;
};

// --- IMDSv2 ------------------------------------------------------------------------------------------

class ImdsProvider final : public CredentialProvider {
  public:
    explicit ImdsProvider(std::shared_ptr<ChainState> state) : m_state(std::move(state)) {}
    std::string name() const override { return "IMDSv2"; }
    Result<ProviderOutcome> load() override {
        if (env_true(m_state->options.environment, "AWS_EC2_METADATA_DISABLED"))
            return ProviderOutcome::skip("disabled by AWS_EC2_METADATA_DISABLED=true");
        std::string endpoint(k_imds_endpoint);
        if (auto e = m_state->env("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
            endpoint = *e;
        else if (lower(m_state->env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE").value_or("")) == "ipv6")
            endpoint = k_imds_ipv6_endpoint;
        while (endpoint.size() > 1 && endpoint.back() == '/')
            endpoint.pop_back();
        auto& transport = m_state->metadata_transport();

        http::Request token_request;
        token_request.method = "PUT";
        token_request.url = endpoint + "/latest/api/token";
        token_request.headers.add("X-aws-ec2-metadata-token-ttl-seconds", std::string(k_imds_token_ttl));
        token_request.retryable = false;
        token_request.follow_redirects = false;
        auto token = transport.send(token_request);
        if (!token)
            return ProviderOutcome::skip("no instance metadata service at " + endpoint + " (" +
                                         token.error().message + ")");
        if (token->status != 200)
            return ProviderOutcome::skip("the IMDSv2 token request to " + endpoint + " was answered HTTP " +
                                         std::to_string(token->status));
        std::string imds_token = trim_copy(token->body);
        log::add_secret(imds_token);

        auto get = [&](const std::string& path) {
            http::Request request;
            request.method = "GET";
            request.url = endpoint + path;
            request.headers.add("X-aws-ec2-metadata-token", imds_token);
            request.retryable = false;
            request.follow_redirects = false;
            return transport.send(request);
        };
        const std::string base = "/latest/meta-data/iam/security-credentials/";
        auto roles = get(base);
        if (!roles)
            return std::unexpected(roles.error().with_context("IMDSv2 role name"));
        if (roles->status == 404)
            return ProviderOutcome::skip("the instance at " + endpoint +
                                         " has no IAM role (instance profile)");
        if (roles->status != 200)
            return fail(ErrorKind::auth, "IMDSv2 role name: HTTP " + std::to_string(roles->status));
        std::string role = trim_copy(roles->body.substr(0, roles->body.find('\n')));
        if (role.empty())
            return ProviderOutcome::skip("the instance at " + endpoint +
                                         " has no IAM role (instance profile)");
        auto document = get(base + role);
        if (!document)
            return std::unexpected(document.error().with_context("IMDSv2 credentials for role " + role));
        if (document->status != 200)
            return fail(ErrorKind::auth,
                        "IMDSv2 credentials for role " + role + ": HTTP " + std::to_string(document->status));
        auto creds = parse_metadata_credentials(document->body, "IMDSv2 role " + role);
        if (!creds)
            return std::unexpected(creds.error());
        return ProviderOutcome::found(std::move(*creds));
    }

  private:
    std::shared_ptr<ChainState> m_state;
};

// --- shared config and credentials files -------------------------------------------------------------

class ProfileProvider final : public CredentialProvider {
  public:
    explicit ProfileProvider(std::shared_ptr<ChainState> state) : m_state(std::move(state)) {}
    std::string name() const override {
        return "profile " + (m_state->config ? m_state->config->profile_name : std::string("default"));
    }
    Result<ProviderOutcome> load() override {
        if (m_state->config_error)
            return std::unexpected(*m_state->config_error);
        const auto& config = *m_state->config;
        const Profile* profile = config.selected();
        if (profile == nullptr) {
            std::string where = config.credentials_path + " or " + config.config_path;
            if (config.profile_from_environment)
                return fail(ErrorKind::auth, "AWS profile \"" + config.profile_name +
                                                 "\" (from AWS_PROFILE) is not in " + where);
            return ProviderOutcome::skip("no profile \"" + config.profile_name + "\" in " + where);
        }
        std::set<std::string> visited;
        return load_profile(*profile, visited, false);
    }

  private:
    Result<ProviderOutcome> load_profile(const Profile& profile, std::set<std::string>& visited,
                                         bool as_source) {
        const std::string label = "profile " + profile.name;
        if (!visited.insert(profile.name).second)
            return fail(ErrorKind::auth,
                        "AWS profile " + profile.name + " is part of a source_profile cycle");
        if (auto role = profile.get("role_arn"))
            return assume_profile_role(profile, *role, visited);
        if (auto key = profile.get("aws_access_key_id"))
            return static_keys(profile, *key);
        if (auto command = profile.get("credential_process")) {
            auto output = m_state->options.run_process ? m_state->options.run_process(*command)
                                                       : run_credential_process(*command);
            if (!output)
                return std::unexpected(output.error().with_context(label + " credential_process"));
            auto creds = parse_credential_process_output(*output);
            if (!creds)
                return std::unexpected(creds.error().with_context(label + " credential_process"));
            creds->source = label + " (credential_process)";
            return ProviderOutcome::found(std::move(*creds));
        }
        std::string why;
        if (profile.get("sso_session") || profile.get("sso_start_url"))
            why = label +
                  " uses IAM Identity Center (SSO), which tagwarden does not read; export credentials "
                  "with `aws configure export-credentials --profile " +
                  profile.name + " --format env`";
        else
            why = label + " has no credentials (aws_access_key_id, role_arn, credential_process)";
        if (as_source)
            return fail(ErrorKind::auth, "source " + why);
        return ProviderOutcome::skip(why);
    }

    Result<ProviderOutcome> static_keys(const Profile& profile, const std::string& key) {
        auto secret = profile.get("aws_secret_access_key");
        if (!secret)
            return fail(ErrorKind::auth,
                        "profile " + profile.name + " has aws_access_key_id but no aws_secret_access_key");
        TimedCredentials out;
        out.credentials = {
            key, *secret,
            profile.get("aws_session_token").value_or(profile.get("aws_security_token").value_or(""))};
        register_secrets(out.credentials);
        out.source = "profile " + profile.name;
        return ProviderOutcome::found(std::move(out));
    }

    Result<ProviderOutcome> assume_profile_role(const Profile& profile, const std::string& role,
                                                std::set<std::string>& visited) {
        const std::string label = "profile " + profile.name;
        std::string session = profile.get("role_session_name").value_or(m_state->session_name());
        if (auto token_file = profile.get("web_identity_token_file")) {
            auto creds =
                web_identity(*m_state, *token_file, role, session, label + " (web identity " + role + ")");
            if (!creds)
                return std::unexpected(creds.error());
            return ProviderOutcome::found(std::move(*creds));
        }
        Result<ProviderOutcome> source = fail(ErrorKind::internal, "unset");
        std::string source_label;
        if (auto source_name = profile.get("source_profile")) {
            source_label = "source_profile " + *source_name;
            if (*source_name == profile.name) {
                // A profile may name itself: its own static keys are the source (botocore allows this).
                auto key = profile.get("aws_access_key_id");
                if (!key)
                    return fail(ErrorKind::auth, label + " names itself as source_profile but has no keys");
                source = static_keys(profile, *key);
            } else {
                const Profile* source_profile = m_state->config->find(*source_name);
                if (source_profile == nullptr)
                    return fail(ErrorKind::auth,
                                label + ": source_profile " + *source_name + " does not exist");
                source = load_profile(*source_profile, visited, true);
            }
        } else if (auto credential_source = profile.get("credential_source")) {
            source_label = "credential_source " + *credential_source;
            if (*credential_source == "Environment")
                source = EnvironmentProvider(m_state).load();
            else if (*credential_source == "Ec2InstanceMetadata")
                source = ImdsProvider(m_state).load();
            else if (*credential_source == "EcsContainer")
                source = ContainerProvider(m_state).load();
            else
                return fail(ErrorKind::auth, label + ": unknown credential_source " + *credential_source +
                                                 " (Environment, Ec2InstanceMetadata or EcsContainer)");
        } else {
            return fail(
                ErrorKind::auth,
                label + " has role_arn but no source_profile, credential_source or web_identity_token_file");
        }
        if (!source)
            return std::unexpected(source.error());
        if (!source->credentials)
            return fail(ErrorKind::auth,
                        label + ": " + source_label + " gave no credentials: " + source->skipped);
        AssumeRoleParams params{role, session, profile.get("external_id").value_or(""), std::nullopt};
        if (auto duration = profile.get("duration_seconds")) {
            try {
                params.duration = std::chrono::seconds(std::stol(*duration));
            } catch (const std::exception&) {
                return fail(ErrorKind::invalid_input, label + ": duration_seconds is not a number");
            }
        }
        auto region = m_state->region().value_or("");
        auto creds = assume_role(m_state->transport(), m_state->sts_endpoint(), region,
                                 source->credentials->credentials, params, m_state->now());
        if (!creds)
            return std::unexpected(creds.error().with_context(label));
        creds->source = label + " (assume role " + role + " from " + source_label + ")";
        return ProviderOutcome::found(std::move(*creds));
    }

    std::shared_ptr<ChainState> m_state;
};

std::vector<std::unique_ptr<CredentialProvider>> providers_for(const std::shared_ptr<ChainState>& state) {
    std::vector<std::unique_ptr<CredentialProvider>> out;
    out.push_back(std::make_unique<EnvironmentProvider>(state));
    out.push_back(std::make_unique<WebIdentityProvider>(state));
    out.push_back(std::make_unique<ProfileProvider>(state));
    out.push_back(std::make_unique<ContainerProvider>(state));
    out.push_back(std::make_unique<ImdsProvider>(state));
    return out;
}

// Host of an http(s) URL without port or brackets, lower-cased.
std::optional<std::pair<std::string, std::string>> scheme_and_host(std::string_view url) {
    auto sep = url.find("://");
    if (sep == std::string_view::npos)
        return std::nullopt;
    std::string scheme = lower(url.substr(0, sep));
    std::string_view rest = url.substr(sep + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (auto at = rest.rfind('@'); at != std::string_view::npos)
        rest = rest.substr(at + 1);
    std::string host;
    if (rest.starts_with("[")) {
        auto close = rest.find(']');
        if (close == std::string_view::npos)
            return std::nullopt;
        host = std::string(rest.substr(1, close - 1));
    } else {
        host = std::string(rest.substr(0, rest.find(':')));
    }
    return std::make_pair(scheme, lower(host));
}

} // namespace

StaticCredentialSource::StaticCredentialSource(Credentials credentials)
    : m_credentials(std::move(credentials)) {
    register_secrets(m_credentials);
}

std::vector<std::unique_ptr<CredentialProvider>> make_default_providers(const ChainOptions& options) {
    return providers_for(make_state(options));
}

CredentialChain::CredentialChain(ChainOptions options) {
    auto state = make_state(std::move(options));
    m_options = state->options;
    m_config = state->config;
    m_providers = providers_for(state);
}

CredentialChain::CredentialChain(ChainOptions options,
                                 std::vector<std::unique_ptr<CredentialProvider>> providers)
    : m_providers(std::move(providers)) {
    auto state = make_state(std::move(options));
    m_options = state->options;
    m_config = state->config;
}

Clock::time_point CredentialChain::now() const {
    return m_options.clock ? m_options.clock() : Clock::now();
}

std::optional<std::string> CredentialChain::region() const {
    return resolve_region(m_options.environment, m_config ? &*m_config : nullptr);
}

std::string CredentialChain::endpoint(const ServiceInfo& service, std::string_view region) const {
    return resolve_endpoint(service, region, m_options.environment, m_config ? &*m_config : nullptr);
}

std::optional<std::string> CredentialChain::configured_endpoint(const ServiceInfo& service) const {
    return aws::configured_endpoint(service, m_options.environment, m_config ? &*m_config : nullptr);
}

std::vector<std::string> CredentialChain::provider_names() const {
    std::vector<std::string> names;
    for (const auto& p : m_providers)
        names.push_back(p->name());
    return names;
}

Result<Credentials> CredentialChain::credentials() {
    auto r = resolve();
    if (!r)
        return std::unexpected(r.error());
    return r->credentials;
}

void CredentialChain::invalidate() {
    std::lock_guard lock(m_mutex);
    if (m_cached && m_cached->expiration) {
        log::debug("AWS credentials from " + m_cached->source +
                   " were rejected as expired; fetching new ones");
        m_cached.reset();
    }
}

Result<TimedCredentials> CredentialChain::resolve() {
    std::lock_guard lock(m_mutex);
    const auto current = now();
    if (m_cached && (!m_cached->expiration || current + m_options.refresh_window < *m_cached->expiration))
        return *m_cached;
    if (m_cached) {
        auto& provider = *m_providers[m_cached_provider];
        log::debug("refreshing AWS credentials from " + m_cached->source);
        auto refreshed = provider.load();
        if (refreshed && refreshed->credentials) {
            m_cached = std::move(refreshed->credentials);
            return *m_cached;
        }
        std::string why = refreshed ? refreshed->skipped : refreshed.error().message;
        if (m_cached->expiration && current < *m_cached->expiration) {
            log::warn("refreshing AWS credentials from " + m_cached->source + " failed (" + why +
                      "); using the current ones until they expire");
            return *m_cached;
        }
        m_cached.reset();
        if (!refreshed) {
            Error e = refreshed.error().with_context("refreshing expired AWS credentials");
            e.message = log::redact(e.message);
            return std::unexpected(e);
        }
    }
    return run_chain();
}

Result<TimedCredentials> CredentialChain::run_chain() {
    std::string tried;
    for (std::size_t i = 0; i < m_providers.size(); ++i) {
        auto& provider = *m_providers[i];
        auto outcome = provider.load();
        if (!outcome) {
            Error e = outcome.error();
            e.message = log::redact("AWS credentials (" + provider.name() + "): " + e.message);
            return std::unexpected(e);
        }
        if (outcome->credentials) {
            log::debug("AWS credentials from " + outcome->credentials->source);
            m_cached = std::move(outcome->credentials);
            m_cached_provider = i;
            return *m_cached;
        }
        tried += (tried.empty() ? "" : "; ") + provider.name() + ": " + outcome->skipped;
    }
    return fail(
        ErrorKind::auth,
        log::redact("no AWS credentials found (tried " + tried +
                    "). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile with AWS_PROFILE, "
                    "or run where a role is available (web identity, ECS/CodeBuild, EC2)"));
}

std::shared_ptr<CredentialChain> make_default_credential_chain(std::shared_ptr<http::Transport> transport) {
    ChainOptions options;
    options.environment = process_environment();
    options.transport =
        transport ? std::move(transport) : std::shared_ptr<http::Transport>(http::make_curl_transport({}));
    http::TransportOptions imds;
    imds.connect_timeout = std::chrono::seconds(1);
    imds.stall_timeout = std::chrono::seconds(2);
    options.metadata_transport = http::make_curl_transport(imds);
    return std::make_shared<CredentialChain>(std::move(options));
}

Result<TimedCredentials> parse_credential_process_output(std::string_view output) {
    nlohmann::json doc = nlohmann::json::parse(output, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return fail(ErrorKind::auth, "the output is not a JSON object");
    auto version = doc.find("Version");
    if (version == doc.end() || !version->is_number_integer() || version->get<int>() != 1)
        return fail(ErrorKind::auth, "the output must have \"Version\": 1");
    auto str = [&](const char* key) -> std::optional<std::string> {
        auto it = doc.find(key);
        if (it == doc.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
            return std::nullopt;
        return it->get<std::string>();
    };
    auto key = str("AccessKeyId");
    auto secret = str("SecretAccessKey");
    if (!key || !secret)
        return fail(ErrorKind::auth, "the output lacks AccessKeyId or SecretAccessKey");
    TimedCredentials out;
    out.credentials = {*key, *secret, str("SessionToken").value_or("")};
    register_secrets(out.credentials);
    if (auto expiration = str("Expiration")) {
        auto when = parse_iso8601(*expiration);
        if (!when)
            return fail(ErrorKind::auth, "unreadable Expiration: " + when.error().message);
        out.expiration = *when;
    }
    out.source = "credential_process";
    return out;
}

Result<TimedCredentials> parse_metadata_credentials(std::string_view body, std::string_view source) {
    nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return fail(ErrorKind::auth, std::string(source) + ": the answer is not a JSON object");
    auto str = [&](const char* name) -> std::optional<std::string> {
        auto it = doc.find(name);
        if (it == doc.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
            return std::nullopt;
        return it->get<std::string>();
    };
    if (auto code = str("Code"); code && *code != "Success")
        return fail(ErrorKind::auth,
                    std::string(source) + ": Code " + *code + ": " + str("Message").value_or(""));
    auto key = str("AccessKeyId");
    auto secret = str("SecretAccessKey");
    if (!key || !secret)
        return fail(ErrorKind::auth,
                    std::string(source) + ": the answer lacks AccessKeyId or SecretAccessKey");
    TimedCredentials out;
    out.credentials = {*key, *secret, str("Token").value_or("")};
    register_secrets(out.credentials);
    if (auto expiration = str("Expiration")) {
        auto when = parse_iso8601(*expiration);
        if (!when)
            return fail(ErrorKind::auth,
                        std::string(source) + ": unreadable Expiration: " + when.error().message);
        out.expiration = *when;
    }
    out.source = std::string(source);
    return out;
}

bool container_full_uri_allowed(std::string_view url) {
    auto parsed = scheme_and_host(url);
    if (!parsed)
        return false;
    const auto& [scheme, host] = *parsed;
    if (scheme == "https")
        return !host.empty();
    if (scheme != "http")
        return false;
    if (host == "::1" || host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23")
        return true;
    return is_loopback_host(host);  // localhost, 127.0.0.0/8
}

} // namespace tagwarden::aws
