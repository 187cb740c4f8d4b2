#pragma once

// CLI wiring only: each command file registers one subcommand and turns its options into library calls.

#include <tagwarden/core/error.hpp>

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace tagwarden::cli {

// Options every command accepts.
struct GlobalOptions {
    bool debug = false;
    bool quiet = false;
};

// A registered command: setup() adds the subcommand; the returned function runs it and returns the exit code.
using CommandRun = std::function<int()>;
struct Command {
    const char* name;
    CommandRun (*setup)(CLI::App& app, const GlobalOptions& global);
};

// Prints the error (redacted) to stderr and returns its exit code.
int report_error(const Error& error);

CommandRun setup_push_command(CLI::App& app, const GlobalOptions& global);
CommandRun setup_verify_command(CLI::App& app, const GlobalOptions& global);
CommandRun setup_policy_command(CLI::App& app, const GlobalOptions& global);
CommandRun setup_lock_command(CLI::App& app, const GlobalOptions& global);
CommandRun setup_promote_command(CLI::App& app, const GlobalOptions& global);
CommandRun setup_audit_command(CLI::App& app, const GlobalOptions& global);

} // namespace tagwarden::cli
