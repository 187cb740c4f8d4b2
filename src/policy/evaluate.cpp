#include <tagwarden/policy/evaluate.hpp>

#include <tagwarden/policy/tag_match.hpp>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <unordered_map>

namespace tagwarden::policy {

std::string_view to_string(ImageAction action) {
    switch (action) {
    case ImageAction::keep: return "keep";
    case ImageAction::expire: return "expire";
    case ImageAction::transition: return "transition";
    }
    return "keep";
}

namespace {

using std::chrono::microseconds;

std::string selection_text(const Rule& rule) {
    const auto& s = rule.selection;
    auto list = [](const std::vector<std::string>& entries) {
        std::string out;
        for (const auto& e : entries)
            out += (out.empty() ? "" : " and ") + ("\"" + e + "\"");
        return out;
    };
    switch (s.tag_status) {
    case TagStatus::any: return "all images";
    case TagStatus::untagged: return "untagged images";
    case TagStatus::tagged: break;
    }
    if (s.tag_pattern_list)
        return "images with tags matching " + list(*s.tag_pattern_list);
    if (s.tag_prefix_list)
        return "images with tags starting with " + list(*s.tag_prefix_list);
    return "tagged images";
}

std::string ordinal(std::size_t n) {
    std::string suffix = "th";
    if (n % 100 < 11 || n % 100 > 13) {
        if (n % 10 == 1)
            suffix = "st";
        else if (n % 10 == 2)
            suffix = "nd";
        else if (n % 10 == 3)
            suffix = "rd";
    }
    return std::to_string(n) + suffix;
}

std::string days_text(microseconds age) {
    auto hours = std::chrono::duration_cast<std::chrono::hours>(age).count();
    if (hours < 48)
        return std::to_string(hours) + "h";
    return std::to_string(hours / 24) + "d";
}

ImageAction action_of(const Rule& rule) {
    return rule.action.type == ActionType::transition ? ImageAction::transition : ImageAction::expire;
}

// Where an image is after the decisions: gone, or in a storage class.
enum class Placement { gone, standard, archive };

Placement placement_after(const ImageRecord& image, const ImageDecision& decision) {
    if (decision.action == ImageAction::expire)
        return Placement::gone;
    if (decision.action == ImageAction::transition)
        return Placement::archive;
    return image.status == ImageStatus::archived ? Placement::archive : Placement::standard;
}

class Evaluator {
public:
    Evaluator(const LifecyclePolicy& policy, const std::vector<ImageRecord>& images, TimePoint now)
        : m_policy(policy), m_images(images), m_now(now), m_decisions(images.size()) {}

    std::vector<ImageDecision> run() {
        order_images();
        std::vector<const Rule*> rules;
        for (const auto& rule : m_policy.rules)
            rules.push_back(&rule);
        std::stable_sort(rules.begin(), rules.end(),
                         [](const Rule* a, const Rule* b) { return a->rule_priority < b->rule_priority; });
        for (auto storage : {StorageClass::standard, StorageClass::archive}) {
            std::vector<char> claimed(m_images.size(), 0);
            for (const Rule* rule : rules)
                if (rule->selection.effective_storage_class() == storage)
                    apply_rule(*rule, storage, claimed);
        }
        for (std::size_t i = 0; i < m_images.size(); ++i)
            if (m_decisions[i].note.empty())
                m_decisions[i].note = m_images[i].status == ImageStatus::activating
                                          ? "being restored from archive (ACTIVATING); no rule selects it"
                                          : "no rule selects it";
        apply_references();
        flag_unknown_index_children();
        return std::move(m_decisions);
    }

private:
    void order_images() {
        m_newest_first.resize(m_images.size());
        std::iota(m_newest_first.begin(), m_newest_first.end(), std::size_t{0});
        m_pushed.resize(m_images.size());
        for (std::size_t i = 0; i < m_images.size(); ++i)
            m_pushed[i] = m_images[i].effective_pushed_at();
        // Equal push times: ascending digest counts as newer (ECR's tie order is undocumented).
        std::sort(m_newest_first.begin(), m_newest_first.end(), [&](std::size_t a, std::size_t b) {
            if (m_pushed[a] != m_pushed[b])
                return m_pushed[a] > m_pushed[b];
            return m_images[a].digest < m_images[b].digest;
        });
    }

