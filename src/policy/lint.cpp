#include <tagwarden/policy/lint.hpp>

#include <tagwarden/policy/tag_language.hpp>

#include <algorithm>

namespace tagwarden::policy {

std::string_view to_string(Severity severity) {
    switch (severity) {
    case Severity::error:
        return "error";
    case Severity::warning:
        return "warning";
    case Severity::info:
        return "info";
    }
    return "info";
}

bool has_errors(const std::vector<LintFinding>& findings) {
    return std::any_of(findings.begin(), findings.end(),
                       [](const LintFinding& f) { return f.severity == Severity::error; });
}

namespace {

struct Entry {
    std::string text;    // as written
    bool prefix = false; // tagPrefixList entry
    TagShape shape;
    bool matchable = true;
};

std::string in_quotes(std::string_view text) {
    return "\"" + std::string(text) + "\"";
}

std::string entry_name(const Entry& entry) {
    return std::string(entry.prefix ? "prefix " : "pattern ") + in_quotes(entry.text);
}

std::string entries_name(const std::vector<Entry>& entries) {
    std::string out;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i > 0)
            out += " and ";
        out += entry_name(entries[i]);
    }
    return out;
}

struct RuleView {
    const Rule* rule = nullptr;
    std::vector<Entry> entries; // tagged rules only
    bool selects_nothing = false;

    [[nodiscard]] StorageClass storage() const { return rule->selection.effective_storage_class(); }
    [[nodiscard]] TagStatus status() const { return rule->selection.tag_status; }
    [[nodiscard]] std::int64_t priority() const { return rule->rule_priority; }
    [[nodiscard]] CountType count_type() const { return rule->selection.count_type; }
    [[nodiscard]] ActionType action() const { return rule->action.type; }
};

// The protected environment's tags: `strict` for what real tags look like, `loose` for "any tag of that
// shape".
struct ProtectedEnv {
    std::string name;
    TagShape strict;
    TagShape loose;
};

class Linter {
  public:
    Linter(const LifecyclePolicy& policy, const LintConfig& config) {
        for (const auto& rule : policy.rules)
            m_rules.push_back(view(rule));
        std::stable_sort(m_rules.begin(), m_rules.end(),
                         [](const RuleView& a, const RuleView& b) { return a.priority() < b.priority(); });
        for (const auto& env : config.protected_envs)
            m_envs.push_back(ProtectedEnv{env, TagShape::from_template(config.tag_template, env),
                                          TagShape::from_template(config.tag_template, env, true)});
    }

    std::vector<LintFinding> run() {
        policy_wide();
        for (std::size_t i = 0; i < m_rules.size(); ++i) {
            lists(i);
            any_not_last(i);
            shadowed(i);
            for (const auto& env : m_envs)
                protected_env(i, env);
        }
        return std::move(m_findings);
    }

  private:
    static RuleView view(const Rule& rule) {
        RuleView v;
        v.rule = &rule;
        const auto& s = rule.selection;
        if (s.tag_status != TagStatus::tagged)
            return v;
        auto add = [&](const std::vector<std::string>& list, bool prefix) {
            for (const auto& text : list) {
                Entry e{text, prefix, prefix ? TagShape::from_prefix(text) : TagShape::from_pattern(text),
                        true};
                const TagShape one[] = {e.shape};
                e.matchable = common_tag(one).has_value();
                v.entries.push_back(std::move(e));
            }
        };
        if (s.tag_pattern_list)
            add(*s.tag_pattern_list, false);
        else if (s.tag_prefix_list)
            add(*s.tag_prefix_list, true);
        if (v.entries.empty()) {
            v.selects_nothing = true;
        } else {
            for (const auto& e : v.entries)
                if (!e.matchable)
                    v.selects_nothing = true;
        }
        return v;
    }

    void add(std::string id, Severity severity, std::optional<std::int64_t> priority, std::string message,
             std::string fix) {
        m_findings.push_back(
            LintFinding{std::move(id), severity, priority, std::move(message), std::move(fix)});
    }

