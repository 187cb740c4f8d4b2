#include <tagwarden/audit/audit.hpp>

#include <tagwarden/aws/service_quotas.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/parallel.hpp>
#include <tagwarden/policy/evaluate.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

namespace tagwarden::audit {

namespace {

using policy::Severity;

constexpr auto k_day = std::chrono::hours(24);
constexpr int k_rate_window_days = 30;  // "the push rate of the last 30 days"

int risk_rank(Risk r) {
    switch (r) {
    case Risk::high:
        return 3;
    case Risk::medium:
        return 2;
    case Risk::low:
        return 1;
    case Risk::none:
        return 0;
    }
    return 0;
}

std::string percent(std::int64_t count, std::int64_t quota) {
    auto p = static_cast<double>(count) * 100.0 / static_cast<double>(quota);
    std::ostringstream out;
    out.precision(p < 10 ? 2 : 3);
    out << p << "%";
    return out.str();
}

std::string put_policy_fix(const std::string& name, bool is_ecr, const std::string& registry_name) {
    if (is_ecr)
        return "aws ecr put-lifecycle-policy --repository-name " + name + " --lifecycle-policy-text file://policy.json";
    return "declare it in tagwarden.yaml under repositories: {\"" + registry_name + "\": {lifecycle_policy: FILE}}";
}

// The lint and survival findings of a policy that ECR accepts.
void policy_findings(const policy::LifecyclePolicy& parsed, const AuditOptions& options, Entry& entry) {
    policy::LintConfig lint_config;
    lint_config.protected_envs = options.settings.protected_environments;
    lint_config.tag_template = options.settings.tag_template;
    for (const auto& f : policy::lint(parsed, lint_config)) {
        std::string where = f.rule_priority ? "rule " + std::to_string(*f.rule_priority) + ": " : std::string();
        entry.findings.push_back({"policy-lint/" + f.id, f.severity,
                                  where + f.message + (f.fix.empty() ? "" : " Fix: " + f.fix)});
    }
}

std::string mutability_fix(const std::string& command) {
    return command + " IMMUTABLE (or IMMUTABLE_WITH_EXCLUSION with filters for the tags meant to move, such as "
                     "latest)";
}

// `subject` says whose tags: "the tags of repository X are".
void mutability_findings(aws::TagMutability mutability, const std::vector<aws::TagMutabilityExclusionFilter>& filters,
                         const std::string& subject, const std::string& command, Entry& entry) {
    std::string list;
    for (const auto& f : filters)
        list += (list.empty() ? "" : ", ") + f.filter;
    switch (mutability) {
    case aws::TagMutability::immutable:
        return;
    case aws::TagMutability::mutable_tags:
        entry.findings.push_back({"mutable-tags", Severity::warning,
                                  subject + " MUTABLE: a push can move an existing tag to another image, and nothing "
                                            "but tagwarden's lock stops two pipelines racing for one; make them "
                                            "immutable: " + mutability_fix(command)});
        return;
    case aws::TagMutability::mutable_with_exclusion:
        entry.findings.push_back({"mutable-tags", Severity::warning,
                                  subject + " MUTABLE_WITH_EXCLUSION: only tags matching " + list +
                                      " are immutable, every other tag can be moved and nothing but tagwarden's lock "
                                      "stops two pipelines racing for one; make them immutable: " +
                                      mutability_fix(command)});
        return;
    case aws::TagMutability::immutable_with_exclusion:
        entry.findings.push_back({"mutable-tags", Severity::info,
                                  subject + " IMMUTABLE_WITH_EXCLUSION: tags matching " + list +
                                      " can be moved (only tagwarden's lock orders the writers of those); keep "
                                      "release tags out of the filters"});
        return;
    }
}

// The repositories of a registry that is not ECR: its catalog, narrowed by the globs; when it serves none,
// the literal --repos names and the tagwarden.yaml repositories of this registry that match.
Result<std::vector<std::string>> generic_repositories(const std::string& registry, registry::Client& client,
                                                      const config::Config& cfg, const AuditOptions& options) {
    auto matches = [&](const std::string& name) {
        return options.repo_globs.empty() ||
               std::any_of(options.repo_globs.begin(), options.repo_globs.end(),
                           [&](const auto& g) { return glob_match(g, name); });
    };
    std::set<std::string> names;
    auto catalog = client.list_repositories();
    if (catalog) {
        for (const auto& n : *catalog)
            if (matches(n))
                names.insert(n);
        return std::vector<std::string>(names.begin(), names.end());
    }
    for (const auto& g : options.repo_globs)
        if (g.find_first_of("*?") == std::string::npos)
            names.insert(g);
    for (const auto& [key, repo] : cfg.repositories)
        if (key.starts_with(registry + "/") && matches(key.substr(registry.size() + 1)))
            names.insert(key.substr(registry.size() + 1));
    if (names.empty())
        return fail(catalog.error().with_context(
            "the registry does not list its repositories, and neither --repos (names without '*' or '?') nor "
            "tagwarden.yaml's repositories name any of " + registry + ": pass --repos NAME for each repository "
            "to audit"));
    log::warn("the catalog of " + registry + " cannot be read (" + catalog.error().message + "): auditing the " +
              std::to_string(names.size()) + " repositories named by --repos and tagwarden.yaml");
    return std::vector<std::string>(names.begin(), names.end());
}

// With --repos, the templates that could create a repository the globs name: ROOT (it covers every name
// no other template covers), and those whose "PREFIX/" and a glob's literal start (the text before its first
// wildcard) are one a prefix of the other.
bool template_in_scope(const std::string& prefix, const std::vector<std::string>& globs) {
    if (globs.empty() || prefix == "ROOT")
        return true;
    std::string under = prefix;
    while (!under.empty() && under.back() == '/')
        under.pop_back();
    under += '/';
    return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) {
        auto literal = g.substr(0, g.find_first_of("*?"));
        return literal.starts_with(under) || under.starts_with(literal);
    });
}

} // namespace

