#include "commands.hpp"
#include "connection.hpp"

#include <tagwarden/core/log.hpp>
#include <tagwarden/push/push.hpp>
#include <tagwarden/source/source.hpp>

#include <nlohmann/json.hpp>

#include <iostream>

namespace tagwarden::cli {

namespace {

struct PushArgs {
    std::string source;
    std::string target;
    std::vector<std::string> tags;
    std::string output = "text";
    bool dry_run = false;
    ConnectionOptions connection;
};

int run_push(const PushArgs& args) {
    auto target = Reference::parse(args.target);
    if (!target)
        return report_error(target.error());
    if (target->digest)
        return report_error(Error(ErrorKind::invalid_input, "push target '" + args.target +
                                                                "' names a digest; push to REGISTRY/REPO[:TAG] and "
                                                                "tagwarden prints the digest"));
    std::vector<std::string> tags;
    if (!target->tag.empty())
        tags.push_back(target->tag);
    tags.insert(tags.end(), args.tags.begin(), args.tags.end());

    auto source = source::open_source(args.source);
    if (!source)
        return report_error(source.error());
    auto plan = push::plan_push(**source, tags);
    if (!plan)
        return report_error(plan.error());
    if (plan->tags.empty())
        log::warn("no tag given: the image is pushed by digest only (add --tag T)");

    auto client = connect(*target, args.connection, true);
    if (!client)
        return report_error(client.error());
    push::PushOptions options;
    options.jobs = args.connection.jobs;
    options.dry_run = args.dry_run;
    auto report = push::execute_push(*plan, **source, **client, target->repository, options);
    if (!report)
        return report_error(report.error());

    if (args.output == "json") {
        std::cout << push::to_json(*report).dump(2) << std::endl;
    } else if (args.dry_run) {
        std::cout << "dry run: would push " << report->repository << "@" << report->digest.str() << " ("
                  << report->blobs.uploaded << " blobs to upload, " << report->blobs.existing << " already present)"
                  << std::endl;
    } else {
        std::cout << report->repository << "@" << report->digest.str() << std::endl;
    }
    return 0;
}

} // namespace

CommandRun setup_push_command(CLI::App& app, const GlobalOptions&) {
    auto args = std::make_shared<PushArgs>();
    auto* cmd = app.add_subcommand("push", "Push an image to a registry, then verify it");
    cmd->add_option("source", args->source, "Image source: oci:DIR[:REF] (an OCI image layout)")->required();
    cmd->add_option("target", args->target, "Destination REGISTRY/REPOSITORY[:TAG]")->required();
    cmd->add_option("--tag,-t", args->tags, "Tag to write (repeatable); all tags are checked before any upload");
    cmd->add_option("--output,-o", args->output, "Result format on stdout: text or json")
        ->check(CLI::IsMember({"text", "json"}));
    cmd->add_flag("--dry-run", args->dry_run, "Check tags and blobs and print the plan; write nothing");
    add_connection_options(cmd, args->connection);
    return [args] { return run_push(*args); };
}

} // namespace tagwarden::cli