    std::string rule_text(const RuleView& r) const { return "rulePriority " + std::to_string(r.priority()); }

    // A rule's selection as a JSON fragment for fixes that suggest a shielding rule.
    std::string shield_example(const ProtectedEnv& env, std::int64_t before) const {
        std::string where = before > 1 ? "with a rulePriority below " + std::to_string(before)
                                       : "applied before rulePriority " + std::to_string(before) +
                                             " (renumber: the lowest rulePriority is applied first)";
        return "add a rule " + where + " that selects every " + env.name +
               " tag, e.g. {\"rulePriority\": " + std::to_string(std::max<std::int64_t>(before - 1, 1)) +
               ", \"selection\": {\"tagStatus\": \"tagged\", \"tagPatternList\": [\"" + env.loose.text() +
               "\"], \"countType\": \"imageCountMoreThan\", \"countNumber\": 100}, \"action\": {\"type\": "
               "\"expire\"}}: it keeps the 100 newest " +
               env.name + " images, and no lower-priority rule can act on an image it selects";
    }

    void policy_wide() {
        bool expires = std::any_of(m_rules.begin(), m_rules.end(), [](const RuleView& r) {
            return r.action() == ActionType::expire && !r.selects_nothing;
        });
        if (!expires)
            add("never-expires", Severity::error, std::nullopt,
                m_rules.empty()
                    ? "the policy has no rules, so no image is ever expired"
                    : "no rule can ever expire an image (every rule transitions, or selects nothing): the "
                      "repository only grows until pushes fail at the images-per-repository quota",
                "add an expire rule, e.g. untagged images older than 1 day: {\"tagStatus\": \"untagged\", "
                "\"countType\": \"sinceImagePushed\", \"countUnit\": \"days\", \"countNumber\": 1} with "
                "action "
                "expire");
        bool untagged = std::any_of(m_rules.begin(), m_rules.end(), [](const RuleView& r) {
            return r.storage() == StorageClass::standard &&
                   (r.status() == TagStatus::untagged || r.status() == TagStatus::any);
        });
        if (!untagged)
            add("no-untagged-rule", Severity::warning, std::nullopt,
                "no rule selects untagged images: images that lose their tag (a tag moved to a newer push, a "
                "failed multi-tag push) accumulate toward the images-per-repository quota",
                "add {\"rulePriority\": N, \"selection\": {\"tagStatus\": \"untagged\", \"countType\": "
                "\"sinceImagePushed\", \"countUnit\": \"days\", \"countNumber\": 1}, \"action\": {\"type\": "
                "\"expire\"}} (children of a multi-arch index are kept while the index exists)");
    }

    void lists(std::size_t i) {
        const auto& r = m_rules[i];
        for (const auto& e : r.entries) {
            if (e.prefix && e.text.find('*') != std::string::npos) {
                add("prefix-contains-wildcard", Severity::warning, r.priority(),
                    "tagPrefixList entry " + in_quotes(e.text) +
                        " contains '*', which a prefix matches literally; no tag contains '*', so the rule "
                        "selects "
                        "nothing",
                    "use \"tagPatternList\": [" + in_quotes(e.text) + "] for a wildcard match");
            } else if (!e.matchable) {
                add("pattern-unmatchable", Severity::warning, r.priority(),
                    entry_name(e) +
                        " cannot match any valid tag (tags are [A-Za-z0-9_][A-Za-z0-9._-]{0,127}), so "
                        "the rule selects nothing",
                    "fix the " + std::string(e.prefix ? "prefix" : "pattern") +
                        " or delete the rule; check for spaces, '/', ':' or a leading '.' or '-'");
            }
        }
        if (r.entries.size() < 2 || r.selects_nothing)
            return;
        std::vector<TagShape> shapes;
        for (const auto& e : r.entries)
            shapes.push_back(e.shape);
        if (!common_tag(shapes))
            add("list-and-semantics", Severity::warning, r.priority(),
                "no single tag matches " + entries_name(r.entries) +
                    ": entries of one list are ANDed, so the rule selects only images carrying one matching "
                    "tag "
                    "per entry",
                "if you meant images matching either, write one rule per " +
                    std::string(r.entries.front().prefix ? "prefix" : "pattern"));
        else
            add("list-and-semantics", Severity::info, r.priority(),
                "the rule selects only images that have tags matching all of " + entries_name(r.entries) +
                    " (each may be matched by a different tag of the image)",
                "for images matching any of them, write one rule per entry");
    }