std::string_view to_string(Risk risk) {
    switch (risk) {
    case Risk::high:
        return "high";
    case Risk::medium:
        return "medium";
    case Risk::low:
        return "low";
    case Risk::none:
        return "none";
    }
    return "none";
}

bool AuditReport::has_errors() const {
    auto any_error = [](const std::vector<Entry>& entries) {
        return std::any_of(entries.begin(), entries.end(), [](const Entry& e) { return e.risk == Risk::high; });
    };
    return any_error(repositories) || any_error(templates);
}

Risk risk_of(const std::vector<Finding>& findings) {
    Risk risk = Risk::none;
    for (const auto& f : findings) {
        Risk r = f.severity == Severity::error     ? Risk::high
                 : f.severity == Severity::warning ? Risk::medium
                                                   : Risk::low;
        if (risk_rank(r) > risk_rank(risk))
            risk = r;
    }
    return risk;
}

void sort_by_risk(std::vector<Entry>& entries) {
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        if (risk_rank(a.risk) != risk_rank(b.risk))
            return risk_rank(a.risk) > risk_rank(b.risk);
        return a.name < b.name;
    });
}

bool glob_match(std::string_view glob, std::string_view name) {
    // Iterative matching with backtracking to the last '*'.
    std::size_t g = 0, n = 0, star = std::string_view::npos, mark = 0;
    while (n < name.size()) {
        if (g < glob.size() && glob[g] == '*') {
            star = g++;
            mark = n;
        } else if (g < glob.size() && (glob[g] == '?' || glob[g] == name[n])) {
            ++g;
            ++n;
        } else if (star != std::string_view::npos) {
            g = star + 1;
            n = ++mark;
        } else {
            return false;
        }
    }
    while (g < glob.size() && glob[g] == '*')
        ++g;
    return g == glob.size();
}

std::string format_date(policy::TimePoint t) {
    auto day = std::chrono::floor<std::chrono::days>(t);
    std::chrono::year_month_day ymd{day};
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return buffer;
}

