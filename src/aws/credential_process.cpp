#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/subprocess.hpp>

namespace tagwarden::aws {

Result<std::string> run_credential_process(const std::string& command,
                                           std::optional<std::chrono::milliseconds> timeout) {
    auto argv = split_command_line(command);
    if (!argv)
        return fail(ErrorKind::invalid_input,
                    "credential_process cannot be split into words (" + argv.error().message +
                        "): quote it as botocore reads it, e.g. credential_process = \"/opt/my tools/get-creds\" --role ci");
    if (argv->empty())
        return fail(ErrorKind::invalid_input, "credential_process is empty: name the program to run");
    if (!timeout) {
        auto configured = credential_program_timeout();
        if (!configured)
            return std::unexpected(configured.error());
        timeout = *configured;
    }
    SubprocessRequest request;
    request.argv = std::move(*argv);
    request.timeout = *timeout;
    const std::string program = request.argv[0];
    auto run = run_subprocess(request);
    if (!run)
        return fail(ErrorKind::auth, "credential_process " + run.error().message +
                                         ": install the program or fix its path (it is run without a shell)");
    using Outcome = SubprocessResult::Outcome;
    switch (run->outcome) {
    case Outcome::timed_out:
        return fail(ErrorKind::auth, "credential_process " + program + " did not finish within " +
                                         describe_timeout(*timeout) +
                                         " and was killed: fix the program, or raise "
                                         "TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT (e.g. 60s)");
    case Outcome::cancelled:
        return std::unexpected(cancel::cancelled_error("credential_process " + program));
    case Outcome::too_much_output:
        return fail(ErrorKind::auth, "credential_process " + program + " wrote more than 1 MiB");
    case Outcome::signaled:
        return fail(ErrorKind::auth, "credential_process " + program + " was killed by signal " +
                                         std::to_string(run->signal));
    case Outcome::exited:
        break;
    }
    if (run->exit_status != 0)
        return fail(ErrorKind::auth, "credential_process " + program + " exited with status " +
                                         std::to_string(run->exit_status));
    return std::move(run->output);
}

} // namespace tagwarden::aws
