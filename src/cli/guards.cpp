#include "guards.hpp"
#include "connection.hpp"

#include <tagwarden/aws/service_quotas.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/policy/evaluate.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace tagwarden::cli {

namespace {

policy::TimePoint to_policy_time(aws::Clock::time_point t) {
    return std::chrono::time_point_cast<policy::TimePoint::duration>(t);
}

policy::ImageRecord to_record(const aws::EcrImageDetail& d) {
    policy::ImageRecord r;
    r.digest = d.digest;
    r.tags = d.tags;
    r.pushed_at = to_policy_time(d.pushed_at);
    if (d.last_pulled)
        r.last_pulled_at = to_policy_time(*d.last_pulled);
    r.status = d.status == "ARCHIVED"     ? policy::ImageStatus::archived
               : d.status == "ACTIVATING" ? policy::ImageStatus::activating
                                          : policy::ImageStatus::active;
    r.media_type = d.manifest_media_type;
    r.artifact_media_type = d.artifact_media_type;
    if (!d.subject_digest.empty())
        r.subject_digest = d.subject_digest;
    return r;
}

Result<guard::RepositoryFacts> inspect_ecr(aws::EcrClient& ecr, const Reference& dest) {
    guard::RepositoryFacts facts;
    facts.repository = dest.name();
    facts.is_ecr = true;
    auto policy = ecr.get_lifecycle_policy(dest.repository);
    if (!policy)
        return std::unexpected(policy.error().with_context("reading the lifecycle policy of " + dest.name()));
    if (*policy) {
        facts.policy_text = (*policy)->text;
        facts.policy_source = "ECR GetLifecyclePolicy";
    }
    aws::DescribeImagesOptions options;
    options.tag_status = "ANY";
    options.image_status = "ANY";
    auto images = ecr.describe_images(dest.repository, options);
    if (!images) {
        // Older endpoints (and emulators) may not know imageStatus filters: retry with the defaults.
        options.image_status.clear();
        images = ecr.describe_images(dest.repository, options);
    }
    if (!images)
        return std::unexpected(images.error().with_context("listing the images of " + dest.name()));
    for (const auto& d : *images)
        facts.images.push_back(to_record(d));
    facts.images_known = true;
    facts.image_count = static_cast<std::int64_t>(images->size());
    facts.count_source = "DescribeImages";
    auto quotas = service_quotas_for(dest.registry);
    if (quotas && *quotas) {
        auto q = aws::get_images_per_repository_quota(**quotas);
        facts.quota = static_cast<std::int64_t>(q.value);
        facts.quota_source = "Service Quotas L-03A36CE1, " + std::string(aws::to_string(q.source)) +
                             (q.note.empty() ? "" : " (" + q.note + ")");
    }
    return facts;
}

Result<guard::RepositoryFacts> inspect_generic(registry::Client& client, const Reference& dest,
                                               const config::Config& cfg) {
    guard::RepositoryFacts facts;
    facts.repository = dest.name();
    if (auto it = cfg.repositories.find(dest.name()); it != cfg.repositories.end()) {
        facts.policy_text = it->second.lifecycle_policy;
        facts.policy_source = "tagwarden.yaml";
        if (it->second.quota) {
            facts.quota = it->second.quota;
            facts.quota_source = "tagwarden.yaml repositories";
        }
    }
    if (!facts.quota && cfg.quota) {
        facts.quota = cfg.quota;
        facts.quota_source = "tagwarden.yaml quota";
    }
    auto tags = client.list_tags(dest.repository);
    if (!tags)
        return std::unexpected(tags.error().with_context("listing the tags of " + dest.name()));
    facts.image_count = static_cast<std::int64_t>(tags->size());
    facts.count_source = "tag list";
    return facts;
}

Result<std::vector<std::string>> read_protect_file(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        return fail(ErrorKind::invalid_input, "--protect " + path + " cannot be read");
    std::vector<std::string> digests;
    std::string line;
    while (std::getline(in, line)) {
        // One digest per line; anything after it (an image name, a comment) is ignored.
        auto start = line.find("sha256:");
        if (start == std::string::npos)
            continue;
        auto d = Digest::parse(line.substr(start, 71));
        if (!d)
            return fail(ErrorKind::invalid_input, "--protect " + path + ": " + d.error().message);
        digests.push_back(d->str());
    }
    return digests;
}

// Runs ECR's lifecycle policy preview of the repository as it is and compares it with the local
// simulation of the same images at the same time.
guard::Finding compare_with_preview(aws::EcrClient& ecr, const Reference& dest, const guard::RepositoryFacts& facts,
                                    policy::TimePoint now) {
    auto started = ecr.start_lifecycle_policy_preview(dest.repository);
    if (!started)
        return {"preview", "skipped", "ECR lifecycle policy preview could not start: " + started.error().message};
    auto preview = ecr.wait_lifecycle_policy_preview(dest.repository, {}, std::chrono::seconds(120),
                                                     std::chrono::milliseconds(1000));
    if (!preview)
        return {"preview", "skipped", "ECR lifecycle policy preview failed: " + preview.error().message};
    if (preview->status != "COMPLETE")
        return {"preview", "skipped", "ECR lifecycle policy preview ended " + preview->status};
    auto parsed = policy::load_policy(*facts.policy_text);
    if (!parsed)
        return {"preview", "skipped", "the policy does not parse locally: " + parsed.error().message};
    auto decisions = policy::evaluate(*parsed, facts.images, now);
    using Outcome = std::pair<std::string, std::int64_t>;
    std::map<std::string, Outcome> local, remote;
    for (std::size_t i = 0; i < facts.images.size(); ++i)
        if (decisions[i].action != policy::ImageAction::keep)
            local[facts.images[i].digest] = {decisions[i].action == policy::ImageAction::expire ? "EXPIRE" : "TRANSITION",
                                             decisions[i].rule_priority.value_or(0)};
    for (const auto& r : preview->results)
        remote[r.digest] = {r.action, r.applied_rule_priority};
    auto describe = [](const std::optional<Outcome>& d) {
        return d ? d->first + " by rulePriority " + std::to_string(d->second) : std::string("keep");
    };
    std::set<std::string> digests;
    for (const auto& entry : local)
        digests.insert(entry.first);
    for (const auto& entry : remote)
        digests.insert(entry.first);
    std::string differences;
    for (const auto& d : digests) {
        std::optional<Outcome> l, r;
        if (auto it = local.find(d); it != local.end())
            l = it->second;
        if (auto it = remote.find(d); it != remote.end())
            r = it->second;
        if (l != r)
            differences += (differences.empty() ? "" : "; ") + d.substr(7, 12) + ": tagwarden says " + describe(l) +
                           ", ECR says " + describe(r);
    }
    if (differences.empty())
        return {"preview", "passed", "ECR's lifecycle preview agrees with the local simulation (" +
                                         std::to_string(remote.size()) + " image(s) expired or archived)"};
    return {"preview", "disagrees", "ECR's lifecycle preview disagrees with the local simulation: " + differences};
}

} // namespace

