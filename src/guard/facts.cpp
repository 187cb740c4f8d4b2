#include <tagwarden/aws/service_quotas.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/parallel.hpp>
#include <tagwarden/guard/facts.hpp>
#include <tagwarden/policy/evaluate.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

namespace tagwarden::guard {

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
    // sinceImageTransitioned ages an archived image from lastArchivedAt, and a restored image is ordered
    // and aged from lastActivatedAt: without them both would be judged by their (old) push time.
    if (d.last_archived)
        r.transitioned_at = to_policy_time(*d.last_archived);
    if (d.last_activated)
        r.last_activated_at = to_policy_time(*d.last_activated);
    r.status = d.status == "ARCHIVED"     ? policy::ImageStatus::archived
               : d.status == "ACTIVATING" ? policy::ImageStatus::activating
                                          : policy::ImageStatus::active;
    r.media_type = d.manifest_media_type;
    r.artifact_media_type = d.artifact_media_type;
    if (!d.subject_digest.empty())
        r.subject_digest = d.subject_digest;
    return r;
}

// Every image of the repository, tagged or not, in every status.
// A registry that is not ECR: its images are the distinct manifests its tags name (an image promoted to
// prod carries two tags and is one image, as ECR counts it). One HEAD per tag, eight at a time; a tag
// deleted between the list and its HEAD is not counted.
Result<std::int64_t> count_tagged_images(registry::Client& client, const Reference& dest) {
    auto tags = client.list_tags(dest.repository);
    if (!tags)
        return std::unexpected(tags.error().with_context("listing the tags of " + dest.name()));
    std::vector<std::string> digests(tags->size());
    auto heads = parallel_for(tags->size(), 8, [&](std::size_t i) -> Status {
        auto head = client.head_manifest(dest.repository, (*tags)[i]);
        if (!head)
            return std::unexpected(head.error().with_context("reading tag " + (*tags)[i] + " of " + dest.name()));
        if (*head)
            digests[i] = (*head)->digest.str();
        return {};
    });
    if (!heads)
        return std::unexpected(heads.error());
    std::set<std::string> distinct(digests.begin(), digests.end());
    distinct.erase(std::string());
    return static_cast<std::int64_t>(distinct.size());
}

// `image_status_refused`: in, the filter is known to be refused (not sent); out, it was refused now.
Result<std::vector<policy::ImageRecord>> inspect_ecr_images(aws::EcrClient& ecr, const Reference& dest,
                                                            bool& image_status_refused) {
    aws::DescribeImagesOptions options;
    options.tag_status = "ANY";
    options.image_status = image_status_refused ? "" : "ANY";
    auto images = ecr.describe_images(dest.repository, options);
    if (!images && !image_status_refused &&
        (images.error().registry_code == "InvalidParameterException" ||
         images.error().registry_code == "ValidationException")) {
        image_status_refused = true;
        // Older endpoints (and emulators) may not know the imageStatus filter: retry without it, and say
        // what that costs. Any other error (access, network) is the answer.
        log::warn("DescribeImages refused the imageStatus filter (" + images.error().message +
                  "): listing again without it, so archived images of " + dest.name() +
                  ", if any, are not seen by the count and the survival guard");
        options.image_status.clear();
        images = ecr.describe_images(dest.repository, options);
    }
    if (!images)
        return std::unexpected(images.error().with_context("listing the images of " + dest.name()));
    std::vector<policy::ImageRecord> out;
    for (const auto& d : *images)
        out.push_back(to_record(d));
    return out;
}

