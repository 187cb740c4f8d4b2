#include "connection.hpp"
#include "github_output.hpp"

#include <tagwarden/core/strings.hpp>
#include <tagwarden/http/transport.hpp>

#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/aws/sts.hpp>

#include <charconv>
#include <cstdlib>
#include <optional>
#include <map>
#include <mutex>
#include <filesystem>
#include <iostream>
#include <iterator>

namespace tagwarden::cli {

void add_connection_options(CLI::App* command, ConnectionOptions& options) {
    command->add_flag("--plain-http", options.plain_http,
                      "Use HTTP instead of HTTPS (loopback registries fall back to HTTP on their own)");
    command->add_option("--ca-file", options.ca_file, "PEM file of CA certificates that sign the registry's TLS certificate");
    command->add_option("--username,-u", options.username, "Registry user name (with --password-stdin)");
    command->add_flag("--password-stdin", options.password_stdin, "Read the registry password or token from stdin");
    command->add_option("--jobs,-j", options.jobs, "Parallel blob transfers (1-64, default 4)")
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
                int value = 0;
                auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
                if (ec != std::errc{} || end != text.data() + text.size() || value < 1 || value > 64)
                    return "'" + text + "' is not a number of parallel transfers from 1 to 64 (e.g. --jobs 4)";
                return {};
            },
            "1-64"));
}

namespace {

// "64MiB", "256M", "1GiB", "4096": a byte count from an environment variable (K/M/G, with or without "iB").
Result<std::uint64_t> byte_size_from_env(const char* name, std::uint64_t fallback) {
    auto text = env_or_empty(name);
    if (text.empty())
        return fallback;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    std::string_view unit(end, text.data() + text.size() - end);
    std::uint64_t scale = unit.empty() || unit == "B" ? 1
                          : unit == "K" || unit == "KiB" ? 1ULL << 10
                          : unit == "M" || unit == "MiB" ? 1ULL << 20
                          : unit == "G" || unit == "GiB" ? 1ULL << 30
                                                         : 0;
    if (ec != std::errc{} || end == text.data() || scale == 0 || value > (1ULL << 40))
        return fail(ErrorKind::invalid_input, std::string(name) + "='" + text +
                                                  "' is not a size: write bytes or a number with K, M or G (e.g. 64MiB)");
    return value * scale;
}

} // namespace

Result<std::unique_ptr<registry::Client>> connect(const Reference& ref, const ConnectionOptions& options,
                                                  bool push_access, AwsContext& aws) {
    registry::ClientOptions client_options;
    client_options.plain_http = options.plain_http;
    client_options.push_access = push_access;
    auto threshold = byte_size_from_env("TAGWARDEN_CHUNK_THRESHOLD", client_options.chunk_threshold);
    if (!threshold)
        return std::unexpected(threshold.error());
    auto chunk = byte_size_from_env("TAGWARDEN_CHUNK_SIZE", client_options.chunk_size);
    if (!chunk)
        return std::unexpected(chunk.error());
    if (*chunk < 1024)
        return fail(ErrorKind::invalid_input, "TAGWARDEN_CHUNK_SIZE must be at least 1KiB (e.g. 64MiB)");
    client_options.chunk_threshold = *threshold;
    client_options.chunk_size = *chunk;
    if (!options.ca_file.empty() && !std::filesystem::is_regular_file(options.ca_file))
        return fail(ErrorKind::invalid_input, "--ca-file " + options.ca_file + " is not a readable file");
    if (options.password_stdin != !options.username.empty())
        return fail(ErrorKind::invalid_input,
                    "--username and --password-stdin go together: pipe the password in, e.g. "
                    "`echo \"$REGISTRY_PASSWORD\" | tagwarden ... --username USER --password-stdin`");
    auto keychain = std::make_shared<registry::Keychain>();
    if (options.password_stdin) {
        std::string password(std::istreambuf_iterator<char>(std::cin), {});
        while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
            password.pop_back();
        if (password.empty())
            return fail(ErrorKind::invalid_input, "--password-stdin: nothing was read from stdin");
        keychain->set_explicit(ref.registry, registry::Credential{options.username, password, "", "--username/--password-stdin"});
    }
    // ECR: Basic AWS:<token> from GetAuthorizationToken, cached until it expires; no credential helper.
    if (options.password_stdin == false && aws::parse_ecr_host(ref.registry)) {
        auto services = aws.services(ref.registry);
        if (!services)
            return std::unexpected(services.error());
        std::shared_ptr<aws::EcrClient> shared = services->ecr;
        keychain->set_provider(ref.registry, [shared]() -> Result<registry::Credential> {
            auto token = shared->get_authorization_token();
            if (!token)
                return std::unexpected(token.error().with_context("ECR GetAuthorizationToken"));
            return registry::Credential{token->username, token->password, "", "ECR GetAuthorizationToken"};
        });
    }
    client_options.keychain = keychain;

    auto client = std::make_unique<registry::Client>(make_transport(options.ca_file), ref.registry, client_options);
    TW_TRY(client->ping());
    return client;
}

} // namespace tagwarden::cli

