#include <tagwarden/core/tag_template.hpp>
#include <tagwarden/core/digest.hpp>
#include <tagwarden/guard/guard.hpp>
#include <tagwarden/policy/evaluate.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace tagwarden::guard {

namespace {

std::string describe_image(const policy::ImageRecord& image) {
    std::string tags;
    for (const auto& t : image.tags)
        tags += (tags.empty() ? "" : ",") + t;
    return short_digest(image.digest) + (tags.empty() ? " (untagged)" : " (" + tags + ")") + " pushed " +
           policy::format_time(image.pushed_at);
}

std::string rule_text(const policy::LifecyclePolicy& p, std::optional<std::int64_t> priority) {
    if (!priority)
        return "the policy";
    for (const auto& r : p.rules) {
        if (r.rule_priority != *priority)
            continue;
        std::string what = "the rule with " + policy::rule_label(r);
        if (r.description && !r.description->empty())
            what += " (\"" + *r.description + "\")";
        if (r.selection.tag_prefix_list && !r.selection.tag_prefix_list->empty()) {
            std::string prefixes;
            for (const auto& x : *r.selection.tag_prefix_list)
                prefixes += (prefixes.empty() ? "" : ", ") + x;
            what += " on tag prefix " + prefixes;
        }
        if (r.selection.tag_pattern_list && !r.selection.tag_pattern_list->empty()) {
            std::string patterns;
            for (const auto& x : *r.selection.tag_pattern_list)
                patterns += (patterns.empty() ? "" : ", ") + x;
            what += " on tag pattern " + patterns;
        }
        return what;
    }
    return "rule " + std::to_string(*priority);
}

void check_policy_present(const RepositoryFacts& facts, const GuardSettings& settings, GuardReport& report) {
    if (facts.policy_text) {
        auto parsed = policy::load_policy(*facts.policy_text);
        if (!parsed) {
            report.findings.push_back({"lifecycle-policy", "refused",
                                       "the lifecycle policy of " + facts.repository + " (" + facts.policy_source +
                                           ") is invalid: " + parsed.error().message});
            return;
        }
        report.findings.push_back({"lifecycle-policy", "passed", "lifecycle policy present (" + facts.policy_source + ")"});
        return;
    }
    if (facts.creation_template) {
        // The repository does not exist yet: ECR will create it on this push from a template without a policy.
        std::string fix = "give the template a lifecycle policy: aws ecr update-repository-creation-template --prefix " +
                          *facts.creation_template + " --lifecycle-policy file://policy.json";
        std::string what = facts.repository + " does not exist yet and will be created on push by the repository "
                           "creation template '" + *facts.creation_template + "' (CREATE_ON_PUSH), which has no "
                           "lifecycle policy: every repository it creates fills up until its image quota refuses every push";
        if (settings.allow_no_policy) {
            report.findings.push_back({"lifecycle-policy", "overridden",
                                       what + "; pushing anyway because of --allow-no-lifecycle-policy (" + fix + ")"});
            return;
        }
        report.findings.push_back({"lifecycle-policy", "refused",
                                   what + "; " + fix + " (or create the repository with a policy first, or pass "
                                                       "--allow-no-lifecycle-policy)"});
        return;
    }
    std::string how =
        facts.is_ecr
            ? "add one: aws ecr put-lifecycle-policy --repository-name " +
                  facts.repository.substr(facts.repository.find('/') + 1) + " --lifecycle-policy-text file://policy.json"
            : "declare it in tagwarden.yaml under repositories: {\"" + facts.repository + "\": {lifecycle_policy: FILE}}";
    if (settings.allow_no_policy) {
        report.findings.push_back({"lifecycle-policy", "overridden",
                                   facts.repository + " has no lifecycle policy; pushing anyway because of "
                                                      "--allow-no-lifecycle-policy: untagged and old images will "
                                                      "pile up until the image quota stops every push (" + how + ")"});
        return;
    }
    report.findings.push_back({"lifecycle-policy", "refused",
                               facts.repository + " has no lifecycle policy, so it fills up until its image quota "
                                                  "refuses every push; " + how +
                                                  " (or pass --allow-no-lifecycle-policy)"});
}

void check_quota(const RepositoryFacts& facts, const Intent& intent, const GuardSettings& settings,
                 GuardReport& report) {
    auto quota = settings.quota ? settings.quota : facts.quota;
    std::string source = settings.quota ? std::string("--quota / tagwarden.yaml") : facts.quota_source;
    if (!quota || *quota <= 0) {
        report.findings.push_back({"quota", "skipped", "no image quota known for " + facts.repository +
                                                           " (set quota: in tagwarden.yaml or --quota N)"});
        return;
    }
    auto limit = static_cast<std::int64_t>(std::ceil(settings.quota_threshold * static_cast<double>(*quota)));
    std::string count = std::to_string(facts.image_count) + " of " + std::to_string(*quota) + " images (" + source +
                        "; count from " + facts.count_source + ")";
    bool near = facts.image_count >= limit;
    bool overflows = facts.image_count + intent.images_added > *quota;  // an index adds its children too
    if (intent.images_added == 0 || (!near && !overflows)) {
        report.findings.push_back({"quota", "passed", facts.repository + " holds " + count});
        return;
    }
    std::string oldest;
    if (facts.images_known) {
        auto images = facts.images;
        std::sort(images.begin(), images.end(),
                  [](const auto& a, const auto& b) { return a.pushed_at < b.pushed_at; });
        for (std::size_t i = 0; i < images.size() && i < 5; ++i)
            oldest += (oldest.empty() ? "" : "; ") + describe_image(images[i]);
        oldest = "; oldest: " + oldest;
    }
    int percent = static_cast<int>(std::lround(settings.quota_threshold * 100));
    std::string why = near ? ", at or above " + std::to_string(percent) + "% of its quota: the next pushes will fail with 403"
                           : ", and this push adds " + std::to_string(intent.images_added) +
                                 " image(s) (an index and its children), more than the quota leaves room for";
    report.findings.push_back({"quota", "refused",
                               facts.repository + " holds " + count + why + oldest +
                                   ". Expire images (a lifecycle rule for untagged and old dev images), or raise the "
                                   "quota (Service Quotas L-03A36CE1)"});
}

void check_survival(const RepositoryFacts& facts, const Intent& intent, const GuardSettings& settings,
                    policy::TimePoint now, GuardReport& report) {
    if (!facts.policy_text)
        return;  // reported by the policy check
    if (!facts.images_known) {
        report.findings.push_back({"survival", "skipped",
                                   "push times of " + facts.repository +
                                       " are unknown (not ECR): the lifecycle simulation needs DescribeImages"});
        return;
    }
    auto parsed = policy::load_policy(*facts.policy_text);
    if (!parsed)
        return;  // reported by the policy check
    // The repository as it will be: the image with all its tags, old and new; tags move off other images.
    auto images = facts.images;
    std::set<std::string> new_tags(intent.tags.begin(), intent.tags.end());
    bool found = false;
    for (auto& image : images) {
        if (image.digest == intent.digest) {
            found = true;
            for (const auto& t : intent.tags)
                if (std::find(image.tags.begin(), image.tags.end(), t) == image.tags.end())
                    image.tags.push_back(t);
            image.child_digests = intent.child_digests;
        } else {
            std::erase_if(image.tags, [&](const std::string& t) { return new_tags.count(t) > 0; });
        }
    }
    if (!found) {
        policy::ImageRecord pushed;
        pushed.digest = intent.digest;
        pushed.tags = intent.tags;
        pushed.pushed_at = now;
        pushed.child_digests = intent.child_digests;
        images.push_back(pushed);
    }

    // Who must survive: the image, the last K of each protected environment, the protected digests.
    auto must_keep = images_to_keep(images, settings);
    must_keep.insert_or_assign(intent.digest, "the image being pushed or promoted");
    auto problems = survival_problems(*parsed, images, must_keep, settings, now);
    if (problems.empty()) {
        report.findings.push_back({"survival", "passed",
                                   "the lifecycle policy keeps the image, the last " +
                                       std::to_string(settings.keep_releases) + " releases of each protected "
                                       "environment and every protected digest for " +
                                       std::to_string(settings.protection_window.count() / 24) + " days"});
        return;
    }
    std::string all;
    for (const auto& p : problems)
        all += (all.empty() ? "" : "; ") + p;
    report.findings.push_back({"survival", "refused",
                               all + ". Fix the policy (tagwarden policy lint shows how) or change what is protected"});
}

} // namespace