    TimePoint reference_time(const Rule& rule, const ImageRecord& image) const {
        switch (rule.selection.count_type) {
        case CountType::since_image_pulled: return image.effective_pulled_at();
        case CountType::since_image_transitioned: return image.transitioned_at.value_or(image.effective_pushed_at());
        default: return image.effective_pushed_at();
        }
    }

    void apply_rule(const Rule& rule, StorageClass storage, std::vector<char>& claimed) {
        const auto& s = rule.selection;
        std::vector<std::size_t> matched;
        for (std::size_t index : m_newest_first) {
            const auto& image = m_images[index];
            if (image.storage_class() == storage && selection_matches(s, image.tags))
                matched.push_back(index);
        }
        const std::int64_t priority = rule.rule_priority;
        const std::string label = "rulePriority " + std::to_string(priority);
        const auto count = static_cast<std::size_t>(std::max<std::int64_t>(s.count_number, 0));

        if (s.count_type == CountType::image_count_more_than) {
            // Equal push times straddling the keep/mark boundary: which of them survives is ECR's choice.
            std::optional<TimePoint> tie;
            if (count > 0 && matched.size() > count && m_pushed[matched[count - 1]] == m_pushed[matched[count]])
                tie = m_pushed[matched[count]];
            for (std::size_t rank = 0; rank < matched.size(); ++rank) {
                std::size_t index = matched[rank];
                if (claimed[index])
                    continue;
                auto& decision = m_decisions[index];
                if (tie && m_pushed[index] == *tie) {
                    decision.ambiguous = true;
                }
                std::string position = ordinal(rank + 1) + " newest of " + std::to_string(matched.size()) + " " +
                                       selection_text(rule) + ", keeps " + std::to_string(count);
                if (rank >= count) {
                    decision.action = action_of(rule);
                    decision.rule_priority = priority;
                    decision.note = std::string(to_string(decision.action)) + " by " + label + ": " + position;
                } else {
                    decision.note = "kept by " + label + ": " + position;
                }
                if (decision.ambiguous)
                    decision.note += "; its push time equals another image's at the count boundary, and ECR does "
                                     "not document the order of equal push times";
            }
        } else {
            const microseconds limit = std::chrono::days{std::max<std::int64_t>(s.count_number, 0)};
            const char* what = s.count_type == CountType::since_image_pulled         ? "last pulled"
                               : s.count_type == CountType::since_image_transitioned ? "archived"
                                                                                      : "pushed";
            for (std::size_t index : matched) {
                if (claimed[index])
                    continue;
                auto& decision = m_decisions[index];
                microseconds age = m_now - reference_time(rule, m_images[index]);
                std::string detail = std::string(what) + " " + days_text(age) + " ago, limit " +
                                     std::to_string(s.count_number) + " days (" + selection_text(rule) + ")";
                if (age > limit) {
                    decision.action = action_of(rule);
                    decision.rule_priority = priority;
                    decision.note = std::string(to_string(decision.action)) + " by " + label + ": " + detail;
                } else {
                    decision.note = "kept by " + label + ": " + detail;
                }
            }
        }
        for (std::size_t index : matched) {
            if (!claimed[index]) {
                m_decisions[index].selected_by = priority;
                claimed[index] = 1;
            }
        }
    }

