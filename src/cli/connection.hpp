#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/aws/ecr.hpp>
#include <tagwarden/config/config.hpp>
#include <tagwarden/guard/facts.hpp>
#include <tagwarden/core/reference.hpp>
#include <tagwarden/lock/lock.hpp>
#include <tagwarden/push/guarded_write.hpp>
#include <tagwarden/push/push.hpp>
#include <tagwarden/registry/client.hpp>

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

namespace tagwarden::cli {

// Options that say how to reach and authenticate to a registry; shared by every command that talks to one.
struct ConnectionOptions {
    bool plain_http = false;
    std::string ca_file;
    std::string username;
    bool password_stdin = false;
    int jobs = 4;
};

void add_connection_options(CLI::App* command, ConnectionOptions& options);

// The AWS clients of one command: one credential chain, one quota cache (a quota is read once per account
// and region for the run), and per ECR registry host its ECR and Service Quotas clients, made on first
// use. Owned by the command and passed down (no process-wide state).
class AwsContext {
public:
    // The services for `registry_host`: both null when it is not an ECR registry.
    Result<guard::AwsServices> services(const std::string& registry_host);
    // The private ECR registry of the credentials' own account in the configured region
    // (ACCOUNT.dkr.ecr.REGION.SUFFIX, the account from STS GetCallerIdentity).
    Result<std::string> default_ecr_registry();

private:
    std::shared_ptr<aws::CredentialChain> m_chain;
    std::shared_ptr<aws::QuotaCache> m_quota_cache = std::make_shared<aws::QuotaCache>();
    std::map<std::string, guard::AwsServices> m_services;
};

// Builds a pinged client for `ref`'s registry. Reads the password from stdin when asked. ECR registries
// authenticate with GetAuthorizationToken through `aws`.
Result<std::unique_ptr<registry::Client>> connect(const Reference& ref, const ConnectionOptions& options,
                                                  bool push_access, AwsContext& aws);

// Lock settings from the command line; empty or zero values defer to the configuration.
struct LockArgs {
    std::string url;
    std::string timeout;
    std::string ttl;
};

void add_lock_options(CLI::App* command, LockArgs& args);

struct OpenLocks {
    std::unique_ptr<lock::LockBackend> backend;
    std::unique_ptr<lock::LockSet> set;
    // Journals beside the locks (etcd, DynamoDB), or in the state directory for file://.
    std::unique_ptr<lock::JournalStore> journals;
    lock::LockOwner owner;
    std::chrono::seconds timeout{0};
    bool configured = false;  // named by --lock, TAGWARDEN_LOCK or tagwarden.yaml (not the default)
    std::string url;
};

// Checks --lock-timeout and --lock-ttl (exit 2 with the fix) without opening anything; commands call it
// before their first request.
Status validate_lock_args(const LockArgs& args);

// Opens the lock backend named by --lock, TAGWARDEN_LOCK, tagwarden.yaml, or the default.
Result<OpenLocks> open_locks(const LockArgs& args, const config::Config& cfg);

// The client to read a source image from: `destination` itself when `source` is in the same registry,
// else a new pull-only client that does not use the explicit credentials (they are the destination's).
Result<std::shared_ptr<registry::Client>> connect_source(const Reference& source, const Reference& destination,
                                                         std::shared_ptr<registry::Client> destination_client,
                                                         const ConnectionOptions& options, AwsContext& aws);

// The bound of one manifest or tag write: a third of the lock TTL, at most 30 s (the lease must outlast it).
std::chrono::milliseconds write_timeout(const OpenLocks& locks);

// The push options every writing command shares: jobs, tag naming from the configuration, the locks and
// the journal directory.
push::PushOptions writing_options(const ConnectionOptions& connection, const OpenLocks& locks,
                                  const config::Config& cfg, bool dry_run);


// The guarded write every writing command makes: destination, writing options, guard settings and the
// lock choice (configured or the per-machine default; in CI or not).
push::GuardedWrite guarded_write_request(const Reference& destination, const ConnectionOptions& connection,
                                         const OpenLocks& locks, const config::Config& cfg,
                                         guard::GuardSettings settings, bool confirm_with_preview, bool dry_run);

// The transport for control-plane calls (lock backends): curl with the retry policy.
std::shared_ptr<http::Transport> make_transport(const std::string& ca_file);
// The transport for lock backends: a backend that does not answer within 5 s to connect is unreachable
// (exit 8) rather than a wait of minutes.
std::shared_ptr<http::Transport> make_lock_transport();

} // namespace tagwarden::cli