    void any_not_last(std::size_t i) {
        const auto& r = m_rules[i];
        if (r.status() != TagStatus::any)
            return;
        for (std::size_t j = 0; j < m_rules.size(); ++j) {
            if (j == i || m_rules[j].storage() != r.storage() || m_rules[j].priority() < r.priority())
                continue;
            add("any-not-last", Severity::error, r.priority(),
                "this tagStatus \"any\" rule is not the last " + std::string(to_string(r.storage())) +
                    " rule (" + rule_text(m_rules[j]) +
                    " comes after it); ECR rejects the policy, and even if "
                    "it did not, every later rule would see only images the \"any\" rule already selected",
                "give the \"any\" rule the highest rulePriority of its storage class");
            return;
        }
    }

    // Whether every image `lower` selects is selected by `higher` (both tagged): each entry of `higher` is
    // matched by the tag that satisfies some entry of `lower`.
    static bool selects_superset(const RuleView& higher, const RuleView& lower) {
        if (higher.status() == TagStatus::any)
            return true;
        if (higher.status() != TagStatus::tagged || lower.status() != TagStatus::tagged ||
            higher.entries.empty())
            return false;
        return std::all_of(higher.entries.begin(), higher.entries.end(), [&](const Entry& outer) {
            return std::any_of(lower.entries.begin(), lower.entries.end(),
                               [&](const Entry& inner) { return shape_covers(outer.shape, inner.shape); });
        });
    }

    void shadowed(std::size_t i) {
        const auto& r = m_rules[i];
        if (r.status() != TagStatus::tagged || r.selects_nothing)
            return;
        for (std::size_t j = 0; j < i; ++j) {
            const auto& h = m_rules[j];
            if (h.storage() != r.storage() || h.priority() == r.priority() || h.selects_nothing)
                continue;
            if (h.status() == TagStatus::tagged && selects_superset(h, r)) {
                add("shadowed-rule", Severity::warning, r.priority(),
                    "every image this rule selects (" + entries_name(r.entries) +
                        ") is already selected by " + rule_text(h) + " (" + entries_name(h.entries) +
                        "), and a rule never acts on images a higher-priority rule selected: this rule never "
                        "acts",
                    "narrow " + rule_text(h) + ", give this rule the lower rulePriority, or delete it");
                return;
            }
        }
    }

    // Whether a higher-priority standard rule selects every image that carries a tag of `env`.
    std::optional<std::int64_t> shield(std::size_t i, const ProtectedEnv& env) const {
        for (std::size_t j = 0; j < i; ++j) {
            const auto& h = m_rules[j];
            if (h.storage() != StorageClass::standard || h.priority() == m_rules[i].priority())
                continue;
            if (h.status() == TagStatus::any)
                return h.priority();
            if (h.status() != TagStatus::tagged || h.entries.empty())
                continue;
            bool covers = std::all_of(h.entries.begin(), h.entries.end(),
                                      [&](const Entry& e) { return shape_covers(e.shape, env.strict); });
            if (covers)
                return h.priority();
        }
        return std::nullopt;
    }