Result<guard::RepositoryFacts> read_ecr_repository(const Reference& ref) {
    auto ecr = ecr_client_for(ref.registry);
    if (!ecr)
        return std::unexpected(ecr.error());
    if (!*ecr)
        return fail(ErrorKind::invalid_input, ref.registry + " is not an Amazon ECR registry "
                                                             "(ACCOUNT.dkr.ecr.REGION.amazonaws.com): --repo reads ECR");
    return inspect_ecr(**ecr, ref);
}

Result<std::function<bool(const std::string&)>> registry_tag_immutability(const Reference& dest) {
    auto ecr = ecr_client_for(dest.registry);
    if (!ecr)
        return std::unexpected(ecr.error());
    if (!*ecr)
        return std::function<bool(const std::string&)>{};
    auto repo = (*ecr)->describe_repository(dest.repository);
    if (!repo)
        return std::unexpected(repo.error().with_context("reading the tag mutability of " + dest.name()));
    auto described = std::make_shared<aws::EcrRepository>(*repo);
    return std::function<bool(const std::string&)>(
        [described](const std::string& tag) { return described->tag_is_immutable(tag); });
}

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

Result<guard::GuardReport> run_guards(const Reference& dest, registry::Client& client, const push::PushPlan& plan,
                                      const config::Config& cfg, const GuardArgs& args) {
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
        auto digests = read_protect_file(args.protect_file);
        if (!digests)
            return std::unexpected(digests.error());
        settings.protected_digests = *digests;
    }

    auto ecr = ecr_client_for(dest.registry);
    if (!ecr)
        return std::unexpected(ecr.error());
    auto facts = *ecr ? inspect_ecr(**ecr, dest) : inspect_generic(client, dest, cfg);
    if (!facts)
        return std::unexpected(facts.error());

    guard::Intent intent;
    intent.digest = plan.root.digest.str();
    intent.tags = plan.tags;
    for (const auto& child : plan.children)
        intent.child_digests.push_back(child.digest.str());
    if (facts->images_known) {
        std::set<std::string> present;
        for (const auto& image : facts->images)
            present.insert(image.digest);
        intent.images_added = present.count(intent.digest) ? 0 : 1;
        for (const auto& child : intent.child_digests)
            intent.images_added += present.count(child) ? 0 : 1;
    } else {
        auto root = client.head_manifest(dest.repository, intent.digest);
        if (!root)
            return std::unexpected(root.error());
        intent.images_added = *root ? 0 : 1;
    }

    auto now = std::chrono::time_point_cast<policy::TimePoint::duration>(std::chrono::system_clock::now());
    auto report = guard::evaluate_guards(*facts, intent, settings, now);
    if (args.confirm_with_preview) {
        if (!*ecr || !facts->policy_text)
            report.findings.push_back({"preview", "skipped",
                                       "--confirm-with-preview needs an ECR repository with a lifecycle policy"});
        else
            report.findings.push_back(compare_with_preview(**ecr, dest, *facts, now));
    }
    for (const auto& f : report.findings) {
        if (f.status == "passed" || f.status == "skipped")
            log::info("guard " + f.check + (f.status == "skipped" ? " skipped: " : ": ") + f.message);
        else if (f.status != "refused")
            log::warn("guard " + f.check + " " + f.status + ": " + f.message);
    }
    if (report.refused())
        return std::unexpected(report.error());
    return report;
}

} // namespace tagwarden::cli
