#include <tagwarden/core/log.hpp>
#include <tagwarden/core/parallel.hpp>
#include <tagwarden/core/strings.hpp>
#include <tagwarden/push/guarded_write.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

namespace tagwarden::push {

namespace {

policy::TimePoint policy_now() {
    return std::chrono::time_point_cast<policy::TimePoint::duration>(std::chrono::system_clock::now());
}

// What the push adds to the repository: the image and each child the repository does not hold yet.
Result<guard::Intent> make_intent(const PushPlan& plan, const guard::RepositoryFacts& facts, registry::Client& client,
                                  const std::string& repo) {
    guard::Intent intent;
    intent.digest = plan.root.digest.str();
    intent.tags = plan.tags;
    for (const auto& child : plan.children)
        intent.child_digests.push_back(child.digest.str());
    if (facts.images_known) {
        std::set<std::string> present;
        for (const auto& image : facts.images)
            present.insert(image.digest);
        intent.images_added = present.count(intent.digest) ? 0 : 1;
        for (const auto& child : intent.child_digests)
            intent.images_added += present.count(child) ? 0 : 1;
    } else {
        auto root = client.head_manifest(repo, intent.digest);
        if (!root)
            return std::unexpected(root.error());
        intent.images_added = *root ? 0 : 1;
    }
    return intent;
}

// The `lock` guard: a lock that spans the writers, or a registry that keeps the tags from moving itself.
guard::Finding lock_finding(const GuardedWrite& request, const PushPlan& plan,
                            const std::function<bool(const std::string&)>& immutable) {
    if (plan.tags.empty())
        return {"lock", "passed", "no tag is written: nothing to lock"};
    if (request.lock_configured) {
        if (request.in_ci && request.options.locks && !request.options.locks->backend().spans_machines())
            return {"lock", "overridden",
                    "tags are locked in " + request.lock_description +
                        ", which holds on this machine only (chosen explicitly): runners on other machines are not "
                        "excluded"};
        return {"lock", "passed", "tags are locked in " + request.lock_description};
    }
    std::vector<std::string> movable;
    for (const auto& tag : plan.tags)
        if (!immutable || !immutable(tag))
            movable.push_back(tag);
    if (movable.empty())
        return {"lock", "passed",
                "no lock configured; the registry is the arbiter: it keeps " + join(plan.tags) +
                    " immutable (tag mutability), so a concurrent writer fails instead of overwriting"};
    if (!request.in_ci)
        return {"lock", "passed", "tags are locked in " + request.lock_description + " (this machine only)"};
    return {"lock", "refused",
            "no lock is configured, and in CI the default lock (" + request.lock_description +
                ") holds on this machine only: two runners pushing " + join(movable) +
                " would both 'hold' it and race. Use a lock that spans runners: --lock "
                "dynamodb://TABLE?region=REGION (create the table once with `tagwarden lock init "
                "dynamodb://TABLE?region=REGION`) or --lock etcd://HOST:PORT (or TAGWARDEN_LOCK / `lock:` in "
                "tagwarden.yaml); or accept a per-machine lock with an explicit --lock file:///DIR"};
}

// Logs the verdicts of `report` that `logged` (an earlier report of the same write) did not already log.
void log_findings(const guard::GuardReport& report, const guard::GuardReport& logged) {
    for (const auto& f : report.findings) {
        bool seen = std::any_of(logged.findings.begin(), logged.findings.end(), [&](const guard::Finding& g) {
            return g.check == f.check && g.status == f.status && g.message == f.message;
        });
        if (seen)
            continue;
        if (f.status == "passed" || f.status == "skipped")
            log::info("guard " + f.check + (f.status == "skipped" ? " skipped: " : ": ") + f.message);
        else if (f.status != "refused")
            log::warn("guard " + f.check + " " + f.status + ": " + f.message);
    }
}

} // namespace

bool running_in_ci() {
    for (const char* name : {"CI", "GITHUB_ACTIONS", "CODEBUILD_BUILD_ID", "GITLAB_CI"}) {
        auto v = env_or_empty(name);
        if (!v.empty() && v != "false" && v != "0")
            return true;
    }
    return false;
}

Result<GuardedWriteReport> guarded_write(const GuardedWrite& request, const PushPlan& plan, image::ImageSource& source,
                                         registry::Client& client, const guard::AwsServices& aws,
                                         const config::Config& cfg) {
    const auto& dest = request.destination;
    const bool quota_given = request.settings.quota.has_value();
    GuardedWriteReport out;
    PhaseTimings::Duration guards_time{};
    std::optional<PhaseTimer> guards_timer(std::in_place, guards_time);

    // 1. Before any upload: the repository's facts but its images (lifecycle policy, quota, whether it
    // exists or which CREATE_ON_PUSH template will create it), its tag mutability, and on ECR the registry
    // password the tag preflight will need (GetAuthorizationToken, cached in the ECR client the registry's
    // keychain shares: fetched now instead of after the guards, still once; a failure is reported where it
    // is used). Independent reads: concurrently. The images (every DescribeImages page; elsewhere a HEAD per
    // tag) are read once, beside the upload, under the tag locks (2.) — or here too with guards_first.
    const auto images = request.settings.guards_first ? guard::ImageRead::now : guard::ImageRead::later;
    Result<guard::RepositoryFacts> facts;
    Result<std::function<bool(const std::string&)>> immutable;
    (void)parallel_for(3, 3, [&](std::size_t i) -> Status {
        if (i == 0)
            facts = guard::gather_facts(dest, client, aws, cfg, quota_given, images);
        else if (i == 1)
            immutable = guard::tag_immutability(dest, aws);
        else if (aws.is_ecr() && request.registry_uses_ecr_token)
            (void)aws.ecr->get_authorization_token();
        return {};
    });
    if (!facts)
        return std::unexpected(facts.error());
    if (!immutable)
        return std::unexpected(immutable.error());
    const bool pending = facts->images_pending;

    // Every guard whose facts are in: all of them, or (images pending) the policy and the lock.
    // ECR's own preview (--confirm-with-preview) is asked once, where the images are first read.
    auto judge = [&](bool with_preview) -> Result<guard::GuardReport> {
        auto intent = make_intent(plan, *facts, client, dest.repository);
        if (!intent)
            return std::unexpected(intent.error());
        auto now = policy_now();
        auto report = guard::evaluate_guards(*facts, *intent, request.settings, now);
        report.findings.push_back(lock_finding(request, plan, *immutable));
        if (request.confirm_with_preview && with_preview) {
            if (!aws.is_ecr() || !facts->policy_text)
                report.findings.push_back(
                    {"preview", "skipped", "--confirm-with-preview needs an ECR repository with a lifecycle policy"});
            else
                report.findings.push_back(guard::compare_with_preview(*aws.ecr, dest, *facts, now));
        }
        return report;
    };
    if (pending) {
        out.guards = guard::evaluate_policy_guard(*facts, request.settings);
        out.guards.findings.push_back(lock_finding(request, plan, *immutable));
    } else {
        auto judged = judge(true);
        if (!judged)
            return std::unexpected(judged.error());
        out.guards = std::move(*judged);
    }
    log_findings(out.guards, {});
    if (request.on_guards)
        request.on_guards(out.guards);
    if (out.guards.refused())
        return std::unexpected(out.guards.error());
    guards_timer.reset();

    // 2. The write. Beside the upload, under the tag locks, before the first manifest write: the images,
    // read once (or again, when they were read before the upload), and the guards judged on them; a
    // refusal stops the upload and writes no manifest and no tag. When the upload outlasts that read, the
    // verdict grows old while other pipelines may push: once the read is older than four times what it
    // took, the images are read again right before the first manifest write, which then costs at most a
    // quarter of the upload (issue 9: the count is read under the locks right before the write).
    using Clock = std::chrono::steady_clock;
    Clock::time_point read_started{};
    Clock::duration read_took{};
    bool read_anything = false;
    auto read_and_judge = [&](bool first) -> Status {
        read_started = Clock::now();
        auto read = guard::read_images(*facts, dest, client, aws, quota_given);
        if (!read)
            return std::unexpected(read.error());
        read_anything = *read;
        read_took = Clock::now() - read_started;
        auto judged = judge(first && pending);
        if (!judged)
            return std::unexpected(judged.error());
        if (first && pending) {
            log_findings(*judged, out.guards);
            out.guards = *judged;
            if (request.on_guards)
                request.on_guards(out.guards);
        }
        if (judged->refused()) {
            auto e = judged->error();
            e.message += first ? (pending ? " (judged on the images read under the tag locks while the blobs uploaded; "
                                            "no manifest or tag was written)"
                                          : " (read again under the tag locks while the blobs uploaded; no manifest "
                                            "or tag was written)")
                               : " (read again under the tag locks after the upload, right before the first manifest "
                                 "write; no manifest or tag was written)";
            return std::unexpected(e);
        }
        log::debug("guards hold under the tag locks: " + std::to_string(facts->image_count) + " image(s)");
        return {};
    };
    PushOptions options = request.options;
    options.registry_immutable = *immutable;
    options.beside_upload = [&]() -> Status { return read_and_judge(true); };
    options.after_upload = [&]() -> Status {
        // Nothing to read: no quota to count against (off ECR). A CREATE_ON_PUSH repository the upload had
        // not created yet when it was read: read now, as it exists.
        if (!read_anything && !facts->creation_template)
            return {};
        auto age = Clock::now() - read_started;
        if (read_anything && age <= 4 * read_took)
            return {};
        auto ms = [](Clock::duration d) {
            return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
        };
        if (read_anything)
            log::info("the images were read " + ms(age) + " ago, more than four times the " + ms(read_took) +
                      " the read took: reading them again before the first manifest write");
        return read_and_judge(false);
    };
    auto pushed = execute_push(plan, source, client, dest.repository, options);
    if (!pushed)
        return std::unexpected(pushed.error());
    out.push = std::move(*pushed);
    out.push.timings.guards += guards_time;
    return out;
}

} // namespace tagwarden::push
