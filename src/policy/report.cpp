#include <tagwarden/policy/report.hpp>

#include <algorithm>
#include <numeric>

namespace tagwarden::policy {

using json = nlohmann::ordered_json;

json simulation_json(const std::vector<ImageRecord>& images, const std::vector<ImageDecision>& decisions) {
    json list = json::array();
    for (std::size_t i = 0; i < images.size() && i < decisions.size(); ++i) {
        json entry = json::object();
        entry["imageDigest"] = images[i].digest;
        entry["imageTags"] = images[i].tags;
        entry["action"] = std::string(to_string(decisions[i].action));
        entry["rulePriority"] =
            decisions[i].rule_priority ? json(*decisions[i].rule_priority) : json(nullptr);
        list.push_back(std::move(entry));
    }
    return json{{"images", std::move(list)}};
}

namespace {

std::string pad(std::string text, std::size_t width) {
    if (text.size() < width)
        text.append(width - text.size(), ' ');
    return text;
}

std::string short_digest(const std::string& digest) {
    auto colon = digest.find(':');
    if (colon == std::string::npos || digest.size() < colon + 13)
        return digest;
    return digest.substr(0, colon + 13);
}

std::string joined_tags(const std::vector<std::string>& tags) {
    if (tags.empty())
        return "<untagged>";
    std::string out;
    for (const auto& t : tags)
        out += (out.empty() ? "" : ",") + t;
    return out;
}

} // namespace

std::string simulation_text(const std::vector<ImageRecord>& images,
                            const std::vector<ImageDecision>& decisions, TimePoint now) {
    std::vector<std::size_t> order(std::min(images.size(), decisions.size()));
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return images[a].effective_pushed_at() > images[b].effective_pushed_at();
    });
    struct Row {
        std::string action, rule, pushed, digest, tags, note;
    };
    std::vector<Row> rows;
    rows.push_back({"ACTION", "RULE", "PUSHED", "DIGEST", "TAGS", "WHY"});
    std::size_t expire = 0, transition = 0;
    for (auto i : order) {
        const auto& d = decisions[i];
        expire += d.action == ImageAction::expire;
        transition += d.action == ImageAction::transition;
        std::string action(to_string(d.action));
        if (d.ambiguous)
            action += "?";
        std::string storage = images[i].status == ImageStatus::archived     ? " [archived]"
                              : images[i].status == ImageStatus::activating ? " [activating]"
                                                                            : "";
        rows.push_back({action, d.rule_priority ? std::to_string(*d.rule_priority) : "-",
                        format_time(std::chrono::floor<std::chrono::seconds>(images[i].pushed_at)),
                        short_digest(images[i].digest), joined_tags(images[i].tags) + storage, d.note});
    }
    std::size_t widths[5] = {};
    for (const auto& r : rows) {
        widths[0] = std::max(widths[0], r.action.size());
        widths[1] = std::max(widths[1], r.rule.size());
        widths[2] = std::max(widths[2], r.pushed.size());
        widths[3] = std::max(widths[3], r.digest.size());
        widths[4] = std::max(widths[4], std::min<std::size_t>(r.tags.size(), 40));
    }
    std::string out;
    for (const auto& r : rows)
        out += pad(r.action, widths[0]) + "  " + pad(r.rule, widths[1]) + "  " + pad(r.pushed, widths[2]) +
               "  " + pad(r.digest, widths[3]) + "  " + pad(r.tags, widths[4]) + "  " + r.note + "\n";
    out += "\n" + std::to_string(order.size()) + " images at " + format_time(now) + ": " +
           std::to_string(expire) + " expire, " + std::to_string(transition) + " transition, " +
           std::to_string(order.size() - expire - transition) + " keep";
    bool ambiguous =
        std::any_of(decisions.begin(), decisions.end(), [](const ImageDecision& d) { return d.ambiguous; });
    if (ambiguous)
        out += " ('?' = depends on behaviour ECR does not document; see WHY)";
    out += "\n";
    return out;
}

json lint_json(const std::vector<LintFinding>& findings) {
    json list = json::array();
    std::size_t errors = 0, warnings = 0;
    for (const auto& f : findings) {
        errors += f.severity == Severity::error;
        warnings += f.severity == Severity::warning;
        list.push_back(json{{"id", f.id},
                            {"severity", std::string(to_string(f.severity))},
                            {"rulePriority", f.rule_priority ? json(*f.rule_priority) : json(nullptr)},
                            {"message", f.message},
                            {"fix", f.fix}});
    }
    return json{{"findings", std::move(list)}, {"errors", errors}, {"warnings", warnings}};
}

std::string lint_text(const std::vector<LintFinding>& findings) {
    std::string out;
    std::size_t errors = 0, warnings = 0;
    for (const auto& f : findings) {
        errors += f.severity == Severity::error;
        warnings += f.severity == Severity::warning;
        out += std::string(to_string(f.severity)) + " [" + f.id + "]";
        if (f.rule_priority)
            out += " rulePriority " + std::to_string(*f.rule_priority);
        out += ": " + f.message + "\n";
        if (!f.fix.empty())
            out += "  fix: " + f.fix + "\n";
    }
    out += std::to_string(errors) + (errors == 1 ? " error, " : " errors, ") + std::to_string(warnings) +
           (warnings == 1 ? " warning" : " warnings") + "\n";
    return out;
}

json problems_json(const std::vector<PolicyProblem>& problems) {
    json list = json::array();
    for (const auto& p : problems)
        list.push_back(json{{"rule", p.rule_index ? json(*p.rule_index) : json(nullptr)},
                            {"rulePriority", p.rule_priority ? json(*p.rule_priority) : json(nullptr)},
                            {"field", p.field},
                            {"message", p.message},
                            {"fix", p.fix}});
    return json{{"problems", std::move(list)}};
}

} // namespace tagwarden::policy