    void protected_env(std::size_t i, const ProtectedEnv& env) {
        const auto& r = m_rules[i];
        if (r.storage() != StorageClass::standard || r.status() == TagStatus::untagged || r.selects_nothing)
            return;
        if (shield(i, env))
            return;
        const std::string& name = env.name;
        const std::string tags = name + " tags (" + in_quotes(env.strict.text()) + ")";
        bool covers = r.status() == TagStatus::any ||
                      std::all_of(r.entries.begin(), r.entries.end(),
                                  [&](const Entry& e) { return shape_covers(e.shape, env.strict); });
        // An entry that matches only tags of this environment makes the rule select only its images.
        bool exact = covers && std::any_of(r.entries.begin(), r.entries.end(),
                                           [&](const Entry& e) { return shape_covers(env.loose, e.shape); });
        std::string what = r.status() == TagStatus::any ? std::string("all images") : entries_name(r.entries);

        if (r.action() == ActionType::transition) {
            add("archive-rule-reaches-protected", Severity::warning, r.priority(),
                "this rule archives " + what + " by " + std::string(to_string(r.count_type())) + "; " + name +
                    " images it selects (also through a second tag) become unpullable (404) until restored, "
                    "which "
                    "takes up to 20 minutes, e.g. during a rollback",
                shield_example(env, r.priority()));
            return;
        }
        if (r.count_type() == CountType::since_image_pushed) {
            add("age-rule-expires-protected", Severity::error, r.priority(),
                "this rule expires " + what + " pushed more than " +
                    std::to_string(r.rule->selection.count_number) + " days ago, and it can select " + name +
                    " images" +
                    (covers ? ""
                            : " (an image is selected when any of its tags matches, so a " + name +
                                  " image that also carries such a tag is selected)") +
                    ": a release that has not changed in that time loses its image, and rollback targets go "
                    "with it",
                "select " + name +
                    " images by count instead of age, and shield them: " + shield_example(env, r.priority()));
            return;
        }
        if (r.count_type() != CountType::image_count_more_than)
            return;
        auto kept = std::to_string(r.rule->selection.count_number);
        if (exact) {
            add("protected-retention", Severity::info, r.priority(),
                "this rule keeps the " + kept + " newest " + name +
                    " images and expires older ones; it also "
                    "shields " +
                    name + " images from lower-priority rules",
                "make sure " + kept + " covers every release you may roll back to");
            return;
        }
        if (covers) {
            std::string example;
            if (r.status() != TagStatus::any) {
                const TagShape outer[] = {env.loose};
                for (const auto& e : r.entries)
                    if (auto t = tag_outside(e.shape, outer)) {
                        example = *t;
                        break;
                    }
            }
            add("protected-tag-overbroad", Severity::error, r.priority(),
                "this rule selects every " + name + " image and other images too (" + what +
                    (example.empty() ? "" : " also matches e.g. " + in_quotes(example)) +
                    "): all of them share the " + kept + " kept slots, so pushes of other images expire " +
                    name + " images",
                "narrow the selection to the " + name + " tags only, e.g. \"tagPatternList\": [" +
                    in_quotes(env.loose.text()) + "], and give other images their own rules");
            return;
        }
        std::optional<std::string> direct;
        for (const auto& e : r.entries) {
            const TagShape both[] = {e.shape, env.strict};
            if (auto t = common_tag(both)) {
                direct = *t;
                break;
            }
        }
        if (direct) {
            add("protected-tag-match", Severity::error, r.priority(),
                "the rule's " + what + " also matches " + tags + ", e.g. " + in_quotes(*direct) +
                    ": those images are counted and expired with the others once more than " + kept +
                    " match",
                "exclude " + name + " tags from this selection, or " + shield_example(env, r.priority()));
            return;
        }
        add("multi-tag-reach", Severity::error, r.priority(),
            "this rule selects images by " + what +
                ", and an image is selected when ANY of its tags matches: an "
                "image also tagged for " +
                name + " (e.g. promoted without a new digest) is expired once more than " + kept +
                " newer images match, and no higher-priority rule shields " + name + " images",
            shield_example(env, r.priority()));
    }

    std::vector<RuleView> m_rules;
    std::vector<ProtectedEnv> m_envs;
    std::vector<LintFinding> m_findings;
};

} // namespace

std::vector<LintFinding> lint(const LifecyclePolicy& policy, const LintConfig& config) {
    return Linter(policy, config).run();
}

} // namespace tagwarden::policy