std::optional<policy::TimePoint> project_fill_date(const std::vector<policy::ImageRecord>& images,
                                                   const policy::LifecyclePolicy* policy, std::int64_t quota,
                                                   policy::TimePoint now, int horizon_days) {
    if (quota <= 0)
        return std::nullopt;
    if (static_cast<std::int64_t>(images.size()) >= quota)
        return now;
    const auto window = std::chrono::duration_cast<policy::TimePoint::duration>(k_day * k_rate_window_days);
    std::vector<const policy::ImageRecord*> recent;
    for (const auto& image : images)
        if (image.effective_pushed_at() > now - window && image.effective_pushed_at() <= now)
            recent.push_back(&image);
    if (recent.empty())
        return std::nullopt;
    if (!policy) {
        // Nothing expires: the count grows by the last 30 days' pushes every 30 days.
        double per_day = static_cast<double>(recent.size()) / k_rate_window_days;
        auto missing = static_cast<double>(quota - static_cast<std::int64_t>(images.size()));
        auto days = static_cast<std::int64_t>(std::ceil(missing / per_day));
        if (days > horizon_days)
            return std::nullopt;
        return now + std::chrono::duration_cast<policy::TimePoint::duration>(k_day * days);
    }
    // With a policy: the repository as it will be on each future day (the last 30 days pushed again every 30
    // days), less what the policy expires by then. Daily for two months, weekly after that.
    // `present` grows in time order: the images of today, then each repeat as its push time comes.
    std::vector<policy::ImageRecord> present = images;
    std::vector<policy::ImageRecord> pending;  // repeats not pushed yet, oldest last
    int cycles_added = 0;
    for (int day = 1; day <= horizon_days; day += day < 60 ? 1 : 7) {
        auto at = now + std::chrono::duration_cast<policy::TimePoint::duration>(k_day * day);
        while (cycles_added * k_rate_window_days < day) {  // repeat k covers (now + 30(k-1) days, now + 30k days]
            ++cycles_added;
            auto shift = std::chrono::duration_cast<policy::TimePoint::duration>(k_day * k_rate_window_days * cycles_added);
            for (std::size_t i = 0; i < recent.size(); ++i) {
                policy::ImageRecord copy = *recent[i];
                copy.digest = "sha256:repeat-" + std::to_string(cycles_added) + "-" + std::to_string(i);
                copy.pushed_at = recent[i]->effective_pushed_at() + shift;
                copy.last_pulled_at.reset();
                copy.last_activated_at.reset();
                copy.transitioned_at.reset();
                copy.status = policy::ImageStatus::active;
                copy.parent_index_digests.clear();
                copy.child_digests.clear();
                pending.push_back(std::move(copy));
            }
            std::sort(pending.begin(), pending.end(),
                      [](const auto& a, const auto& b) { return a.pushed_at > b.pushed_at; });
        }
        while (!pending.empty() && pending.back().pushed_at <= at) {
            present.push_back(std::move(pending.back()));
            pending.pop_back();
        }
        auto decisions = policy::evaluate(*policy, present, at);
        std::int64_t kept = 0;
        for (const auto& d : decisions)
            kept += d.action == policy::ImageAction::expire ? 0 : 1;
        if (kept >= quota)
            return at;
    }
    return std::nullopt;
}

