#include "commands.hpp"
#include "connection.hpp"
#include "guards.hpp"

#include <tagwarden/audit/audit.hpp>
#include <tagwarden/config/config.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/strings.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iostream>

namespace tagwarden::cli {

namespace {

// Repositories read at a time: ECR's read APIs have undocumented rate limits (throttling is retried).
constexpr int k_audit_jobs = 4;
// Exit code when a repository or template has an error finding (the guard-refusal class, as policy lint).
constexpr int k_audit_error_exit = 3;

struct AuditArgs {
    std::string registry;
    std::vector<std::string> repos;
    std::string days = "30";
    GuardArgs guard;  // --quota and --protect (the other guard options are not offered)
    std::string output = "text";
    ConnectionOptions connection;
};

Result<int> parse_days(const std::string& text) {
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < 1 || value > 3650)
        return fail(ErrorKind::invalid_input, "--days '" + text +
                                                  "' is not a number of days from 1 to 3650: how far ahead to look, "
                                                  "e.g. --days 30");
    return value;
}

Status append_summary(const std::string& markdown) {
    auto path = env_or_empty("GITHUB_STEP_SUMMARY");
    if (path.empty()) {
        log::warn("--output github: GITHUB_STEP_SUMMARY is not set (not a GitHub Actions step): no step summary "
                  "written");
        return {};
    }
    std::ofstream out(path, std::ios::app);
    out << markdown << "\n";
    out.flush();
    if (!out)
        return fail(ErrorKind::invalid_input, "--output github: cannot append to GITHUB_STEP_SUMMARY (" + path +
                                                  "): " + std::strerror(errno));
    return {};
}

int run_audit(const AuditArgs& args) {
    // Every option is checked before the first request.
    auto days = parse_days(args.days);
    if (!days)
        return report_error(days.error());
    if (args.registry.find('/') != std::string::npos)
        return report_error(Error(ErrorKind::invalid_input,
                                  "audit takes a registry host, not a repository: tagwarden audit "
                                  "ACCOUNT.dkr.ecr.REGION.amazonaws.com (or HOST[:PORT]) [--repos GLOB]..."));
    for (const auto& glob : args.repos)
        if (glob.empty())
            return report_error(Error(ErrorKind::invalid_input, "--repos '' matches nothing: give a repository name "
                                                                "or a glob such as 'team/*'"));
    auto cfg = config::load_config();
    if (!cfg)
        return report_error(cfg.error());
    auto settings = guard_settings(args.guard, *cfg);
    if (!settings)
        return report_error(settings.error());

    audit::AuditOptions options;
    options.repo_globs = args.repos;
    options.days = *days;
    options.settings = *settings;
    options.jobs = k_audit_jobs;

    AwsContext aws;
    std::string registry = args.registry;
    if (registry.empty()) {
        auto own = aws.default_ecr_registry();
        if (!own)
            return report_error(own.error());
        registry = *own;
        log::info("auditing " + registry + ", the ECR registry of these AWS credentials");
    }
    auto services = aws.services(registry);
    if (!services)
        return report_error(services.error());
    std::unique_ptr<registry::Client> client;
    if (!services->is_ecr()) {
        // The registry API only where the control plane cannot answer: catalog, tag lists, manifests.
        auto ref = Reference::parse(registry + "/audit");
        if (!ref)
            return report_error(ref.error().with_context("the registry " + registry));
        auto connected = connect(*ref, args.connection, false, aws);
        if (!connected)
            return report_error(connected.error());
        client = std::move(*connected);
    }
    auto now = std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
    auto report = audit::run_audit(registry, client.get(), *services, *cfg, options, now);
    if (!report)
        return report_error(report.error());

    if (args.output == "json") {
        std::cout << audit::to_json(*report).dump(2) << std::endl;
    } else {
        std::cout << audit::to_text(*report) << std::flush;
        if (args.output == "github") {
            if (auto written = append_summary(audit::to_markdown(*report)); !written)
                return report_error(written.error());
        }
    }
    return report->has_errors() ? k_audit_error_exit : 0;
}

} // namespace

CommandRun setup_audit_command(CLI::App& app, const GlobalOptions&) {
    auto args = std::make_shared<AuditArgs>();
    auto* cmd = app.add_subcommand(
        "audit", "Find the repositories that will fail next: no lifecycle policy, near the image quota, a policy "
                 "that expires protected images, mutable tags, templates that create repositories without a policy; "
                 "exit 3 when one has an error");
    cmd->add_option("registry", args->registry,
                    "The registry: ACCOUNT.dkr.ecr.REGION.amazonaws.com or HOST[:PORT] (default: the ECR registry of "
                    "the AWS credentials' account in AWS_REGION)");
    cmd->add_option("--repos", args->repos,
                    "Only repositories matching this glob ('*' any characters, '/' included; '?' one); repeatable")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--days", args->days,
                    "How far ahead to look for protected images the policy expires and for a full repository "
                    "(default 30)");
    cmd->add_option("--quota", args->guard.quota, "Images per repository, instead of what the registry says");
    cmd->add_option("--protect", args->guard.protect_file,
                    "File of digests the lifecycle policy must keep (e.g. what ECS runs), one per line");
    cmd->add_option("--output,-o", args->output,
                    "text (a table sorted by risk), json, or github (the table, and as Markdown in "
                    "$GITHUB_STEP_SUMMARY)")
        ->check(CLI::IsMember({"text", "json", "github"}));
    cmd->add_flag("--plain-http", args->connection.plain_http,
                  "Use HTTP instead of HTTPS (loopback registries fall back to HTTP on their own)");
    cmd->add_option("--ca-file", args->connection.ca_file,
                    "PEM file of CA certificates that sign the registry's TLS certificate");
    cmd->add_option("--username,-u", args->connection.username, "Registry user name (with --password-stdin)");
    cmd->add_flag("--password-stdin", args->connection.password_stdin,
                  "Read the registry password or token from stdin");
    return [args] { return run_audit(*args); };
}

} // namespace tagwarden::cli
