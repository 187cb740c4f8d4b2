#include <tagwarden/policy/evaluate.hpp>

#include <tagwarden/policy/tag_match.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <numeric>
#include <span>
#include <string_view>
#include <unordered_map>

namespace tagwarden::policy {

std::string_view to_string(ImageAction action) {
    switch (action) {
    case ImageAction::keep:
        return "keep";
    case ImageAction::expire:
        return "expire";
    case ImageAction::transition:
        return "transition";
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
    case TagStatus::any:
        return "all images";
    case TagStatus::untagged:
        return "untagged images";
    case TagStatus::tagged:
        break;
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

// What a rule did to an image, rendered into ImageDecision::note once all rules have run.
struct Reason {
    const Rule* rule = nullptr;
    std::string_view selected; // the rule's selection, in words
    std::size_t rank = 0;      // imageCountMoreThan: 0-based position among the matches, newest first
    std::size_t matched = 0;   // imageCountMoreThan: number of matches
    microseconds age{0};       // since*: age of the reference time
};

class Evaluator {
  public:
    Evaluator(const LifecyclePolicy& policy, const std::vector<ImageRecord>& images, TimePoint now)
        : m_policy(policy), m_images(images), m_now(now), m_decisions(images.size()),
          m_reasons(images.size()) {}

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
            m_decisions[i].note = note(i);
        apply_references();
        flag_unknown_index_children();
        return std::move(m_decisions);
    }

  private:
    struct Candidate {
        std::size_t index;     // into m_images
        std::size_t first_tag; // into m_tag_views
        std::size_t tag_count;
    };
    struct TagRef {
        std::uint64_t key; // the first 8 bytes, big-endian: orders like the text, compared in one instruction
        std::string_view tag;
        std::size_t position; // into m_by_class[c]

        TagRef(std::string_view text, std::size_t at) : key(0), tag(text), position(at) {
            for (std::size_t i = 0; i < 8; ++i)
                key = (key << 8) | (i < text.size() ? static_cast<unsigned char>(text[i]) : 0u);
        }
        friend bool operator<(const TagRef& a, const TagRef& b) {
            return a.key != b.key ? a.key < b.key : a.tag < b.tag;
        }
    };

    void order_images() {
        std::vector<std::size_t> newest_first(m_images.size());
        std::iota(newest_first.begin(), newest_first.end(), std::size_t{0});
        m_pushed.resize(m_images.size());
        for (std::size_t i = 0; i < m_images.size(); ++i)
            m_pushed[i] = m_images[i].effective_pushed_at();
        // Equal push times: ascending digest counts as newer (ECR's tie order is undocumented).
        std::sort(newest_first.begin(), newest_first.end(), [&](std::size_t a, std::size_t b) {
            if (m_pushed[a] != m_pushed[b])
                return m_pushed[a] > m_pushed[b];
            return m_images[a].digest < m_images[b].digest;
        });
        // Rules scan the images of their storage class newest first: keep those, and their tags, contiguous.
        std::size_t tag_count = 0;
        std::size_t tag_bytes = 0;
        for (const auto& image : m_images) {
            tag_count += image.tags.size();
            for (const auto& tag : image.tags)
                tag_bytes += tag.size();
        }
        m_tag_views.reserve(tag_count);
        // Reversed copies of the tags, for lookups by suffix ("*-prod"); reserved so the views stay valid.
        m_reversed_arena.reserve(tag_bytes);
        for (std::size_t index : newest_first) {
            const auto& image = m_images[index];
            auto storage = image.storage_class();
            if (!storage)
                continue;
            int c = *storage == StorageClass::archive ? 1 : 0;
            std::size_t first = m_tag_views.size();
            for (const auto& tag : image.tags) {
                m_tag_index[c].emplace_back(tag, m_by_class[c].size());
                const std::size_t offset = m_reversed_arena.size();
                m_reversed_arena.append(tag.rbegin(), tag.rend());
                m_reversed_index[c].emplace_back(
                    std::string_view(m_reversed_arena).substr(offset, tag.size()), m_by_class[c].size());
                m_tag_views.emplace_back(tag);
            }
            m_by_class[c].push_back(Candidate{index, first, image.tags.size()});
        }
        for (int c = 0; c < 2; ++c) {
            std::sort(m_tag_index[c].begin(), m_tag_index[c].end());
            std::sort(m_reversed_index[c].begin(), m_reversed_index[c].end());
        }
    }

    TimePoint reference_time(const Rule& rule, const ImageRecord& image) const {
        switch (rule.selection.count_type) {
        case CountType::since_image_pulled:
            return image.effective_pulled_at();
        case CountType::since_image_transitioned:
            return image.transitioned_at.value_or(image.effective_pushed_at());
        default:
            return image.effective_pushed_at();
        }
    }

    // Candidate positions (into m_by_class[c]) of the images having a tag that begins with `text` (or, in the
    // reversed index, ends with it), ascending = newest first.
    std::vector<std::size_t> lookup(const std::vector<TagRef>& index, std::string_view text, int c) const {
        std::vector<std::size_t> positions;
        auto it = std::lower_bound(index.begin(), index.end(), text,
                                   [](const TagRef& ref, std::string_view value) { return ref.tag < value; });
        for (; it != index.end() && it->tag.starts_with(text); ++it)
            positions.push_back(it->position);
        const std::size_t total = m_by_class[c].size();
        if (positions.size() < total / 16) {
            std::sort(positions.begin(), positions.end());
            positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
            return positions;
        }
        // Many hits: a pass over a bitmap is cheaper than sorting them.
        std::vector<char> hit(total, 0);
        for (auto position : positions)
            hit[position] = 1;
        positions.clear();
        for (std::size_t position = 0; position < total; ++position)
            if (hit[position])
                positions.push_back(position);
        return positions;
    }

    // The images of storage class `c` the rule's selection matches, newest first.
    std::vector<std::size_t> select(const Selection& s, int c) const {
        const TagFilter filter(s);
        const auto& candidates = m_by_class[c];
        const std::span<const std::string_view> all_tags(m_tag_views);
        auto matches = [&](const Candidate& candidate) {
            return filter.matches(all_tags.subspan(candidate.first_tag, candidate.tag_count));
        };
        std::vector<std::size_t> matched;
        // A tagged rule selects only images with a tag that begins with the literal head of each entry (and
        // ends with its literal tail): look those tags up in the sorted indexes instead of scanning every
        // image.
        std::optional<std::vector<std::size_t>> positions;
        if (filter.index_prefix().size() >= filter.index_suffix().size() && !filter.index_prefix().empty()) {
            positions = lookup(m_tag_index[c], filter.index_prefix(), c);
        } else if (!filter.index_suffix().empty()) {
            std::string reversed(filter.index_suffix().rbegin(), filter.index_suffix().rend());
            positions = lookup(m_reversed_index[c], reversed, c);
        }
        if (!positions) {
            for (const auto& candidate : candidates)
                if (matches(candidate))
                    matched.push_back(candidate.index);
            return matched;
        }
        for (std::size_t position : *positions)
            if (matches(candidates[position]))
                matched.push_back(candidates[position].index);
        return matched;
    }

    void apply_rule(const Rule& rule, StorageClass storage, std::vector<char>& claimed) {
        const auto& s = rule.selection;
        const std::vector<std::size_t> matched = select(s, storage == StorageClass::archive ? 1 : 0);
        m_selection_texts.push_back(selection_text(rule));
        const std::string_view selected = m_selection_texts.back();
        const std::int64_t priority = rule.rule_priority;
        const auto count = static_cast<std::size_t>(std::max<std::int64_t>(s.count_number, 0));

        if (s.count_type == CountType::image_count_more_than) {
            // Equal push times straddling the keep/mark boundary: which of them survives is ECR's choice.
            std::optional<TimePoint> tie;
            if (count > 0 && matched.size() > count &&
                m_pushed[matched[count - 1]] == m_pushed[matched[count]])
                tie = m_pushed[matched[count]];
            for (std::size_t rank = 0; rank < matched.size(); ++rank) {
                std::size_t index = matched[rank];
                if (claimed[index])
                    continue;
                auto& decision = m_decisions[index];
                decision.ambiguous = tie && m_pushed[index] == *tie;
                if (rank >= count) {
                    decision.action = action_of(rule);
                    decision.rule_priority = priority;
                }
                m_reasons[index] = Reason{&rule, selected, rank, matched.size(), {}};
            }
        } else {
            const microseconds limit = std::chrono::days{std::max<std::int64_t>(s.count_number, 0)};
            for (std::size_t index : matched) {
                if (claimed[index])
                    continue;
                auto& decision = m_decisions[index];
                microseconds age = m_now - reference_time(rule, m_images[index]);
                if (age > limit) {
                    decision.action = action_of(rule);
                    decision.rule_priority = priority;
                }
                m_reasons[index] = Reason{&rule, selected, 0, 0, age};
            }
        }
        for (std::size_t index : matched) {
            if (!claimed[index]) {
                m_decisions[index].selected_by = priority;
                claimed[index] = 1;
            }
        }
    }

    std::string note(std::size_t index) const {
        const auto& decision = m_decisions[index];
        const auto& reason = m_reasons[index];
        if (!reason.rule)
            return m_images[index].status == ImageStatus::activating
                       ? "being restored from archive (ACTIVATING); no rule selects it"
                       : "no rule selects it";
        const auto& s = reason.rule->selection;
        std::string out;
        out.reserve(160);
        if (decision.action == ImageAction::keep)
            out += "kept by ";
        else
            out.append(to_string(decision.action)).append(" by ");
        out.append("rulePriority ").append(std::to_string(reason.rule->rule_priority)).append(": ");
        if (s.count_type == CountType::image_count_more_than) {
            out.append(ordinal(reason.rank + 1)).append(" newest of ").append(std::to_string(reason.matched));
            out.append(" ").append(reason.selected).append(", keeps ").append(std::to_string(s.count_number));
            if (decision.ambiguous)
                out += "; its push time equals another image's at the count boundary, and ECR does not "
                       "document the "
                       "order of equal push times";
        } else {
            out += s.count_type == CountType::since_image_pulled         ? "last pulled "
                   : s.count_type == CountType::since_image_transitioned ? "archived "
                                                                         : "pushed ";
            out.append(days_text(reason.age)).append(" ago, limit ").append(std::to_string(s.count_number));
            out.append(" days (").append(reason.selected).append(")");
        }
        return out;
    }

    // Index children stay while their index stays; referrers follow their subject. Iterated to a fixed point
    // because an index can itself be a child or a referrer.
    void apply_references() {
        m_has_parent.assign(m_images.size(), 0);
        m_is_parent.assign(m_images.size(), 0);
        bool has_links = std::any_of(m_images.begin(), m_images.end(), [](const ImageRecord& image) {
            return !image.child_digests.empty() || !image.parent_index_digests.empty() ||
                   image.subject_digest;
        });
        if (!has_links)
            return;
        std::unordered_map<std::string_view, std::size_t> by_digest;
        by_digest.reserve(m_images.size());
        for (std::size_t i = 0; i < m_images.size(); ++i)
            by_digest.emplace(m_images[i].digest, i);
        std::vector<std::vector<std::size_t>> parents(m_images.size());
        auto add_parent = [&](std::size_t child, std::size_t parent) {
            if (child != parent &&
                std::find(parents[child].begin(), parents[child].end(), parent) == parents[child].end())
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
                if (auto it = by_digest.find(*m_images[i].subject_digest);
                    it != by_digest.end() && it->second != i) {
                    subject[i] = it->second;
                    any_reference = true;
                }
        }
        for (std::size_t i = 0; i < m_images.size(); ++i) {
            m_has_parent[i] = !parents[i].empty();
            for (auto p : parents[i])
                m_is_parent[p] = 1;
        }
        if (!any_reference)
            return;

        // Only images with a subject or a parent can change; the rest keep their rule decisions.
        std::vector<std::size_t> dependent;
        for (std::size_t i = 0; i < m_images.size(); ++i)
            if (subject[i] || !parents[i].empty())
                dependent.push_back(i);
        std::vector<ImageDecision> by_rules;
        by_rules.reserve(dependent.size());
        for (std::size_t i : dependent)
            by_rules.push_back(m_decisions[i]);
        for (std::size_t pass = 0; pass <= dependent.size(); ++pass) {
            bool changed = false;
            for (std::size_t k = 0; k < dependent.size(); ++k) {
                const std::size_t i = dependent[k];
                ImageDecision next = by_rules[k];
                if (subject[i]) {
                    const auto& subject_decision = m_decisions[*subject[i]];
                    const std::string& subject_digest = m_images[*subject[i]].digest;
                    bool standard = m_images[i].status != ImageStatus::archived;
                    if (subject_decision.action == ImageAction::expire &&
                        next.action != ImageAction::expire) {
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
                                        (next.rule_priority
                                             ? " by rulePriority " + std::to_string(*next.rule_priority)
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

    // DescribeImages does not list an index's children. When an index has no known children, an untagged
    // image reported as expiring may be one of them (ECR would keep it): flag those decisions.
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
    // Per storage class (standard, archive): images newest first, and their tags sorted.
    std::vector<Candidate> m_by_class[2];
    std::vector<TagRef> m_tag_index[2];
    std::vector<TagRef> m_reversed_index[2];
    std::string m_reversed_arena;
    std::vector<std::string_view> m_tag_views;
    std::vector<Reason> m_reasons;
    std::deque<std::string> m_selection_texts; // stable addresses for Reason::selected
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