Entry audit_repository(const std::string& name, const guard::RepositoryFacts& facts,
                       const aws::EcrRepository* repository, const AuditOptions& options, policy::TimePoint now) {
    Entry entry;
    entry.name = name;
    entry.image_count = facts.image_count;
    entry.quota = options.settings.quota ? options.settings.quota : facts.quota;
    if (entry.quota && *entry.quota <= 0)
        entry.quota.reset();

    std::optional<policy::LifecyclePolicy> parsed;
    if (!facts.policy_text) {
        entry.findings.push_back(
            {"no-lifecycle-policy", Severity::error,
             name + " has no lifecycle policy: it fills up until its image quota refuses every push (the "
                    "\"repository full\" incident); add one: " + put_policy_fix(name, facts.is_ecr, facts.repository)});
    } else if (auto loaded = policy::load_policy(*facts.policy_text); !loaded) {
        entry.findings.push_back({"invalid-lifecycle-policy", Severity::error,
                                  "the lifecycle policy of " + name + " (" + facts.policy_source +
                                      ") is invalid: " + loaded.error().message +
                                      "; fix it (tagwarden policy lint shows the problems)"});
    } else {
        parsed = std::move(*loaded);
    }

    // Quota: the count now, and when the push rate of the last 30 days fills it.
    if (entry.quota) {
        const auto quota = *entry.quota;
        if (facts.images_known) {
            if (auto fills = project_fill_date(facts.images, parsed ? &*parsed : nullptr, quota, now))
                entry.fills_on = format_date(*fills);
        }
        auto limit = static_cast<std::int64_t>(std::ceil(options.settings.quota_threshold * static_cast<double>(quota)));
        std::string holds = name + " holds " + std::to_string(facts.image_count) + " of " + std::to_string(quota) +
                            " images (" + percent(facts.image_count, quota) + ")";
        std::string fix = facts.is_ecr ? "Expire images (a lifecycle rule for untagged and old images), or raise the "
                                         "quota (Service Quotas L-03A36CE1)"
                                       : "Delete images, or raise the quota (quota: in tagwarden.yaml)";
        int threshold = static_cast<int>(std::lround(options.settings.quota_threshold * 100));
        if (facts.image_count >= limit) {
            entry.findings.push_back({"quota", Severity::error,
                                      holds + ", at or above " + std::to_string(threshold) +
                                          "% of its quota: tagwarden refuses pushes that add an image, and at " +
                                          std::to_string(quota) + " the registry refuses every push" +
                                          (entry.fills_on ? "; at the push rate of the last 30 days it is full on " +
                                                                *entry.fills_on
                                                          : std::string()) +
                                          ". " + fix});
        } else if (entry.fills_on) {
            auto fills = policy::parse_time(*entry.fills_on);
            if (fills && *fills <= now + std::chrono::duration_cast<policy::TimePoint::duration>(k_day * options.days))
                entry.findings.push_back({"quota", Severity::warning,
                                          holds + "; at the push rate of the last 30 days it is full on " +
                                              *entry.fills_on + ", within " + std::to_string(options.days) +
                                              " days" + (parsed ? " (with what its lifecycle policy expires)" : "") +
                                              ". " + fix});
        }
    }

    if (parsed) {
        policy_findings(*parsed, options, entry);
        if (facts.images_known) {
            auto settings = options.settings;
            settings.protection_window = std::chrono::hours(24 * options.days);
            auto must_keep = guard::images_to_keep(facts.images, settings);
            for (const auto& problem : guard::survival_problems(*parsed, facts.images, must_keep, settings, now))
                entry.findings.push_back({"protected-expiring", Severity::error,
                                          problem + ". Fix the policy (tagwarden policy lint shows how), or change "
                                                    "what is protected"});
        }
    }

    if (repository)
        mutability_findings(repository->tag_mutability, repository->exclusion_filters, "the tags of " + name + " are",
                            "aws ecr put-image-tag-mutability --repository-name " + name + " --image-tag-mutability",
                            entry);
    entry.risk = risk_of(entry.findings);
    return entry;
}

Entry audit_template(const aws::EcrCreationTemplate& creation_template, std::optional<std::int64_t> quota,
                     const AuditOptions& options) {
    Entry entry;
    entry.name = creation_template.prefix;
    entry.quota = quota;
    std::string applied;
    for (const auto& a : creation_template.applied_for)
        applied += (applied.empty() ? "" : ", ") + a;
    std::string what = "the repository creation template '" + creation_template.prefix + "' (applied for " +
                       (applied.empty() ? std::string("nothing") : applied) + ")";
    std::string update = "aws ecr update-repository-creation-template --prefix " + creation_template.prefix;
    if (!creation_template.lifecycle_policy) {
        entry.findings.push_back(
            {"no-lifecycle-policy", Severity::error,
             what + " has no lifecycle policy: every repository it creates starts without one and fills up until "
                    "its image quota refuses every push; add one: " + update +
                 " --lifecycle-policy file://policy.json"});
    } else if (auto loaded = policy::load_policy(*creation_template.lifecycle_policy); !loaded) {
        entry.findings.push_back({"invalid-lifecycle-policy", Severity::error,
                                  "the lifecycle policy of " + what + " is invalid: " + loaded.error().message +
                                      "; fix it: " + update + " --lifecycle-policy file://policy.json"});
    } else {
        policy_findings(*loaded, options, entry);
    }
    mutability_findings(creation_template.tag_mutability, creation_template.exclusion_filters,
                        "the tags of the repositories " + what + " creates are", update + " --image-tag-mutability",
                        entry);
    entry.risk = risk_of(entry.findings);
    return entry;
}

