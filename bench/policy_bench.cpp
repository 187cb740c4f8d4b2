// Lifecycle policy evaluation speed: 20,000 images and 50 rules, as a large ECR repository with a rich
// policy. Prints the minimum and median wall time of `evaluate` over several runs as one JSON line.
#include <tagwarden/policy/evaluate.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace tagwarden;

int main(int argc, char** argv) {
    int images_count = argc > 1 ? std::stoi(argv[1]) : 20000;
    int rules_count = argc > 2 ? std::stoi(argv[2]) : 50;
    int runs = argc > 3 ? std::stoi(argv[3]) : 15;
    const std::vector<std::string> envs = {"dev", "qa", "staging", "preprod", "prod"};

    // 49 tagged rules over environment and team patterns, then one untagged rule.
    std::string text = R"({"rules":[)";
    for (int i = 1; i < rules_count; ++i) {
        const auto& env = envs[static_cast<std::size_t>(i) % envs.size()];
        std::string selection;
        if (i % 3 == 0)
            selection = R"("tagStatus":"tagged","tagPatternList":["*-)" + env + R"("],"countType":"imageCountMoreThan","countNumber":)" + std::to_string(20 + i);
        else if (i % 3 == 1)
            selection = R"("tagStatus":"tagged","tagPrefixList":["team)" + std::to_string(i) + R"(-"],"countType":"sinceImagePushed","countUnit":"days","countNumber":)" + std::to_string(30 + i);
        else
            selection = R"("tagStatus":"tagged","tagPatternList":["*.)" + std::to_string(i) + R"(.*-)" + env + R"("],"countType":"imageCountMoreThan","countNumber":)" + std::to_string(5 + i);
        text += R"({"rulePriority":)" + std::to_string(i) + R"(,"selection":{)" + selection + R"(},"action":{"type":"expire"}},)";
    }
    text += R"({"rulePriority":)" + std::to_string(rules_count) +
            R"(,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]})";
    auto policy = policy::load_policy(text);
    if (!policy) {
        std::fprintf(stderr, "policy_bench: %s\n", policy.error().message.c_str());
        return 1;
    }

    std::mt19937 rng(42);
    auto start = policy::TimePoint(std::chrono::duration_cast<policy::TimePoint::duration>(std::chrono::hours(24 * 19000)));
    std::vector<policy::ImageRecord> images;
    images.reserve(static_cast<std::size_t>(images_count));
    for (int i = 0; i < images_count; ++i) {
        policy::ImageRecord r;
        char hex[65];
        std::snprintf(hex, sizeof hex, "%064x", i);
        r.digest = std::string("sha256:") + hex;
        r.pushed_at = start + std::chrono::minutes(i * 7);
        if (i % 10 != 0) {
            auto env = envs[rng() % envs.size()];
            r.tags.push_back(std::to_string(i / 100) + "." + std::to_string(i % 50) + "." + std::to_string(i) + "-" + env);
            if (i % 7 == 0)
                r.tags.push_back("team" + std::to_string(rng() % 50) + "-" + std::to_string(i));
        }
        images.push_back(std::move(r));
    }
    auto now = start + std::chrono::hours(24 * 200);

    std::vector<double> ms;
    std::size_t acted = 0;
    for (int run = 0; run < runs; ++run) {
        auto t0 = std::chrono::steady_clock::now();
        auto decisions = policy::evaluate(*policy, images, now);
        auto t1 = std::chrono::steady_clock::now();
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        acted = static_cast<std::size_t>(std::count_if(decisions.begin(), decisions.end(), [](const auto& d) {
            return d.action != policy::ImageAction::keep;
        }));
    }
    std::sort(ms.begin(), ms.end());
    std::printf("{\"images\": %d, \"rules\": %d, \"runs\": %d, \"min_ms\": %.2f, \"median_ms\": %.2f, \"expired\": %zu}\n",
                images_count, rules_count, runs, ms.front(), ms[ms.size() / 2], acted);
    return 0;
}