std::map<std::string, std::string> images_to_keep(const std::vector<policy::ImageRecord>& images,
                                                  const GuardSettings& settings) {
    std::map<std::string, std::string> must_keep;  // digest -> why
    for (const auto& env : settings.protected_environments) {
        std::vector<const policy::ImageRecord*> in_env;
        for (const auto& image : images)
            if (std::any_of(image.tags.begin(), image.tags.end(),
                            [&](const auto& t) { return tag_matches_template(settings.tag_template, env, t); }))
                in_env.push_back(&image);
        std::sort(in_env.begin(), in_env.end(), [](auto* a, auto* b) { return a->pushed_at > b->pushed_at; });
        for (std::size_t i = 0; i < in_env.size() && i < static_cast<std::size_t>(settings.keep_releases); ++i)
            must_keep.emplace(in_env[i]->digest, "one of the last " + std::to_string(settings.keep_releases) + " '" +
                                                     env + "' releases (a rollback target)");
    }
    for (const auto& d : settings.protected_digests)
        must_keep.emplace(d, "listed in --protect");
    return must_keep;
}

std::vector<std::string> survival_problems(const policy::LifecyclePolicy& policy,
                                           const std::vector<policy::ImageRecord>& images,
                                           const std::map<std::string, std::string>& must_keep,
                                           const GuardSettings& settings, policy::TimePoint now) {
    auto end_of_window = now + std::chrono::duration_cast<policy::TimePoint::duration>(settings.protection_window);
    std::vector<std::string> problems;
    for (auto when : {now, end_of_window}) {
        auto decisions = policy::evaluate(policy, images, when);
        for (std::size_t i = 0; i < images.size(); ++i) {
            const auto& d = decisions[i];
            if (d.action == policy::ImageAction::keep)
                continue;
            auto it = must_keep.find(images[i].digest);
            if (it == must_keep.end())
                continue;
            std::string verb = d.action == policy::ImageAction::expire ? "expires" : "archives";
            std::string at = when == now ? "now" : "within " + std::to_string(settings.protection_window.count() / 24) + " days";
            std::string line = rule_text(policy, d.rule_priority) + " " + verb + " " + describe_image(images[i]) +
                               " " + at + ", but it is " + it->second;
            if (std::find(problems.begin(), problems.end(), line) == problems.end())
                problems.push_back(line);
        }
        if (!problems.empty())
            break;  // what fails now is enough; the window adds what fails later
    }
    return problems;
}

bool GuardReport::refused() const {
    return std::any_of(findings.begin(), findings.end(), [](const auto& f) { return f.status == "refused"; });
}

Error GuardReport::error() const {
    std::string message;
    for (const auto& f : findings)
        if (f.status == "refused")
            message += (message.empty() ? "refused by guard: " : "; and: ") + f.message;
    return Error(ErrorKind::guard_refused, message);
}

GuardReport evaluate_policy_guard(const RepositoryFacts& facts, const GuardSettings& settings) {
    GuardReport report;
    check_policy_present(facts, settings, report);
    return report;
}

GuardReport evaluate_guards(const RepositoryFacts& facts, const Intent& intent, const GuardSettings& settings,
                            policy::TimePoint now) {
    GuardReport report;
    check_policy_present(facts, settings, report);
    check_quota(facts, intent, settings, report);
    check_survival(facts, intent, settings, now, report);
    return report;
}

nlohmann::json to_json(const GuardReport& report) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : report.findings)
        out.push_back({{"check", f.check}, {"status", f.status}, {"message", f.message}});
    return out;
}

} // namespace tagwarden::guard
