#include "commands.hpp"
#include "connection.hpp"
#include "guards.hpp"

#include <tagwarden/guard/facts.hpp>

#include <tagwarden/config/config.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/policy/evaluate.hpp>
#include <tagwarden/policy/image_record.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>
#include <tagwarden/policy/lint.hpp>
#include <tagwarden/policy/report.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

namespace tagwarden::cli {

namespace {

// Exit code of `policy lint` when a finding has error severity (the guard-refusal class).
constexpr int k_lint_error_exit = 3;

struct SimulateArgs {
    std::string policy_file;
    std::string images_file;
    std::string repo;
    std::string at;
    std::string output = "text";
};

struct LintArgs {
    std::string policy_file;
    std::string output = "text";
    std::string config_file;
};

Result<std::string> read_input(const std::string& path, const char* what) {
    if (path == "-") {
        std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
        return text;
    }
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        return fail(ErrorKind::invalid_input, "--" + std::string(what) + " " + path + " is a directory: give the " +
                                                  what + " file inside it (or '-' for stdin)");
    if (!std::filesystem::exists(path, ec))
        return fail(ErrorKind::invalid_input, "--" + std::string(what) + " " + path + " does not exist: give the " +
                                                  what + " file (or '-' for stdin)");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fail(ErrorKind::invalid_input, std::string("cannot read the ") + what + " file " + path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

// Reports policy problems (stderr; also stdout as JSON with --output json) and returns the bad-input exit
// code.
int report_problems(const std::string& path, const std::vector<policy::PolicyProblem>& problems, bool json) {
    log::error(path + ": invalid lifecycle policy (" + std::to_string(problems.size()) +
               (problems.size() == 1 ? " problem)" : " problems)"));
    for (const auto& p : problems)
        log::error("  " + policy::to_string(p));
    if (json)
        std::cout << policy::problems_json(problems).dump(2) << std::endl;
    return exit_code(ErrorKind::invalid_input);
}

Result<policy::LifecyclePolicy> checked_policy_text(const std::string& text, const std::string& origin, bool json,
                                                   int& exit) {
    auto problems = policy::check_policy(text);
    if (!problems.empty()) {
        exit = report_problems(origin, problems, json);
        return fail(ErrorKind::invalid_input, "invalid policy");
    }
    return policy::parse_policy(text);
}

Result<policy::LifecyclePolicy> checked_policy(const std::string& path, bool json, int& exit) {
    auto text = read_input(path, "policy");
    if (!text) {
        exit = report_error(text.error());
        return std::unexpected(text.error());
    }
    return checked_policy_text(*text, path, json, exit);
}


int run_simulate(const SimulateArgs& args) {
    if (args.policy_file == "-" && args.images_file == "-")
        return report_error(
            Error(ErrorKind::invalid_input, "--policy and --images cannot both read stdin ('-')"));
    bool json = args.output == "json";
    int exit = 0;
    Result<policy::LifecyclePolicy> policy;
    Result<std::vector<policy::ImageRecord>> images;
    if (!args.repo.empty()) {
        // The images (and, without --policy, the policy) of an ECR repository, read with its API.
        auto ref = Reference::parse(args.repo);
        if (!ref)
            return report_error(ref.error());
        AwsContext aws;
        auto services = aws.services(ref->registry);
        if (!services)
            return report_error(services.error());
        auto facts = guard::read_ecr_facts(*ref, *services);
        if (!facts)
            return report_error(facts.error());
        images = facts->images;
        if (!args.policy_file.empty())
            policy = checked_policy(args.policy_file, json, exit);
        else if (facts->policy_text)
            policy = checked_policy_text(*facts->policy_text, ref->name() + " (ECR)", json, exit);
        else
            return report_error(Error(ErrorKind::invalid_input, ref->name() +
                                                                    " has no lifecycle policy: pass --policy FILE to "
                                                                    "simulate one over its images"));
        if (!policy)
            return exit ? exit : report_error(policy.error());
    } else {
        if (args.policy_file.empty() || args.images_file.empty())
            return report_error(Error(ErrorKind::invalid_input,
                                      "simulate needs --policy and --images (describe-images JSON), or --repo "
                                      "REGISTRY/REPO to read an ECR repository"));
        policy = checked_policy(args.policy_file, json, exit);
        if (!policy)
            return exit;
        auto images_text = read_input(args.images_file, "images");
        if (!images_text)
            return report_error(images_text.error());
        images = policy::parse_describe_images(*images_text);
        if (!images)
            return report_error(images.error());
    }
    policy::TimePoint now = std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
    if (!args.at.empty()) {
        auto at = policy::parse_time(args.at);
        if (!at)
            return report_error(at.error().with_context("--at"));
        now = *at;
    }
    auto decisions = policy::evaluate(*policy, *images, now);
    if (json)
        std::cout << policy::simulation_json(*images, decisions).dump(2) << std::endl;
    else
        std::cout << policy::simulation_text(*images, decisions, now);
    return 0;
}

int run_lint(const LintArgs& args) {
    bool json = args.output == "json";
    int exit = 0;
    auto policy = checked_policy(args.policy_file, json, exit);
    if (!policy)
        return exit;
    // Protected environments and the tag template come from tagwarden.yaml (--config, TAGWARDEN_CONFIG
    // or ./tagwarden.yaml), like push's.
    auto cfg = config::load_config(args.config_file);
    if (!cfg)
        return report_error(cfg.error());
    policy::LintConfig lint_config;
    lint_config.protected_envs = cfg->protected_environments;
    lint_config.tag_template = cfg->tag_template;
    auto findings = policy::lint(*policy, lint_config);
    if (json)
        std::cout << policy::lint_json(findings).dump(2) << std::endl;
    else
        std::cout << policy::lint_text(findings);
    return policy::has_errors(findings) ? k_lint_error_exit : 0;
}

} // namespace

CommandRun setup_policy_command(CLI::App& app, const GlobalOptions&) {
    auto* cmd = app.add_subcommand("policy", "Simulate and lint Amazon ECR lifecycle policies");
    cmd->require_subcommand(1);

    auto simulate = std::make_shared<SimulateArgs>();
    auto* sim = cmd->add_subcommand(
        "simulate",
        "Show what a lifecycle policy would expire or archive in a repository, as ECR evaluates it");
    sim->add_option("--policy", simulate->policy_file,
                    "Lifecycle policy JSON file ('-' for stdin); with --repo, default: the repository's own");
    sim->add_option("--images", simulate->images_file,
                    "`aws ecr describe-images --filter imageStatus=ANY` output ('-' for stdin)");
    sim->add_option("--repo", simulate->repo,
                    "Read the images (and the policy) from this ECR repository instead: REGISTRY/REPO");
    sim->add_option("--at", simulate->at, "Evaluate at this time (ISO 8601 or epoch seconds; default: now)");
    sim->add_option("--output,-o", simulate->output, "Result format on stdout: text or json")
        ->check(CLI::IsMember({"text", "json"}));

    auto linting = std::make_shared<LintArgs>();
    auto* lnt = cmd->add_subcommand(
        "lint", "Find rules that can expire protected images; exit 3 when a finding is an error");
    lnt->add_option("--policy", linting->policy_file, "Lifecycle policy JSON file ('-' for stdin)")
        ->required();
    lnt->add_option("--config", linting->config_file,
                    "tagwarden.yaml to read protected_environments and tag_template from (default: ./tagwarden.yaml)");
    lnt->add_option("--output,-o", linting->output, "Result format on stdout: text or json")
        ->check(CLI::IsMember({"text", "json"}));

    return [sim, lnt, simulate, linting]() -> int {
        if (sim->parsed())
            return run_simulate(*simulate);
        if (lnt->parsed())
            return run_lint(*linting);
        return exit_code(ErrorKind::invalid_input);
    };
}

} // namespace tagwarden::cli
