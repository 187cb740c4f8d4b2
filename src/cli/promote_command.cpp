#include "commands.hpp"
#include "connection.hpp"
#include "github_output.hpp"
#include "guards.hpp"

#include <tagwarden/config/config.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/push/promote.hpp>
#include <tagwarden/push/guarded_write.hpp>
#include <tagwarden/push/push.hpp>
#include <tagwarden/registry/registry_source.hpp>

#include <nlohmann/json.hpp>

#include <iostream>

namespace tagwarden::cli {

namespace {

struct PromoteArgs {
    std::string reference;
    std::string from_env;
    std::string to_env;
    std::string to_repo;
    bool to_repo_given = false;  // --to-repo present, even with an empty value
    std::vector<std::string> platforms;
    bool referrers = false;
    bool dry_run = false;
    std::string output = "text";
    LockArgs lock;
    GuardArgs guard;
    ConnectionOptions connection;
};

// Copies the referrers (signatures, SBOMs, attestations) of `subject` by digest. Returns how many.
Result<int> copy_referrers(registry::Client& from, const std::string& from_repo, registry::Client& to,
                           const std::string& to_repo, const Digest& subject, const push::PushOptions& base,
                           std::shared_ptr<registry::Client> from_shared) {
    auto referrers = from.list_referrers(from_repo, subject);
    if (!referrers)
        return std::unexpected(referrers.error());
    int copied = 0;
    for (const auto& r : *referrers) {
        auto source = registry::open_registry_source(from_shared, from_repo, r.digest.str());
        if (!source)
            return std::unexpected(source.error());
        auto plan = push::plan_push(**source, {}, false);
        if (!plan)
            return std::unexpected(plan.error());
        push::PushOptions options = base;
        options.locks = nullptr;  // referrers are written by digest: no tag to lock
        auto report = push::execute_push(*plan, **source, to, to_repo, options);
        if (!report)
            return std::unexpected(report.error().with_context("copying referrer " + r.digest.str()));
        ++copied;
    }
    if (!referrers->empty())
        TW_TRY(to.publish_referrers(to_repo, subject, *referrers));
    return copied;
}

int run_promote(const PromoteArgs& args) {
    auto cfg = config::load_config();
    if (!cfg)
        return report_error(cfg.error());
    auto ref = Reference::parse(args.reference);
    if (!ref)
        return report_error(ref.error());
    if (ref->tag.empty() || ref->digest)
        return report_error(Error(ErrorKind::invalid_input, "promote takes REGISTRY/REPO:VERSION, e.g. "
                                                            "tagwarden promote r.example.com/app:1.4.2 --from dev --to prod"));
    if (args.from_env == args.to_env)
        return report_error(Error(ErrorKind::invalid_input, "--from and --to name the same environment"));
    if (args.to_repo_given && args.to_repo.empty())
        return report_error(Error(ErrorKind::invalid_input,
                                  "--to-repo is empty: name a repository (REPO, or REGISTRY/REPO), or leave the option "
                                  "out to promote within " + ref->registry + "/" + ref->repository));
    if (args.referrers && !args.to_repo_given)
        return report_error(Error(ErrorKind::invalid_input,
                                  "--referrers copies signatures and SBOMs to another repository: add --to-repo REPO "
                                  "(within one repository they are already there)"));
    for (const auto& platform : args.platforms)
        if (auto valid = push::parse_platform_filter(platform); !valid)
            return report_error(valid.error());
    if (auto valid = validate_lock_args(args.lock); !valid)
        return report_error(valid.error());
    auto settings = guard_settings(args.guard, *cfg);
    if (!settings)
        return report_error(settings.error());
    push::TagNaming naming{cfg->tag_template, cfg->environments, cfg->protected_environments};
    auto from_tag = push::expand_tag(naming, ref->tag, args.from_env);
    if (!from_tag)
        return report_error(from_tag.error());
    auto to_tag = push::expand_tag(naming, ref->tag, args.to_env);
    if (!to_tag)
        return report_error(to_tag.error());

    // Destination: the same repository, another repository of the same registry, or another registry.
    Reference dest = *ref;
    dest.tag.clear();
    if (!args.to_repo.empty()) {
        auto as_full = Reference::parse(args.to_repo);
        bool has_registry = as_full && args.to_repo.find('/') != std::string::npos &&
                            (args.to_repo.substr(0, args.to_repo.find('/')).find_first_of(".:") != std::string::npos ||
                             args.to_repo.starts_with("localhost/"));
        if (has_registry) {
            dest = *as_full;
        } else {
            if (!is_valid_repository(args.to_repo))
                return report_error(Error(ErrorKind::invalid_input, "--to-repo '" + args.to_repo +
                                                                        "' is not a repository path or REGISTRY/REPO"));
            dest.repository = args.to_repo;
        }
        if (!dest.tag.empty() || dest.digest)
            return report_error(Error(ErrorKind::invalid_input, "--to-repo names a repository, without tag or digest"));
    }
    bool same_registry = dest.registry == ref->registry;
    bool same_repo = same_registry && dest.repository == ref->repository;

    AwsContext aws;
    auto dest_client = connect(dest, args.connection, true, aws);
    if (!dest_client)
        return report_error(dest_client.error());
    std::shared_ptr<registry::Client> dest_shared = std::move(*dest_client);
    auto connected_source = connect_source(*ref, dest, dest_shared, args.connection, aws);
    if (!connected_source)
        return report_error(connected_source.error());
    std::shared_ptr<registry::Client> source_client = *connected_source;

    auto source = registry::open_registry_source(source_client, ref->repository, *from_tag);
    if (!source)
        return report_error(source.error().with_context("promote source"));
    auto root = (*source)->root();
    if (!root)
        return report_error(root.error());
    auto original_digest = root->digest;
    std::unique_ptr<image::ImageSource> selected;
    image::ImageSource* effective = source->get();
    if (!args.platforms.empty()) {
        auto chosen = push::select_platforms(**source, *root, args.platforms);
        if (!chosen)
            return report_error(chosen.error());
        log::warn("--platform: promoting " + std::string(chosen->is_index() ? "a new index of the selected platforms"
                                                                            : "the selected platform's manifest") +
                  "; the digest changes from " + original_digest.str() + " to " + chosen->digest.str());
        selected = push::with_root(**source, *chosen);
        effective = selected.get();
    }
    auto plan = push::plan_push(*effective, {*to_tag}, !same_repo);
    if (!plan)
        return report_error(plan.error());

    auto services = aws.services(dest.registry);
    if (!services)
        return report_error(services.error());
    auto locks = open_locks(args.lock, *cfg);
    if (!locks)
        return report_error(locks.error());

    // Every guard of a push, with the tags the image will carry after the promotion.
    auto write = guarded_write_request(dest, args.connection, *locks, *cfg, *settings, args.guard.confirm_with_preview,
                                       args.dry_run);
    write.options.blobs_present = same_repo;
    if (same_registry && !same_repo)
        write.options.mount_from = ref->repository;
    auto result = push::guarded_write(write, *plan, *effective, *dest_shared, *services, *cfg);
    if (!result)
        return report_error(result.error());
    const auto* report = &result->push;
    const auto& options = write.options;
    const auto* guards = &result->guards;

    int referrers_copied = 0;
    if (args.referrers && !same_repo && !args.dry_run) {
        if (plan->root.digest != original_digest) {
            log::warn("--referrers: the promoted digest differs from the source (--platform), so its referrers "
                      "do not apply; none copied");
        } else {
            auto copied = copy_referrers(*source_client, ref->repository, *dest_shared, dest.repository,
                                         original_digest, options, source_client);
            if (!copied)
                return report_error(copied.error());
            referrers_copied = *copied;
            log::info("copied " + std::to_string(referrers_copied) + " referrer(s)");
        }
    }

    auto from_shown = ref->registry + "/" + ref->repository + ":" + *from_tag;
    auto j = push::to_json(*report);
    j["promotedFrom"] = from_shown;
    j["sourceDigest"] = original_digest.str();
    j["digestChanged"] = plan->root.digest != original_digest;
    j["referrersCopied"] = referrers_copied;
    j["guards"] = guard::to_json(*guards);
    complete_report(j);
    if (args.output == "json") {
        std::cout << j.dump(2) << std::endl;
    } else if (args.dry_run) {
        std::cout << "dry run: would promote " << from_shown << " to " << report->repository << ":" << *to_tag << " ("
                  << report->digest.str() << ")" << std::endl;
    } else {
        std::cout << report->repository << "@" << report->digest.str() << std::endl;
    }
    return 0;
}

} // namespace

CommandRun setup_promote_command(CLI::App& app, const GlobalOptions&) {
    auto args = std::make_shared<PromoteArgs>();
    auto* cmd = app.add_subcommand("promote", "Promote VERSION-FROM to VERSION-TO without pulling a layer (same digest)");
    cmd->add_option("reference", args->reference, "REGISTRY/REPO:VERSION")->required();
    cmd->add_option("--from", args->from_env, "Environment promoted from (e.g. dev)")->required();
    cmd->add_option("--to", args->to_env, "Environment promoted to (e.g. prod)")->required();
    cmd->add_option("--to-repo", args->to_repo,
                    "Another repository: REPO in the same registry (blobs mounted), or REGISTRY/REPO (blobs streamed)")
        ->each([args](const std::string&) { args->to_repo_given = true; });
    cmd->add_option("--platform", args->platforms,
                    "Promote only these platforms of an index (os/arch[/variant], repeatable); the digest changes");
    cmd->add_flag("--referrers", args->referrers, "Also copy signatures, SBOMs and attestations (with --to-repo)");
    cmd->add_flag("--dry-run", args->dry_run, "Check and print the plan; write nothing");
    cmd->add_option("--output,-o", args->output,
                    "Result format on stdout: text or json; github: text, and the step outputs and summary of a "
                    "GitHub Actions step ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY)")
        ->check(CLI::IsMember({"text", "json", "github"}));
    add_lock_options(cmd, args->lock);
    add_guard_options(cmd, args->guard);
    add_connection_options(cmd, args->connection);
    return [args] { return run_reported("promote", args->output, [&] { return run_promote(*args); }); };
}

} // namespace tagwarden::cli