namespace tagwarden::cli {

Result<guard::AwsServices> AwsContext::services(const std::string& registry_host) {
    auto parsed = aws::parse_ecr_host(registry_host);
    if (!parsed)
        return guard::AwsServices{};
    if (auto it = m_services.find(registry_host); it != m_services.end())
        return it->second;
    if (!m_chain)
        m_chain = aws::make_default_credential_chain(make_transport(""));
    guard::AwsServices services;
    auto ecr = aws::make_ecr_client(*parsed, m_chain, make_transport(""));
    if (!ecr)
        return std::unexpected(ecr.error());
    services.ecr = std::move(*ecr);
    auto quotas = aws::make_aws_client(aws::k_service_quotas, m_chain, make_transport(""), parsed->region);
    if (!quotas)
        return std::unexpected(quotas.error());
    services.quotas = std::move(*quotas);
    services.quota_cache = m_quota_cache;
    m_services[registry_host] = services;
    return services;
}

Result<std::string> AwsContext::default_ecr_registry() {
    if (!m_chain)
        m_chain = aws::make_default_credential_chain(make_transport(""));
    auto region = m_chain->region();
    if (!region || region->empty())
        return fail(ErrorKind::invalid_input, "no registry given and no AWS region configured: name the registry "
                                              "(ACCOUNT.dkr.ecr.REGION.amazonaws.com or HOST[:PORT]), or set "
                                              "AWS_REGION for the ECR registry of your AWS account");
    auto credentials = m_chain->credentials();
    if (!credentials)
        return std::unexpected(credentials.error().with_context(
            "no registry given, so the ECR registry of your AWS account is audited, which needs AWS credentials"));
    auto endpoint = m_chain->configured_endpoint(aws::k_sts).value_or(m_chain->endpoint(aws::k_sts, *region));
    auto transport = make_transport("");
    auto account = aws::get_caller_account(*transport, endpoint, *region, *credentials, aws::Clock::now());
    if (!account)
        return std::unexpected(account.error().with_context("finding the AWS account of these credentials"));
    return *account + ".dkr.ecr." + *region + "." + aws::dns_suffix_for_region(*region);
}

Result<std::shared_ptr<registry::Client>> connect_source(const Reference& source, const Reference& destination,
                                                         std::shared_ptr<registry::Client> destination_client,
                                                         const ConnectionOptions& options, AwsContext& aws) {
    if (source.registry == destination.registry)
        return destination_client;
    ConnectionOptions source_options = options;
    source_options.username.clear();
    source_options.password_stdin = false;
    auto c = connect(source, source_options, false, aws);
    if (!c)
        return std::unexpected(c.error());
    return std::shared_ptr<registry::Client>(std::move(*c));
}

std::chrono::milliseconds write_timeout(const OpenLocks& locks) {
    // One write must end well inside the lease: a third of the TTL, at most 30 s.
    auto ttl = locks.set ? std::chrono::duration_cast<std::chrono::milliseconds>(locks.set->ttl())
                         : std::chrono::milliseconds(90000);
    return std::min(std::chrono::milliseconds(30000), ttl / 3);
}

push::PushOptions writing_options(const ConnectionOptions& connection, const OpenLocks& locks,
                                  const config::Config& cfg, bool dry_run) {
    push::PushOptions options;
    options.jobs = connection.jobs;
    options.dry_run = dry_run;
    options.naming = push::TagNaming{cfg.tag_template, cfg.environments, cfg.protected_environments};
    options.locks = locks.set.get();
    options.lock_timeout = locks.timeout;
    options.journals = locks.journals.get();
    options.run_id = locks.owner.run_id;
    options.write_timeout = write_timeout(locks);
    return options;
}

push::GuardedWrite guarded_write_request(const Reference& destination, const ConnectionOptions& connection,
                                         const OpenLocks& locks, const config::Config& cfg,
                                         guard::GuardSettings settings, bool confirm_with_preview, bool dry_run) {
    push::GuardedWrite write;
    write.destination = destination;
    write.options = writing_options(connection, locks, cfg, dry_run);
    write.settings = std::move(settings);
    write.confirm_with_preview = confirm_with_preview;
    write.lock_configured = locks.configured;
    write.lock_description = locks.backend->describe();
    write.in_ci = push::running_in_ci();
    write.registry_uses_ecr_token = !connection.password_stdin;  // as connect() sets up the keychain
    write.on_guards = note_guards;
    note_locks(locks.set.get(), locks.backend->describe());
    return write;
}

std::shared_ptr<http::Transport> make_lock_transport() {
    http::TransportOptions transport_options;
    transport_options.user_agent = std::string("tagwarden/") + TAGWARDEN_VERSION;
    transport_options.connect_timeout = std::chrono::seconds(5);
    return http::make_retry_transport(http::make_curl_transport(transport_options), http::RetryPolicy{});
}

std::shared_ptr<http::Transport> make_transport(const std::string& ca_file) {
    http::TransportOptions transport_options;
    // A transfer slower than 1 KiB/s for this long is aborted and retried (TAGWARDEN_STALL_TIMEOUT, default 60s).
    if (auto stall = env_or_empty("TAGWARDEN_STALL_TIMEOUT"); !stall.empty())
        if (auto d = config::parse_duration(stall, "TAGWARDEN_STALL_TIMEOUT"); d && d->count() > 0)
            transport_options.stall_timeout = *d;
    transport_options.ca_file = ca_file;
    transport_options.user_agent = std::string("tagwarden/") + TAGWARDEN_VERSION;
    if (auto all = env_or_empty("TAGWARDEN_RESOLVE"); !all.empty()) {
        std::size_t start = 0;
        while (start <= all.size()) {
            auto comma = all.find(',', start);
            auto entry = all.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            if (!entry.empty())
                transport_options.resolve.push_back(entry);
            if (comma == std::string::npos)
                break;
            start = comma + 1;
        }
    }
    std::shared_ptr<http::Transport> curl = http::make_curl_transport(transport_options);
    return http::make_retry_transport(curl, http::RetryPolicy{});
}

void add_lock_options(CLI::App* command, LockArgs& args) {
    command->add_option("--lock", args.url,
                        "Lock backend URL: dynamodb://TABLE?region=R or etcd://HOST:PORT[,HOST:PORT] (span runners), "
                        "file:///DIR (this machine only; the default, refused in CI); or TAGWARDEN_LOCK, or 'lock:' in "
                        "tagwarden.yaml");
    command->add_option("--lock-timeout", args.timeout, "How long to wait for a held tag lock (default 60s)");
    command->add_option("--lock-ttl", args.ttl, "Lease length; a dead holder's lock lapses after it (default 30s)");
}

namespace {

Result<std::optional<std::chrono::seconds>> lock_timeout_arg(const LockArgs& args) {
    if (args.timeout.empty())
        return std::optional<std::chrono::seconds>{};
    auto d = config::parse_duration(args.timeout, "--lock-timeout");
    if (!d)
        return std::unexpected(d.error());
    return std::optional<std::chrono::seconds>(*d);
}

Result<std::optional<std::chrono::seconds>> lock_ttl_arg(const LockArgs& args) {
    if (args.ttl.empty())
        return std::optional<std::chrono::seconds>{};
    auto d = config::parse_duration(args.ttl, "--lock-ttl");
    if (!d)
        return std::unexpected(d.error());
    if (*d < std::chrono::seconds(5))
        return fail(ErrorKind::invalid_input, "--lock-ttl must be at least 5s (e.g. --lock-ttl 30s): a shorter "
                                              "lease lapses before its heartbeat renews it");
    return std::optional<std::chrono::seconds>(*d);
}

} // namespace

Status validate_lock_args(const LockArgs& args) {
    TW_TRY(lock_timeout_arg(args));
    TW_TRY(lock_ttl_arg(args));
    return {};
}

Result<OpenLocks> open_locks(const LockArgs& args, const config::Config& cfg) {
    TW_TRY(validate_lock_args(args));
    OpenLocks out;
    out.configured = !args.url.empty() || !cfg.lock_url.empty();
    out.url = !args.url.empty() ? args.url : !cfg.lock_url.empty() ? cfg.lock_url : lock::default_lock_url();
    auto backend = lock::make_lock_backend(out.url, make_lock_transport());
    if (!backend)
        return std::unexpected(backend.error());
    out.backend = std::move(*backend);
    out.journals = out.backend->journal_store();
    if (!out.journals)
        out.journals = lock::make_file_journal_store(config::state_directory(cfg));
    out.timeout = lock_timeout_arg(args)->value_or(cfg.lock_timeout);
    auto ttl = lock_ttl_arg(args)->value_or(cfg.lock_ttl);
    out.owner = lock::LockOwner::current();
    out.set = std::make_unique<lock::LockSet>(*out.backend, out.owner, ttl);
    return out;
}

} // namespace tagwarden::cli
