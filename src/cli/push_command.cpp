#include "commands.hpp"
#include "connection.hpp"
#include "github_output.hpp"
#include "guards.hpp"

#include <tagwarden/config/config.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/lock/lock.hpp>
#include <tagwarden/push/guarded_write.hpp>
#include <tagwarden/push/push.hpp>
#include <tagwarden/registry/registry_source.hpp>
#include <tagwarden/source/source.hpp>

#include <nlohmann/json.hpp>

#include <iostream>
#include <map>

namespace tagwarden::cli {

namespace {

struct PushArgs {
    std::vector<std::string> positionals;  // SOURCE TARGET, or [REGISTRY/REPO] with --resume
    std::vector<std::string> tags;
    std::string version;
    std::string env;
    bool allow_overwrite = false;
    bool resume = false;
    std::string abandon;  // with --resume: drop this run's journal without finishing or undoing it
    std::string output = "text";
    bool dry_run = false;
    std::string source_tag;
    std::string compress = "gzip";
    int compress_level = 0;
    LockArgs lock;
    GuardArgs guard;
    ConnectionOptions connection;
};

// Drops one journal on purpose: a run that can be neither finished nor undone (a registry that refuses
// DELETE) would otherwise fail every later --resume. What it may have left is logged.
int run_abandon(const PushArgs& args, OpenLocks& locks) {
    auto record = locks.journals->get(args.abandon);
    if (!record)
        return report_error(record.error());
    if (!*record)
        return report_error(Error(ErrorKind::invalid_input, "no run " + args.abandon + " in " + locks.journals->describe() +
                                                                ": `tagwarden lock list` shows the runs left behind"));
    auto journal = push::parse_journal((*record)->document);
    std::string tags;
    if (journal)
        for (const auto& t : journal->tags)
            if (t.written)
                tags += (tags.empty() ? "" : ", ") + t.tag;
    auto where = journal ? journal->name() + "@" + journal->digest.str() : std::string("(unreadable journal)");
    if (!args.dry_run)
        if (auto r = locks.journals->remove(args.abandon); !r)
            return report_error(r.error());
    log::warn("abandoned run " + args.abandon + " on " + where + (args.dry_run ? " (dry run: kept)" : "") +
              (tags.empty() ? ": it had written no tag" : ": tags it may have written stay as they are: " + tags));
    if (args.output == "json") {
        nlohmann::json j = {{"abandoned", {{"runId", args.abandon}, {"image", where}, {"tagsLeft", tags}}}};
        std::cout << j.dump(2) << std::endl;
    } else {
        std::cout << "abandoned " << args.abandon << " " << where << std::endl;
    }
    return 0;
}

int run_resume(const PushArgs& args, const config::Config& cfg) {
    if (args.positionals.size() > 1)
        return report_error(Error(ErrorKind::invalid_input, "push --resume takes at most one REGISTRY/REPO"));
    std::optional<Reference> filter;
    if (!args.positionals.empty()) {
        auto r = Reference::parse(args.positionals[0]);
        if (!r)
            return report_error(r.error());
        filter = *r;
    }
    auto locks = open_locks(args.lock, cfg);
    if (!locks)
        return report_error(locks.error());
    if (!args.abandon.empty())
        return run_abandon(args, *locks);
    auto records = locks->journals->list();
    if (!records)
        return report_error(records.error());
    AwsContext aws;
    std::map<std::string, std::shared_ptr<registry::Client>> clients;
    nlohmann::json results = nlohmann::json::array();
    int handled = 0;
    for (const auto& record : *records) {
        auto journal = push::parse_journal(record.document);
        if (!journal)
            return report_error(journal.error().with_context("journal of run " + record.run_id + " in " +
                                                             locks->journals->describe()));
        if (filter && (lock::normalize_registry(journal->registry) != lock::normalize_registry(filter->registry) ||
                       journal->repository != filter->repository))
            continue;
        auto& client = clients[journal->registry];
        if (!client) {
            Reference ref;
            ref.registry = journal->registry;
            ref.repository = journal->repository;
            auto c = connect(ref, args.connection, true, aws);
            if (!c)
                return report_error(c.error());
            client = std::move(*c);
        }
        push::ResumeOptions options;
        options.locks = args.dry_run ? nullptr : locks->set.get();
        options.backend = locks->backend.get();
        options.journals = locks->journals.get();
        options.lock_timeout = locks->timeout;
        options.write_timeout = write_timeout(*locks);
        options.jobs = args.connection.jobs;
        options.dry_run = args.dry_run;
        auto report = push::resume_run(*journal, *client, options);
        (void)locks->set->release();
        if (!report)
            return report_error(report.error().with_context("resuming run " + journal->run_id));
        log::info("run " + report->run_id + " on " + report->repository + ": " + std::string(push::to_string(report->outcome)) +
                  (report->reason.empty() ? "" : " (" + report->reason + ")"));
        ++handled;
        if (args.output == "json")
            results.push_back(push::to_json(*report));
        else
            std::cout << report->repository << "@" << report->digest.str() << " " << push::to_string(report->outcome)
                      << std::endl;
    }
    if (args.output == "json")
        std::cout << nlohmann::json{{"resumed", results}}.dump(2) << std::endl;
    if (handled == 0)
        log::info("no interrupted run to resume in " + locks->journals->describe());
    return 0;
}

int run_push(const PushArgs& args) {
    auto cfg = config::load_config();
    if (!cfg)
        return report_error(cfg.error());
    if (!args.abandon.empty() && !args.resume)
        return report_error(Error(ErrorKind::invalid_input, "--abandon RUN_ID goes with --resume: tagwarden push --resume --abandon RUN_ID"));
    if (auto valid = validate_lock_args(args.lock); !valid)
        return report_error(valid.error());
    auto settings = guard_settings(args.guard, *cfg);
    if (!settings)
        return report_error(settings.error());
    if (args.resume)
        return run_resume(args, *cfg);
    // Checked before any source is read, whatever it is (a registry source ignores both).
    auto compression = source::parse_compression(args.compress);
    if (!compression)
        return report_error(compression.error());
    if (auto level = source::check_compression_level(*compression, args.compress_level); !level)
        return report_error(level.error());
    if (args.positionals.size() != 2)
        return report_error(Error(ErrorKind::invalid_input, "push needs SOURCE and TARGET: tagwarden push oci:DIR REGISTRY/REPO --tag T"));
    const auto& source_spec = args.positionals[0];
    const auto& target_spec = args.positionals[1];

    auto target = Reference::parse(target_spec);
    if (!target)
        return report_error(target.error());
    if (target->digest)
        return report_error(Error(ErrorKind::invalid_input, "push target '" + target_spec +
                                                                "' names a digest; push to REGISTRY/REPO[:TAG] and "
                                                                "tagwarden prints the digest"));
    push::TagNaming naming{cfg->tag_template, cfg->environments, cfg->protected_environments};
    std::vector<std::string> tags;
    if (!args.version.empty() || !args.env.empty()) {
        if (args.version.empty() || args.env.empty())
            return report_error(Error(ErrorKind::invalid_input, "--version and --env go together (e.g. --version 1.4.2 --env dev)"));
        auto tag = push::expand_tag(naming, args.version, args.env);
        if (!tag)
            return report_error(tag.error());
        tags.push_back(*tag);
    }
    if (!target->tag.empty())
        tags.push_back(target->tag);
    tags.insert(tags.end(), args.tags.begin(), args.tags.end());

    // Local sources are checked before any connection; a docker:// source needs its registry.
    AwsContext aws;
    std::unique_ptr<image::ImageSource> source;
    std::shared_ptr<registry::Client> client;
    std::string mount_from;
    bool blobs_present = false;
    if (source_spec.starts_with("docker://")) {
        if (!args.source_tag.empty())
            return report_error(Error(ErrorKind::invalid_input, "--source-tag chooses an image in an archive; for docker:// "
                                                                "name the tag in SOURCE (docker://REGISTRY/REPO:TAG)"));
        auto from = Reference::parse(source_spec.substr(9));
        if (!from)
            return report_error(from.error().with_context("source"));
        if (from->tag.empty() && !from->digest)
            return report_error(Error(ErrorKind::invalid_input, "source '" + source_spec + "' needs a tag or digest"));
        auto c = connect(*target, args.connection, true, aws);
        if (!c)
            return report_error(c.error());
        client = std::move(*c);
        auto source_client = connect_source(*from, *target, client, args.connection, aws);
        if (!source_client)
            return report_error(source_client.error());
        if (from->registry == target->registry) {
            if (from->repository != target->repository)
                mount_from = from->repository;
            else
                blobs_present = true;
        }
        auto opened = registry::open_registry_source(*source_client, from->repository, from->manifest_ref());
        if (!opened)
            return report_error(opened.error());
        source = std::move(*opened);
    } else {
        source::SourceOptions source_options;
        source_options.source_tag = args.source_tag;
        source_options.compression = *compression;
        source_options.compression_level = args.compress_level;
        source_options.jobs = args.connection.jobs;
        auto opened = source::open_source(source_spec, source_options);
        if (!opened)
            return report_error(opened.error());
        source = std::move(*opened);
    }
    auto plan = push::plan_push(*source, tags, !blobs_present);
    if (!plan)
        return report_error(plan.error());
    if (plan->tags.empty())
        log::warn("no tag given: the image is pushed by digest only (add --tag T or --version V --env E)");

    if (!client) {
        auto c = connect(*target, args.connection, true, aws);
        if (!c)
            return report_error(c.error());
        client = std::move(*c);
    }
    auto services = aws.services(target->registry);
    if (!services)
        return report_error(services.error());
    auto locks = open_locks(args.lock, *cfg);
    if (!locks)
        return report_error(locks.error());

    auto write = guarded_write_request(*target, args.connection, *locks, *cfg, *settings,
                                       args.guard.confirm_with_preview, args.dry_run);
    write.options.allow_overwrite = args.allow_overwrite;
    write.options.mount_from = mount_from;
    write.options.blobs_present = blobs_present;
    auto result = push::guarded_write(write, *plan, *source, *client, *services, *cfg);
    if (!result)
        return report_error(result.error());
    const auto& report = result->push;

    auto j = push::to_json(report);
    j["guards"] = guard::to_json(result->guards);
    auto summary = source::summarize_source(*source, source_spec);
    j["source"] = {{"transport", summary.transport}, {"compression", summary.compression}};
    if (summary.compression_level)
        j["source"]["compressionLevel"] = summary.compression_level;
    complete_report(j);
    if (args.output == "json") {
        std::cout << j.dump(2) << std::endl;
    } else if (args.dry_run) {
        std::cout << "dry run: would push " << report.repository << "@" << report.digest.str() << " ("
                  << report.blobs.uploaded << " blobs to upload, " << report.blobs.existing << " already present)"
                  << std::endl;
    } else {
        std::cout << report.repository << "@" << report.digest.str() << std::endl;
    }
    return 0;
}

} // namespace

CommandRun setup_push_command(CLI::App& app, const GlobalOptions&) {
    auto args = std::make_shared<PushArgs>();
    auto* cmd = app.add_subcommand("push", "Push an image to a registry under immutable tags, then verify it");
    cmd->add_option("source target", args->positionals,
                    "SOURCE and TARGET (REGISTRY/REPOSITORY[:TAG]); with --resume: [REGISTRY/REPO]. SOURCE is one of: "
                    "oci:DIR[:REF] (OCI image layout), oci-archive:FILE[:REF] (its tar, plain or gzip), "
                    "docker-archive:FILE or docker-archive:- (docker save, from a file or standard input), "
                    "docker://REGISTRY/REPO:TAG (another registry)")
        ->expected(0, 2);
    cmd->add_option("--tag,-t", args->tags, "Tag to write (repeatable); all tags are written or none");
    cmd->add_option("--version", args->version, "Release version; with --env writes the tag '{version}-{env}'");
    cmd->add_option("--env", args->env, "Environment of the release (dev, prod, ...)");
    cmd->add_flag("--allow-overwrite", args->allow_overwrite,
                  "Let a tag that points at another digest move (never for protected environments); the old digest "
                  "is reported");
    cmd->add_flag("--resume", args->resume, "Finish or undo runs that were killed half-way (from their journals)");
    cmd->add_option("--abandon", args->abandon,
                    "With --resume: drop the journal of run RUN_ID (from `lock list`) without finishing or undoing "
                    "it, e.g. when the registry refuses the DELETE an undo needs; its tags stay as they are");
    cmd->add_option("--output,-o", args->output,
                    "Result format on stdout: text or json; github: text, and the step outputs and summary of a "
                    "GitHub Actions step ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY)")
        ->check(CLI::IsMember({"text", "json", "github"}));
    cmd->add_flag("--dry-run", args->dry_run,
                  "Check tags and blobs and print the plan; write nothing (with --resume: say what would be done)");
    cmd->add_option("--source-tag", args->source_tag,
                    "NAME:TAG of the image to push from an archive that holds several (docker save a:1 b:2); "
                    "for oci-archive: the index.json ref name");
    cmd->add_option("--compress", args->compress,
                    "How uncompressed archive layers (docker save) are compressed for the push: gzip (default; a "
                    "Docker manifest, as docker push writes), zstd or none (OCI manifests); compressed layers are "
                    "pushed as they are")
        ->check(CLI::IsMember({"gzip", "zstd", "none"}));
    cmd->add_option("--compress-level", args->compress_level,
                    "Level for --compress: gzip 1 (fastest) to 9 (smallest), default 6; zstd 1 to 19, default 3. "
                    "The same archive at the same level always gives the same layer digests");
    add_lock_options(cmd, args->lock);
    add_guard_options(cmd, args->guard);
    add_connection_options(cmd, args->connection);
    return [args] { return run_reported("push", args->output, [&] { return run_push(*args); }); };
}

} // namespace tagwarden::cli
