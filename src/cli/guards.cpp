#include "guards.hpp"

#include <tagwarden/guard/facts.hpp>

#include <charconv>

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
    command->add_flag("--guards-first", args.guards_first,
                      "Judge every guard before the first byte is uploaded (reads the images twice: before the "
                      "upload and under the tag locks); by default the checks that need every image run beside "
                      "the upload, under the tag locks");
}

Result<guard::GuardSettings> guard_settings(const GuardArgs& args, const config::Config& cfg) {
    guard::GuardSettings settings;
    settings.allow_no_policy = args.allow_no_policy || cfg.allow_no_lifecycle_policy;
    settings.guards_first = args.guards_first || cfg.guards_first;
    settings.quota_threshold = cfg.quota_threshold;
    if (!args.quota_threshold.empty()) {
        const auto& text = args.quota_threshold;
        double value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || end != text.data() + text.size())
            return fail(ErrorKind::invalid_input, "--quota-threshold '" + text +
                                                      "' is not a number: give a share of the quota in (0, 1], e.g. 0.9");
        if (!(value > 0 && value <= 1))
            return fail(ErrorKind::invalid_input, "--quota-threshold " + text +
                                                      " is outside (0, 1]: give a share of the quota, e.g. 0.9");
        settings.quota_threshold = value;
    }
    if (!args.quota.empty()) {
        const auto& text = args.quota;
        std::int64_t value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || end != text.data() + text.size() || value <= 0)
            return fail(ErrorKind::invalid_input, "--quota '" + text +
                                                      "' is not a positive number of images: give the repository's "
                                                      "image quota, e.g. --quota 10000, or leave it out");
        settings.quota = value;
    }
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
