#include "commands.hpp"
#include "connection.hpp"
#include "github_output.hpp"

#include <tagwarden/core/log.hpp>
#include <tagwarden/push/push.hpp>

#include <nlohmann/json.hpp>

#include <iostream>

namespace tagwarden::cli {

namespace {

struct VerifyArgs {
    std::string reference;
    std::string output = "text";
    ConnectionOptions connection;
};

int run_verify(const VerifyArgs& args) {
    auto ref = Reference::parse(args.reference);
    if (!ref)
        return report_error(ref.error());
    if (ref->tag.empty() && !ref->digest)
        return report_error(Error(ErrorKind::invalid_input, "verify needs a tag or digest: REGISTRY/REPO:TAG or "
                                                            "REGISTRY/REPO@sha256:..."));
    AwsContext aws;
    auto client = connect(*ref, args.connection, false, aws);
    if (!client)
        return report_error(client.error());
    // With both a tag and a digest, the tag must resolve to that digest.
    auto reference = ref->tag.empty() ? ref->digest->str() : ref->tag;
    auto report = push::verify_image(**client, ref->repository, reference, ref->digest, args.connection.jobs);
    if (!report)
        return report_error(report.error());
    log::info("verified " + args.reference + ": " + std::to_string(report->manifests_checked) + " manifest(s), " +
              std::to_string(report->blobs_checked) + " blob(s), " + std::to_string(report->bytes_checked) +
              " bytes present");
    auto j = push::to_json(*report);
    complete_report(j);
    if (args.output == "json")
        std::cout << j.dump(2) << std::endl;
    else
        std::cout << report->repository << "@" << report->digest.str() << std::endl;
    return 0;
}

} // namespace

CommandRun setup_verify_command(CLI::App& app, const GlobalOptions&) {
    auto args = std::make_shared<VerifyArgs>();
    auto* cmd = app.add_subcommand("verify", "Check that a tag resolves and every manifest and blob it needs exists");
    cmd->add_option("reference", args->reference, "REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST")->required();
    cmd->add_option("--output,-o", args->output,
                    "Result format on stdout: text or json; github: text, and the step outputs and summary of a "
                    "GitHub Actions step ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY)")
        ->check(CLI::IsMember({"text", "json", "github"}));
    add_connection_options(cmd, args->connection);
    return [args] { return run_reported("verify", args->output, [&] { return run_verify(*args); }); };
}

} // namespace tagwarden::cli
