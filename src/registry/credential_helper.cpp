#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/subprocess.hpp>
#include <tagwarden/registry/auth.hpp>

#include <nlohmann/json.hpp>


namespace tagwarden::registry {

Result<std::optional<Credential>> run_credential_helper(const std::string& helper, const std::string& server) {
    std::string program = "docker-credential-" + helper;
    auto timeout = credential_program_timeout();
    if (!timeout)
        return std::unexpected(timeout.error());
    SubprocessRequest request;
    request.argv = {program, "get"};
    request.input = server + "\n";
    request.timeout = *timeout;
    auto run = run_subprocess(request);
    if (!run)
        return fail(ErrorKind::auth, "credential helper " + run.error().message +
                                         ": install it on PATH or remove it from the docker config");
    const std::string& output = run->output;
    using Outcome = SubprocessResult::Outcome;
    if (run->outcome == Outcome::timed_out)
        return fail(ErrorKind::auth, "credential helper " + program + " did not answer for " + server + " within " +
                                         describe_timeout(*timeout) +
                                         " and was killed: unlock its keychain or fix the helper (run `" + program +
                                         " get` by hand), or raise TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT (e.g. 60s)");
    if (run->outcome == Outcome::cancelled)
        return std::unexpected(cancel::cancelled_error("credential helper " + program));
    if (run->outcome == Outcome::too_much_output)
        return fail(ErrorKind::auth, "credential helper " + program + " wrote more than 1 MiB for " + server);
    if (run->outcome == Outcome::signaled)
        return fail(ErrorKind::auth, "credential helper " + program + " was killed by signal " +
                                         std::to_string(run->signal) + " while answering for " + server);
    if (run->exit_status != 0) {
        // The protocol's "not found" answer is a failing exit with this text on stdout.
        if (output.find("credentials not found") != std::string::npos)
            return std::optional<Credential>{};
        return fail(ErrorKind::auth, "credential helper " + program + " failed for " + server + " (exit status " +
                                         std::to_string(run->exit_status) + ")");
    }
    try {
        auto doc = nlohmann::json::parse(output);
        Credential c;
        c.source = program;
        std::string user = doc.value("Username", "");
        std::string secret = doc.value("Secret", "");
        log::add_secret(secret);
        if (user == "<token>") {
            c.identity_token = secret;
        } else {
            c.username = user;
            c.password = secret;
        }
        if (secret.empty())
            return std::optional<Credential>{};
        return std::optional<Credential>(c);
    } catch (const nlohmann::json::exception&) {
        return fail(ErrorKind::auth, "credential helper " + program + " printed something that is not its JSON answer");
    }
}

} // namespace tagwarden::registry
