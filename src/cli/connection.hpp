#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/aws/ecr.hpp>
#include <tagwarden/config/config.hpp>
#include <tagwarden/core/reference.hpp>
#include <tagwarden/lock/lock.hpp>
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

// Builds a pinged client for `ref`'s registry. Reads the password from stdin when asked.
Result<std::unique_ptr<registry::Client>> connect(const Reference& ref, const ConnectionOptions& options,
                                                  bool push_access);

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
    lock::LockOwner owner;
    std::chrono::seconds timeout{0};
};

// Opens the lock backend named by --lock, TAGWARDEN_LOCK, tagwarden.yaml, or the default.
Result<OpenLocks> open_locks(const LockArgs& args, const config::Config& cfg);

// The client to read a source image from: `destination` itself when `source` is in the same registry,
// else a new pull-only client that does not use the explicit credentials (they are the destination's).
Result<std::shared_ptr<registry::Client>> connect_source(const Reference& source, const Reference& destination,
                                                         std::shared_ptr<registry::Client> destination_client,
                                                         const ConnectionOptions& options);

// The push options every writing command shares: jobs, tag naming from the configuration, the locks and
// the journal directory.
push::PushOptions writing_options(const ConnectionOptions& connection, const OpenLocks& locks,
                                  const config::Config& cfg, bool dry_run);

// The ECR control-plane client for an ECR registry host (cached per host for the process), or nullptr
// when the host is not ECR. Credentials come from the AWS chain.
Result<std::shared_ptr<aws::EcrClient>> ecr_client_for(const std::string& registry_host);
// Service Quotas in the ECR registry's region, or nullptr when not ECR.
Result<std::shared_ptr<aws::AwsJsonClient>> service_quotas_for(const std::string& registry_host);

// The transport for control-plane calls (lock backends): curl with the retry policy.
std::shared_ptr<http::Transport> make_transport(const std::string& ca_file);

} // namespace tagwarden::cli