Result<RepositoryFacts> inspect_ecr(const AwsServices& aws_services, const Reference& dest, ImageRead when) {
    auto& ecr = *aws_services.ecr;
    RepositoryFacts facts;
    facts.repository = dest.name();
    facts.is_ecr = true;
    // Three independent reads, concurrently: the guards wait for the slowest (the DescribeImages pages),
    // not for the sum.
    Result<std::optional<aws::EcrLifecyclePolicy>> policy = std::nullopt;
    Result<std::vector<policy::ImageRecord>> images;
    std::optional<aws::QuotaValue> quota;
    (void)parallel_for(3, 3, [&](std::size_t i) -> Status {
        if (i == 0)
            policy = ecr.get_lifecycle_policy(dest.repository);
        else if (i == 1 && when == ImageRead::now)
            images = inspect_ecr_images(ecr, dest, facts.image_status_refused);
        else if (aws_services.quotas) {
            auto registry = aws::parse_ecr_host(dest.registry);
            quota = aws_services.quota_cache
                        ? aws::get_images_per_repository_quota(*aws_services.quotas, *aws_services.quota_cache,
                                                               registry ? registry->account_id : dest.registry)
                        : aws::get_images_per_repository_quota(*aws_services.quotas);
        }
        return {};
    });
    if (!policy)
        return std::unexpected(policy.error().with_context("reading the lifecycle policy of " + dest.name()));
    if (*policy) {
        facts.policy_text = (*policy)->text;
        facts.policy_source = "ECR GetLifecyclePolicy";
    }
    facts.count_source = "DescribeImages";
    if (when == ImageRead::later) {
        facts.images_pending = true;
    } else {
        if (!images)
            return std::unexpected(images.error());
        facts.images = std::move(*images);
        facts.images_known = true;
        facts.image_count = static_cast<std::int64_t>(facts.images.size());
    }
    if (quota) {
        const auto& q = *quota;
        facts.quota = static_cast<std::int64_t>(q.value);
        facts.quota_source = "Service Quotas L-03A36CE1, " + std::string(aws::to_string(q.source)) +
                             (q.note.empty() ? "" : " (" + q.note + ")");
    }
    return facts;
}

Result<RepositoryFacts> inspect_generic(registry::Client& client, const Reference& dest, const config::Config& cfg,
                                        bool quota_given, ImageRead when) {
    RepositoryFacts facts;
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
    // Counting costs a HEAD per tag: only when a quota will be compared with the count.
    if (!facts.quota && !quota_given) {
        facts.count_source = "not counted: no quota";
        return facts;
    }
    facts.count_source = "distinct manifests of the tag list";
    if (when == ImageRead::later) {
        facts.images_pending = true;
        return facts;
    }
    auto count = count_tagged_images(client, dest);
    if (!count)
        return std::unexpected(count.error());
    facts.image_count = *count;
    return facts;
}

} // namespace

Result<std::vector<std::string>> read_protect_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        return fail(ErrorKind::invalid_input, "--protect " + path + " is a directory: give a file of digests, one per line");
    if (!std::filesystem::exists(path, ec))
        return fail(ErrorKind::invalid_input, "--protect " + path +
                                                  " does not exist: give a file of digests (sha256:...), one per line");
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

