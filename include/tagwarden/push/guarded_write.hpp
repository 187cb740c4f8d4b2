#pragma once

#include <tagwarden/config/config.hpp>
#include <tagwarden/core/reference.hpp>
#include <tagwarden/guard/facts.hpp>
#include <tagwarden/guard/guard.hpp>
#include <tagwarden/image/image_source.hpp>
#include <tagwarden/push/execute.hpp>
#include <tagwarden/push/plan.hpp>
#include <tagwarden/push/report.hpp>
#include <tagwarden/registry/client.hpp>

#include <functional>

namespace tagwarden::push {

// A push or promotion as one library call: facts -> guards -> locks -> the cheap facts again under the
// locks -> blobs, manifests, tags (each re-read and fenced) -> verification -> undo on any failure.
struct GuardedWrite {
    Reference destination;  // registry and repository written to (its tag is ignored: see plan.tags)
    PushOptions options;    // registry_immutable and under_locks are set by guarded_write()
    guard::GuardSettings settings;
    bool confirm_with_preview = false;
    // Whether a lock backend was chosen (--lock, TAGWARDEN_LOCK, tagwarden.yaml). Without one the
    // default file:// lock holds on one machine only: in CI that is refused where the registry itself
    // does not keep the tags from moving.
    bool lock_configured = false;
    std::string lock_description;  // the backend in use, for messages
    bool in_ci = false;            // running_in_ci()
    // The registry client authenticates with the ECR client's GetAuthorizationToken (not --password-stdin):
    // the token is then fetched while the guards read, not after them.
    bool registry_uses_ecr_token = false;
    // Called once with the guards' verdicts, refused or not, before anything is written (reports of a
    // refusal need them: the refusal itself is an Error).
    std::function<void(const guard::GuardReport&)> on_guards;
};

struct GuardedWriteReport {
    PushReport push;
    guard::GuardReport guards;
};

// Whether this process runs in CI: CI, GITHUB_ACTIONS, CODEBUILD_BUILD_ID or GITLAB_CI is set.
bool running_in_ci();

// Runs the guarded write of `plan` (read from `source`) into request.destination through `client`
// (pinged). Guard refusals are Error{guard_refused} (exit 3) with every refused check in the message, and
// write nothing; other errors as execute_push().
Result<GuardedWriteReport> guarded_write(const GuardedWrite& request, const PushPlan& plan, image::ImageSource& source,
                                         registry::Client& client, const guard::AwsServices& aws,
                                         const config::Config& cfg);

} // namespace tagwarden::push