    // Index children stay while their index stays; referrers follow their subject. Iterated to a fixed point
    // because an index can itself be a child or a referrer.
    void apply_references() {
        std::unordered_map<std::string, std::size_t> by_digest;
        for (std::size_t i = 0; i < m_images.size(); ++i)
            by_digest.emplace(m_images[i].digest, i);
        std::vector<std::vector<std::size_t>> parents(m_images.size());
        auto add_parent = [&](std::size_t child, std::size_t parent) {
            if (child != parent && std::find(parents[child].begin(), parents[child].end(), parent) ==
                                       parents[child].end())
                parents[child].push_back(parent);
        };
        std::vector<std::optional<std::size_t>> subject(m_images.size());
        bool any_reference = false;
        for (std::size_t i = 0; i < m_images.size(); ++i) {
            for (const auto& child : m_images[i].child_digests)
                if (auto it = by_digest.find(child); it != by_digest.end()) {
                    add_parent(it->second, i);
                    any_reference = true;
                }
            for (const auto& parent : m_images[i].parent_index_digests)
                if (auto it = by_digest.find(parent); it != by_digest.end()) {
                    add_parent(i, it->second);
                    any_reference = true;
                }
            if (m_images[i].subject_digest)
                if (auto it = by_digest.find(*m_images[i].subject_digest); it != by_digest.end() && it->second != i) {
                    subject[i] = it->second;
                    any_reference = true;
                }
        }
        m_has_parent.assign(m_images.size(), 0);
        m_is_parent.assign(m_images.size(), 0);
        for (std::size_t i = 0; i < m_images.size(); ++i) {
            m_has_parent[i] = !parents[i].empty();
            for (auto p : parents[i])
                m_is_parent[p] = 1;
        }
        if (!any_reference)
            return;

        const std::vector<ImageDecision> by_rules = m_decisions;
        for (std::size_t pass = 0; pass <= m_images.size(); ++pass) {
            bool changed = false;
            for (std::size_t i = 0; i < m_images.size(); ++i) {
                ImageDecision next = by_rules[i];
                if (subject[i]) {
                    const auto& subject_decision = m_decisions[*subject[i]];
                    const std::string& subject_digest = m_images[*subject[i]].digest;
                    bool standard = m_images[i].status != ImageStatus::archived;
                    if (subject_decision.action == ImageAction::expire && next.action != ImageAction::expire) {
                        next.action = ImageAction::expire;
                        next.rule_priority.reset();
                        next.note = "expire with its subject " + subject_digest + " (referrer)";
                    } else if (subject_decision.action == ImageAction::transition &&
                               next.action == ImageAction::keep && standard) {
                        next.action = ImageAction::transition;
                        next.rule_priority.reset();
                        next.note = "transition with its subject " + subject_digest + " (referrer)";
                    }
                }
                if (next.action != ImageAction::keep) {
                    for (std::size_t parent : parents[i]) {
                        Placement after = placement_after(m_images[parent], m_decisions[parent]);
                        bool blocked = next.action == ImageAction::expire ? after != Placement::gone
                                                                          : after == Placement::standard;
                        if (blocked) {
                            next.note = "kept: referenced by index " + m_images[parent].digest + ", which " +
                                        (after == Placement::archive ? "stays archived" : "is kept") +
                                        " (would otherwise " + std::string(to_string(next.action)) +
                                        (next.rule_priority ? " by rulePriority " + std::to_string(*next.rule_priority)
                                                            : std::string()) +
                                        ")";
                            next.action = ImageAction::keep;
                            next.rule_priority.reset();
                            break;
                        }
                    }
                }
                auto& current = m_decisions[i];
                if (next.action != current.action || next.rule_priority != current.rule_priority ||
                    next.note != current.note) {
                    current = std::move(next);
                    changed = true;
                }
            }
            if (!changed)
                break;
        }
    }

    // DescribeImages does not list an index's children. When an index has no known children, an untagged image
    // reported as expiring may be one of them (ECR would keep it): flag those decisions.
    void flag_unknown_index_children() {
        std::optional<std::size_t> opaque_index;
        for (std::size_t i = 0; i < m_images.size(); ++i)
            if (m_images[i].is_index() && m_images[i].child_digests.empty() && !m_is_parent[i] &&
                m_decisions[i].action != ImageAction::expire) {
                opaque_index = i;
                break;
            }
        if (!opaque_index)
            return;
        for (std::size_t i = 0; i < m_images.size(); ++i) {
            auto& decision = m_decisions[i];
            if (m_images[i].tagged() || m_has_parent[i] || decision.action == ImageAction::keep ||
                m_images[i].subject_digest)
                continue;
            decision.ambiguous = true;
            decision.note += "; may be a child of index " + m_images[*opaque_index].digest +
                             " (its children are unknown), which ECR keeps while the index exists";
        }
    }

    const LifecyclePolicy& m_policy;
    const std::vector<ImageRecord>& m_images;
    TimePoint m_now;
    std::vector<ImageDecision> m_decisions;
    std::vector<std::size_t> m_newest_first;
    std::vector<TimePoint> m_pushed;
    std::vector<char> m_has_parent;
    std::vector<char> m_is_parent;
};

} // namespace

std::vector<ImageDecision> evaluate(const LifecyclePolicy& policy, const std::vector<ImageRecord>& images,
                                    TimePoint now) {
    return Evaluator(policy, images, now).run();
}

} // namespace tagwarden::policy
