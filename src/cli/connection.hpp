#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/core/reference.hpp>
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

} // namespace tagwarden::cli
