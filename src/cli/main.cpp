#include "commands.hpp"
#include "github_output.hpp"

#include <tagwarden/config/config.hpp>
#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/strings.hpp>
#include <tagwarden/core/log.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <exception>
#include <iostream>

namespace tagwarden::cli {

int report_error(const Error& error) {
    note_error(error);
    log::error(error.message);
    return exit_code(error.kind);
}

namespace {

// One row per subcommand; the order is the order of `tagwarden --help`.
const Command k_commands[] = {
    {"push", &setup_push_command},
    {"promote", &setup_promote_command},
    {"verify", &setup_verify_command},
    {"policy", &setup_policy_command},
    {"lock", &setup_lock_command},
    {"audit", &setup_audit_command},
};

// Debian's libcurl links librtmp, which links GnuTLS, whose load-time constructor initialises it (p11-kit
// trust modules, nettle, gmp) in every process: about 0.7 MiB resident for a library tagwarden never calls
// (curl speaks TLS through OpenSSL here). GnuTLS skips that when GNUTLS_NO_IMPLICIT_INIT is set when it is
// loaded, so tagwarden re-executes itself once with it set; the re-executed process removes both variables,
// so the programs it runs (credential helpers) get the environment it was given. The same pid throughout:
// a CI runner's signals reach it. When the re-exec is impossible (no /proc), the run goes on as it is.
void skip_gnutls_initialisation(char** argv) {
    constexpr const char* k_marker = "TAGWARDEN_GNUTLS_REEXEC";
    if (std::getenv(k_marker)) {
        ::unsetenv(k_marker);
        ::unsetenv("GNUTLS_NO_IMPLICIT_INIT");
        return;
    }
    if (std::getenv("GNUTLS_NO_IMPLICIT_INIT"))
        return;  // already the case: nothing to gain
    ::setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 1);
    ::setenv(k_marker, "1", 1);
    ::execv("/proc/self/exe", argv);
    ::unsetenv(k_marker);  // exec failed: carry on in this process
    ::unsetenv("GNUTLS_NO_IMPLICIT_INIT");
}

} // namespace
} // namespace tagwarden::cli

int main(int argc, char** argv) {
    using namespace tagwarden;
    cli::skip_gnutls_initialisation(argv);
    CLI::App app{"tagwarden: push images to OCI registries (Amazon ECR first) and refuse the pushes that break "
                 "releases"};
    app.set_version_flag("--version", std::string("tagwarden ") + TAGWARDEN_VERSION);
    app.require_subcommand(1);
    cli::GlobalOptions global;
    app.add_flag("--debug", global.debug, "Log every HTTP request (secrets redacted) to stderr");
    app.add_flag("-q,--quiet", global.quiet, "Log only errors");
    std::string timeout;
    app.add_option("--timeout", timeout,
                   "Stop any command after this long (e.g. 20m): transfers end, this run's tags are undone, locks "
                   "released, exit 8 (default 30m; or TAGWARDEN_TIMEOUT)");
    app.fallthrough();

    std::vector<std::pair<CLI::App*, cli::CommandRun>> runs;
    for (const auto& command : cli::k_commands) {
        auto before = app.get_subcommands({}).size();
        auto run = command.setup(app, global);
        auto subs = app.get_subcommands({});
        if (subs.size() > before)
            runs.emplace_back(subs.back(), std::move(run));
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        // CLI11 returns 0 for --help/--version and a non-zero code for usage errors: ours is 2.
        return code == 0 ? 0 : 2;
    }
    log::set_level(global.debug ? log::Level::debug : global.quiet ? log::Level::error : log::Level::info);
    // SIGINT/SIGTERM (a cancelled CI job): stop, undo this run's tags, release the locks, exit 130/143.
    cancel::install_signal_handlers();
    {
        std::string origin = "--timeout";
        if (timeout.empty()) {
            timeout = env_or_empty("TAGWARDEN_TIMEOUT");
            origin = "TAGWARDEN_TIMEOUT";
        }
        if (timeout.empty()) {
            timeout = "30m";
            origin = "the default --timeout";
        }
        auto limit = config::parse_duration(timeout, origin);
        if (!limit)
            return cli::report_error(limit.error());
        if (limit->count() <= 0)
            return cli::report_error(Error(ErrorKind::invalid_input, origin + " must be positive, e.g. 20m"));
        cancel::set_deadline(std::chrono::steady_clock::now() + *limit, origin + " of " + timeout);
        if (auto stall = env_or_empty("TAGWARDEN_STALL_TIMEOUT"); !stall.empty()) {
            auto d = config::parse_duration(stall, "TAGWARDEN_STALL_TIMEOUT");
            if (!d)
                return cli::report_error(d.error());
            if (d->count() <= 0)
                return cli::report_error(Error(ErrorKind::invalid_input, "TAGWARDEN_STALL_TIMEOUT must be positive, e.g. 60s"));
        }
    }

    try {
        for (auto& [sub, run] : runs)
            if (sub->parsed())
                return run();
    } catch (const std::exception& e) {
        log::error(std::string("internal error: ") + e.what());
        return 1;
    }
    return 2;
}
