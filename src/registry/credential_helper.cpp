#include <tagwarden/core/log.hpp>
#include <tagwarden/registry/auth.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace tagwarden::registry {

namespace {

struct Pipe {
    int fd[2] = {-1, -1};
    ~Pipe() {
        for (int f : fd)
            if (f >= 0)
                ::close(f);
    }
    void close_end(int i) {
        if (fd[i] >= 0)
            ::close(fd[i]);
        fd[i] = -1;
    }
};

} // namespace

Result<std::optional<Credential>> run_credential_helper(const std::string& helper, const std::string& server) {
    std::string program = "docker-credential-" + helper;
    Pipe in, out;
    if (::pipe(in.fd) != 0 || ::pipe(out.fd) != 0)
        return fail(ErrorKind::internal, std::string("pipe: ") + std::strerror(errno));

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
    posix_spawn_file_actions_addclose(&actions, in.fd[1]);
    posix_spawn_file_actions_addclose(&actions, out.fd[0]);
    std::string get = "get";
    char* argv[] = {program.data(), get.data(), nullptr};
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        return fail(ErrorKind::auth, "credential helper " + program + " cannot be run (" + std::strerror(rc) +
                                         "): install it on PATH or remove it from the docker config");
    in.close_end(0);
    out.close_end(1);

    std::string input = server + "\n";
    (void)!::write(in.fd[1], input.data(), input.size());
    in.close_end(1);

    std::string output;
    char buffer[4096];
    while (true) {
        ssize_t n = ::read(out.fd[0], buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        output.append(buffer, static_cast<std::size_t>(n));
        if (output.size() > 1024 * 1024)
            break;
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        // The protocol's "not found" answer is a failing exit with this text on stdout.
        if (output.find("credentials not found") != std::string::npos)
            return std::optional<Credential>{};
        return fail(ErrorKind::auth, "credential helper " + program + " failed for " + server +
                                         " (exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                                         ")");
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
