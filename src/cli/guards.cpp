#include "guards.hpp"

#include <tagwarden/guard/facts.hpp>

namespace tagwarden::cli {

void add_guard_options(CLI::App* command, GuardArgs& args) {
    command->add_flag("--allow-no-lifecycle-policy", args.allow_no_policy,
                      "Push even though the repository has no lifecycle policy (logged as a warning)");
    command->add_option("--quota-threshold", args.quota_threshold,
                        "Refuse at or above this share of the image quota (default 0.9)");
    command->add_option("--quota", args.quota, "The repository's image quota, where the registry cannot say");
    command->add_option("--protect", args.protect_file,
                        "File of digests the lifecycle policy must keep (e.g. what ECS runs), one per line");
    command->add_flag("--confirm-with-preview", args.confirm_with_preview,
                      "ECR: also run ECR's own lifecycle policy preview and report where it disagrees with the "
                      "local simulation");
}

Result<guard::GuardSettings> guard_settings(const GuardArgs& args, const config::Config& cfg) {
    guard::GuardSettings settings;
    settings.allow_no_policy = args.allow_no_policy || cfg.allow_no_lifecycle_policy;
    settings.quota_threshold = cfg.quota_threshold;
    if (!args.quota_threshold.empty()) {
        try {
            settings.quota_threshold = std::stod(args.quota_threshold);
        } catch (const std::exception&) {
            return fail(ErrorKind::invalid_input, "--quota-threshold '" + args.quota_threshold + "' is not a number like 0.9");
        }
        if (settings.quota_threshold <= 0 || settings.quota_threshold > 1)
            return fail(ErrorKind::invalid_input, "--quota-threshold must be in (0, 1], e.g. 0.9");
    }
    if (args.quota > 0)
        settings.quota = args.quota;
    settings.protected_environments = cfg.protected_environments;
    settings.tag_template = cfg.tag_template;
    settings.keep_releases = cfg.keep_releases;
    settings.protection_window = cfg.protection_window;
    if (!args.protect_file.empty()) {
        auto digests = guard::read_protect_file(args.protect_file);
        if (!digests)
            return std::unexpected(digests.error());
        settings.protected_digests = *digests;
    }
    return settings;
}

} // namespace tagwarden::cli