Result<AuditReport> run_audit(const std::string& registry, registry::Client* client, const guard::AwsServices& aws,
                              const config::Config& cfg, const AuditOptions& options, policy::TimePoint now) {
    AuditReport report;
    report.registry = registry;
    auto matches = [&](const std::string& name) {
        return options.repo_globs.empty() ||
               std::any_of(options.repo_globs.begin(), options.repo_globs.end(),
                           [&](const auto& g) { return glob_match(g, name); });
    };
    const int jobs = std::max(1, options.jobs);

    if (aws.is_ecr()) {
        auto repositories = aws.ecr->describe_repositories();
        if (!repositories)
            return std::unexpected(repositories.error().with_context("listing the repositories of " + registry));
        std::erase_if(*repositories, [&](const aws::EcrRepository& r) { return !matches(r.name); });
        // One quota for every repository of the account and region: read once.
        std::optional<std::int64_t> quota = options.settings.quota;
        if (!quota && aws.quotas) {
            auto q = aws::get_images_per_repository_quota(*aws.quotas);
            quota = static_cast<std::int64_t>(q.value);
            log::info("image quota per repository: " + std::to_string(*quota) + " (Service Quotas L-03A36CE1, " +
                      std::string(aws::to_string(q.source)) + (q.note.empty() ? "" : ": " + q.note) + ")");
        }
        guard::AwsServices without_quotas{aws.ecr, nullptr};
        std::vector<std::optional<Entry>> entries(repositories->size());
        auto read = parallel_for(repositories->size(), jobs, [&](std::size_t i) -> Status {
            const auto& repo = (*repositories)[i];
            Reference ref;
            ref.registry = registry;
            ref.repository = repo.name;
            auto facts = guard::read_ecr_facts(ref, without_quotas);
            if (!facts) {
                if (facts.error().registry_code == "RepositoryNotFoundException") {
                    log::info(repo.name + " was deleted while the audit ran: left out");
                    return {};
                }
                return std::unexpected(facts.error());
            }
            facts->quota = quota;
            entries[i] = audit_repository(repo.name, *facts, &repo, options, now);
            return {};
        });
        if (!read)
            return std::unexpected(read.error());
        for (auto& e : entries)
            if (e)
                report.repositories.push_back(std::move(*e));
        auto templates = aws.ecr->describe_repository_creation_templates();
        if (!templates)
            return std::unexpected(templates.error().with_context("reading the repository creation templates of " +
                                                                  registry));
        for (const auto& t : *templates)
            if (template_in_scope(t.prefix, options.repo_globs))
                report.templates.push_back(audit_template(t, quota, options));
    } else {
        if (!client)
            return fail(ErrorKind::internal, "audit of " + registry + " without a registry client");
        auto names = generic_repositories(registry, *client, cfg, options);
        if (!names)
            return std::unexpected(names.error());
        std::vector<Entry> entries(names->size());
        auto read = parallel_for(names->size(), jobs, [&](std::size_t i) -> Status {
            Reference ref;
            ref.registry = registry;
            ref.repository = (*names)[i];
            auto facts = guard::gather_facts(ref, *client, aws, cfg, true);
            if (!facts)
                return std::unexpected(facts.error());
            entries[i] = audit_repository((*names)[i], *facts, nullptr, options, now);
            return {};
        });
        if (!read)
            return std::unexpected(read.error());
        report.repositories = std::move(entries);
    }
    sort_by_risk(report.repositories);
    sort_by_risk(report.templates);
    return report;
}

