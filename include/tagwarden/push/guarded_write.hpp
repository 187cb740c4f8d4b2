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

// A push or promotion as one library call: facts but the images -> the guards they decide -> blobs, and
// beside them the locks, the images read under them and the guards that need them -> manifests, tags
// (each re-read and fenced) -> verification -> undo on any failure. With settings.guards_first every guard
// is judged before the upload, and the images are read again under the locks.
struct GuardedWrite {
    Reference destination;  // registry and repository written to (its tag is ignored: see plan.tags)
    PushOptions options;    // registry_immutable and beside_upload are set by guarded_write()
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
    // Called with the guards' verdicts, refused or not (reports of a refusal need them: the refusal itself
    // is an Error): before anything is uploaded with those judged then, and again with every verdict once
    // the images were read beside the upload (before any manifest is written).
    std::function<void(const guard::GuardReport&)> on_guards;
};

struct GuardedWriteReport {
    PushReport push;
    guard::GuardReport guards;
};

// Whether this process runs in CI: CI, GITHUB_ACTIONS, CODEBUILD_BUILD_ID or GITLAB_CI is set.
bool running_in_ci();

// Runs the guarded write of `plan` (read from `source`) into request.destination through `client`
// (pinged). Guard refusals are Error{guard_refused} (exit 3) with every refused check in the message. They
// write no manifest and no tag; the lifecycle-policy and lock guards (and every guard with guards_first, or
// for a repository that does not exist yet) refuse before any upload, the others stop the upload (blobs
// that finished stay, referenced by nothing). Other errors as execute_push().
Result<GuardedWriteReport> guarded_write(const GuardedWrite& request, const PushPlan& plan, image::ImageSource& source,
                                         registry::Client& client, const guard::AwsServices& aws,
                                         const config::Config& cfg);

} // namespace tagwarden::push
