#include <tagwarden/aws/credential_chain.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tagwarden::aws {

namespace {

constexpr std::size_t k_max_output = 1024 * 1024;

} // namespace

Result<std::string> run_credential_process(const std::string& command, std::chrono::seconds timeout) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return fail(ErrorKind::internal, std::string("credential_process: pipe: ") + std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        return fail(ErrorKind::internal, std::string("credential_process: fork: ") + std::strerror(err));
    }
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            ::dup2(devnull, STDIN_FILENO);
        ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(fds[1]);
    std::string output;
    bool timed_out = false;
    bool too_big = false;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd pfd{fds[0], POLLIN, 0};
        int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (ready == 0) {
            timed_out = true;
            break;
        }
        ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        output.append(buffer, static_cast<std::size_t>(n));
        if (output.size() > k_max_output) {
            too_big = true;
            break;
        }
    }
    ::close(fds[0]);
    if (timed_out || too_big)
        ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out)
        return fail(ErrorKind::auth, "credential_process did not finish within " +
                                         std::to_string(timeout.count()) + " s and was killed");
    if (too_big)
        return fail(ErrorKind::auth, "credential_process wrote more than 1 MiB");
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        return fail(ErrorKind::auth,
                    "credential_process exited with status " + std::to_string(WEXITSTATUS(status)));
    if (WIFSIGNALED(status))
        return fail(ErrorKind::auth,
                    "credential_process was killed by signal " + std::to_string(WTERMSIG(status)));
    return output;
}

} // namespace tagwarden::aws