namespace {

nlohmann::json entry_json(const Entry& e, const char* name_key) {
    nlohmann::json findings = nlohmann::json::array();
    for (const auto& f : e.findings)
        findings.push_back(
            {{"check", f.check}, {"severity", std::string(policy::to_string(f.severity))}, {"message", f.message}});
    nlohmann::json j;
    j[name_key] = e.name;
    j["risk"] = std::string(to_string(e.risk));
    j["imageCount"] = e.image_count;
    j["quota"] = e.quota ? nlohmann::json(*e.quota) : nlohmann::json(nullptr);
    j["fillsOn"] = e.fills_on ? nlohmann::json(*e.fills_on) : nlohmann::json(nullptr);
    j["findings"] = std::move(findings);
    return j;
}

std::string count_text(const Entry& e, bool is_template) {
    if (is_template)
        return "template";
    return std::to_string(e.image_count) + "/" + (e.quota ? std::to_string(*e.quota) : std::string("?"));
}

std::string pad(std::string s, std::size_t width) {
    if (s.size() < width)
        s.append(width - s.size(), ' ');
    return s;
}

} // namespace

nlohmann::json to_json(const AuditReport& report) {
    nlohmann::json repositories = nlohmann::json::array();
    for (const auto& e : report.repositories)
        repositories.push_back(entry_json(e, "repository"));
    nlohmann::json templates = nlohmann::json::array();
    for (const auto& e : report.templates)
        templates.push_back(entry_json(e, "prefix"));
    return {{"registry", report.registry}, {"repositories", repositories}, {"templates", templates}};
}

std::string to_text(const AuditReport& report) {
    std::ostringstream out;
    out << pad("RISK", 8) << pad("IMAGES", 14) << pad("FILLS ON", 12) << "REPOSITORY\n";
    auto rows = [&](const std::vector<Entry>& entries, bool is_template) {
        for (const auto& e : entries) {
            out << pad(std::string(to_string(e.risk)), 8) << pad(count_text(e, is_template), 14)
                << pad(e.fills_on.value_or("-"), 12) << (is_template ? "template " : "") << e.name << "\n";
            for (const auto& f : e.findings)
                out << "        " << policy::to_string(f.severity) << " " << f.check << ": " << f.message << "\n";
        }
    };
    rows(report.repositories, false);
    rows(report.templates, true);
    std::size_t high = 0, medium = 0;
    for (const auto* list : {&report.repositories, &report.templates})
        for (const auto& e : *list) {
            high += e.risk == Risk::high ? 1 : 0;
            medium += e.risk == Risk::medium ? 1 : 0;
        }
    out << report.repositories.size() << (report.repositories.size() == 1 ? " repository and " : " repositories and ")
        << report.templates.size() << (report.templates.size() == 1 ? " template" : " templates") << " audited in "
        << report.registry << ": " << high << " at high risk, " << medium << " at medium risk\n";
    return out.str();
}

std::string to_markdown(const AuditReport& report) {
    auto cell = [](std::string s) {
        std::string out;
        for (char c : s) {
            if (c == '|')
                out += "\\|";
            else if (c == '\n')
                out += "<br>";
            else
                out += c;
        }
        return out;
    };
    std::ostringstream out;
    out << "## tagwarden audit: " << cell(report.registry) << "\n\n";
    out << "| risk | repository | images / quota | fills on | findings |\n|---|---|---|---|---|\n";
    auto rows = [&](const std::vector<Entry>& entries, bool is_template) {
        for (const auto& e : entries) {
            std::string findings;
            for (const auto& f : e.findings)
                findings += (findings.empty() ? "" : "<br>") + std::string("**") +
                            std::string(policy::to_string(f.severity)) + "** `" + f.check + "`: " + cell(f.message);
            out << "| " << to_string(e.risk) << " | " << (is_template ? "template `" : "`") << cell(e.name) << "` | "
                << count_text(e, is_template) << " | " << e.fills_on.value_or("-") << " | " << findings << " |\n";
        }
    };
    rows(report.repositories, false);
    rows(report.templates, true);
    return out.str();
}

} // namespace tagwarden::audit