Finding compare_with_preview(aws::EcrClient& ecr, const Reference& dest, const RepositoryFacts& facts,
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


Result<std::optional<aws::EcrCreationTemplate>> create_on_push_template(const Reference& dest, const AwsServices& aws) {
    if (!aws.is_ecr())
        return std::optional<aws::EcrCreationTemplate>();
    auto templates = aws.ecr->describe_repository_creation_templates();
    if (!templates)
        return std::unexpected(templates.error().with_context("reading the repository creation templates of " +
                                                              dest.registry));
    const auto* t = aws::find_creation_template(*templates, dest.repository, aws::k_create_on_push);
    if (!t)
        return std::optional<aws::EcrCreationTemplate>();
    return std::optional<aws::EcrCreationTemplate>(*t);
}

RepositoryFacts template_facts(const Reference& dest, const aws::EcrCreationTemplate& creation_template,
                               const AwsServices& aws) {
    RepositoryFacts facts;
    facts.repository = dest.name();
    facts.is_ecr = true;
    facts.creation_template = creation_template.prefix;
    if (creation_template.lifecycle_policy) {
        facts.policy_text = creation_template.lifecycle_policy;
        facts.policy_source = "repository creation template '" + creation_template.prefix + "' (CREATE_ON_PUSH)";
    }
    facts.images_known = true;  // a repository created by this push holds nothing else
    facts.image_count = 0;
    facts.count_source = "not created yet (CREATE_ON_PUSH)";
    if (aws.quotas) {
        auto q = aws::get_images_per_repository_quota(*aws.quotas);
        facts.quota = static_cast<std::int64_t>(q.value);
        facts.quota_source = "Service Quotas L-03A36CE1, " + std::string(aws::to_string(q.source)) +
                             (q.note.empty() ? "" : " (" + q.note + ")");
    }
    return facts;
}

namespace {

bool repository_not_found(const Error& e) { return e.registry_code == "RepositoryNotFoundException"; }

// A repository that does not exist: the CREATE_ON_PUSH template that creates it, or `missing` as it was
// (saying why the templates could not tell when they could not be read).
Result<aws::EcrCreationTemplate> template_or(const Error& missing, const Reference& dest, const AwsServices& aws) {
    auto t = create_on_push_template(dest, aws);
    if (!t) {
        Error e = missing;
        e.message += " (whether a CREATE_ON_PUSH template would create it is unknown: " + t.error().message + ")";
        return std::unexpected(e);
    }
    if (!*t)
        return std::unexpected(missing);
    return **t;
}

} // namespace

Result<RepositoryFacts> gather_facts(const Reference& dest, registry::Client& client, const AwsServices& aws,
                                     const config::Config& cfg, bool quota_given, ImageRead images) {
    if (!aws.is_ecr())
        return inspect_generic(client, dest, cfg, quota_given, images);
    auto facts = inspect_ecr(aws, dest, images);
    if (facts || !repository_not_found(facts.error()))
        return facts;
    auto t = template_or(facts.error(), dest, aws);
    if (!t)
        return std::unexpected(t.error());
    return template_facts(dest, *t, aws);
}

Result<RepositoryFacts> read_ecr_facts(const Reference& dest, const AwsServices& aws) {
    if (!aws.is_ecr())
        return fail(ErrorKind::invalid_input, dest.registry + " is not an Amazon ECR registry "
                                                              "(ACCOUNT.dkr.ecr.REGION.amazonaws.com): --repo reads ECR");
    return inspect_ecr(aws, dest, ImageRead::now);
}

Result<bool> read_images(RepositoryFacts& facts, const Reference& dest, registry::Client& client,
                         const AwsServices& aws, bool quota_given) {
    const char* how = facts.images_pending ? "read under the tag locks" : "read again under the tag locks";
    facts.images_pending = false;
    if (aws.is_ecr() && facts.creation_template) {
        // Created on push by a CREATE_ON_PUSH template: the uploads have created it by now, or it is still empty.
        auto exists = aws.ecr->describe_repository(dest.repository);
        if (!exists && repository_not_found(exists.error()))
            return false;
        if (!exists)
            return std::unexpected(exists.error().with_context("reading " + dest.name() + " again under the tag locks"));
    }
    if (aws.is_ecr()) {
        auto started = std::chrono::steady_clock::now();
        auto again = inspect_ecr_images(*aws.ecr, dest, facts.image_status_refused);
        if (!again)
            return std::unexpected(again.error());
        facts.images = std::move(*again);
        facts.images_known = true;
        facts.image_count = static_cast<std::int64_t>(facts.images.size());
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        log::info("images of " + dest.name() + " " + how + ": " + std::to_string(facts.image_count) +
                  " image(s), " + std::to_string(std::max<std::int64_t>(1, (facts.image_count + 999) / 1000)) +
                  " DescribeImages page(s) in " + std::to_string(ms.count()) + " ms");
        return true;
    }
    if (!facts.quota && !quota_given)
        return false;
    auto count = count_tagged_images(client, dest);
    if (!count)
        return std::unexpected(count.error());
    facts.image_count = *count;
    return true;
}

Result<std::function<bool(const std::string&)>> tag_immutability(const Reference& dest, const AwsServices& aws) {
    if (!aws.is_ecr())
        return std::function<bool(const std::string&)>{};
    auto repo = aws.ecr->describe_repository(dest.repository);
    if (!repo && repository_not_found(repo.error())) {
        auto t = template_or(repo.error(), dest, aws);
        if (t)
            repo = t->as_repository(dest.repository);  // created on push with the template's mutability
    }
    if (!repo)
        return std::unexpected(repo.error().with_context("reading the tag mutability of " + dest.name()));
    auto described = std::make_shared<aws::EcrRepository>(*repo);
    return std::function<bool(const std::string&)>(
        [described](const std::string& tag) { return described->tag_is_immutable(tag); });
}

} // namespace tagwarden::guard
