#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/strings.hpp>
#include <tagwarden/core/subprocess.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace tagwarden {

namespace {

struct Fd {
    int fd = -1;
    Fd() = default;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0)
            ::close(fd);
        fd = -1;
    }
};

// Blocks SIGPIPE in the calling thread for its lifetime; a SIGPIPE raised meanwhile by a write to a closed
// pipe is consumed before the old mask is restored, so it is never delivered.
class SigpipeBlock {
  public:
    SigpipeBlock() {
        sigset_t pending;
        sigemptyset(&pending);
        ::sigpending(&pending);
        m_was_pending = sigismember(&pending, SIGPIPE) == 1;
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGPIPE);
        ::pthread_sigmask(SIG_BLOCK, &block, &m_old);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;
    ~SigpipeBlock() {
        if (m_broken && !m_was_pending) {
            sigset_t only;
            sigemptyset(&only);
            sigaddset(&only, SIGPIPE);
            timespec zero{0, 0};
            while (::sigtimedwait(&only, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
    }
    void note_broken_pipe() { m_broken = true; }

  private:
    sigset_t m_old{};
    bool m_was_pending = false;
    bool m_broken = false;
};

Result<std::chrono::milliseconds> parse_timeout(const std::string& text, const char* what) {
    auto bad = [&] {
        return fail(ErrorKind::invalid_input, std::string(what) + " '" + text +
                                                  "' is not a timeout: use a positive duration such as 10s, 500ms or 2m");
    };
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    if (digits == 0 || digits > 9)
        return bad();
    long long value = std::stoll(text.substr(0, digits));
    auto unit = text.substr(digits);
    long long factor = unit.empty() || unit == "s" ? 1000 : unit == "ms" ? 1 : unit == "m" ? 60000 : 0;
    if (factor == 0 || value == 0)
        return bad();
    return std::chrono::milliseconds(value * factor);
}

} // namespace

Result<std::chrono::milliseconds> credential_program_timeout() {
    auto text = env_or_empty("TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT");
    if (text.empty())
        return std::chrono::milliseconds(30000);
    return parse_timeout(text, "TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT");
}

std::string describe_timeout(std::chrono::milliseconds timeout) {
    if (timeout.count() % 1000 == 0)
        return std::to_string(timeout.count() / 1000) + " s";
    return std::to_string(timeout.count()) + " ms";
}

Result<SubprocessResult> run_subprocess(const SubprocessRequest& request) {
    if (request.argv.empty() || request.argv[0].empty())
        return fail(ErrorKind::invalid_input, "no program to run");
    Fd in_read, in_write, out_read, out_write;
    {
        int in[2], out[2];
        if (::pipe2(in, O_CLOEXEC) != 0)
            return fail(ErrorKind::internal, std::string("pipe: ") + std::strerror(errno));
        in_read.fd = in[0];
        in_write.fd = in[1];
        if (::pipe2(out, O_CLOEXEC) != 0)
            return fail(ErrorKind::internal, std::string("pipe: ") + std::strerror(errno));
        out_read.fd = out[0];
        out_write.fd = out[1];
    }

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // dup2 onto 0 and 1 clears O_CLOEXEC there; every other pipe end closes on exec.
    posix_spawn_file_actions_adddup2(&actions, in_read.fd, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_write.fd, STDOUT_FILENO);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    // Its own process group (killed as a whole on timeout), default signal dispositions, nothing blocked.
    sigset_t defaults, empty;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigemptyset(&empty);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setsigmask(&attributes, &empty);
    posix_spawnattr_setflags(&attributes, static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                             POSIX_SPAWN_SETSIGMASK));
    std::vector<char*> argv;
    for (const auto& arg : request.argv)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (rc != 0)
        return fail(ErrorKind::auth, request.argv[0] + " cannot be run (" + std::strerror(rc) + ")");
    in_read.reset();
    out_write.reset();

    SubprocessResult result;
    const auto deadline = std::chrono::steady_clock::now() + request.timeout;
    std::size_t written = 0;
    if (request.input.empty())
        in_write.reset();
    else
        ::fcntl(in_write.fd, F_SETFL, ::fcntl(in_write.fd, F_GETFL) | O_NONBLOCK);
    bool killed = false;
    // Past the deadline, or the run is cancelled: the program is killed, and the outcome says why.
    auto must_stop = [&]() {
        if (std::chrono::steady_clock::now() >= deadline)
            result.outcome = SubprocessResult::Outcome::timed_out;
        else if (cancel::should_stop())
            result.outcome = SubprocessResult::Outcome::cancelled;
        else
            return false;
        return true;
    };
    {
        SigpipeBlock no_sigpipe;
        char buffer[4096];
        while (out_read.fd >= 0) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (must_stop()) {
                killed = true;
                break;
            }
            pollfd fds[2] = {{out_read.fd, POLLIN, 0}, {in_write.fd, POLLOUT, 0}};
            int count = in_write.fd >= 0 ? 2 : 1;
            auto slice = std::min<long long>(left.count(), 100);
            int ready = ::poll(fds, static_cast<nfds_t>(count), static_cast<int>(slice));
            if (ready < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            if (count == 2 && fds[1].revents != 0) {
                ssize_t n = ::write(in_write.fd, request.input.data() + written, request.input.size() - written);
                if (n > 0)
                    written += static_cast<std::size_t>(n);
                if (n < 0 && errno == EPIPE)
                    no_sigpipe.note_broken_pipe();
                if ((n < 0 && errno != EINTR && errno != EAGAIN) || written == request.input.size())
                    in_write.reset();
            }
            if (fds[0].revents != 0) {
                ssize_t n = ::read(out_read.fd, buffer, sizeof buffer);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                    continue;
                if (n <= 0) {
                    out_read.reset();
                    break;
                }
                result.output.append(buffer, static_cast<std::size_t>(n));
                if (result.output.size() > request.max_output) {
                    result.outcome = SubprocessResult::Outcome::too_much_output;
                    killed = true;
                    break;
                }
            }
        }
        in_write.reset();
    }
    out_read.reset();
    int status = 0;
    // A program that closed its stdout may still run: it gets what is left of the deadline to exit.
    while (!killed) {
        pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid)
            break;
        if (done < 0 && errno != EINTR)
            break;
        if (must_stop()) {
            killed = true;
            break;
        }
        ::usleep(5000);
    }
    if (killed) {
        ::kill(-pid, SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        return result;
    }
    if (WIFSIGNALED(status)) {
        result.outcome = SubprocessResult::Outcome::signaled;
        result.signal = WTERMSIG(status);
    } else {
        result.exit_status = WEXITSTATUS(status);
    }
    return result;
}

Result<std::vector<std::string>> split_command_line(std::string_view command) {
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    std::size_t i = 0;
    while (i < command.size()) {
        char c = command[i];
        if (is_space(c)) {
            if (in_word)
                words.push_back(std::move(word));
            word.clear();
            in_word = false;
            ++i;
        } else if (c == '\'') {
            auto end = command.find('\'', i + 1);
            if (end == std::string_view::npos)
                return fail(ErrorKind::invalid_input, "no closing quotation (') in the command line");
            word.append(command.substr(i + 1, end - i - 1));
            in_word = true;
            i = end + 1;
        } else if (c == '"') {
            ++i;
            bool closed = false;
            while (i < command.size()) {
                char d = command[i];
                if (d == '"') {
                    closed = true;
                    ++i;
                    break;
                }
                if (d == '\\') {
                    if (i + 1 >= command.size())
                        return fail(ErrorKind::invalid_input, "a backslash ends the command line inside \"...\"");
                    char next = command[i + 1];
                    if (next != '"' && next != '\\')
                        word += '\\';
                    word += next;
                    i += 2;
                    continue;
                }
                word += d;
                ++i;
            }
            if (!closed)
                return fail(ErrorKind::invalid_input, "no closing quotation (\") in the command line");
            in_word = true;
        } else if (c == '\\') {
            if (i + 1 >= command.size())
                return fail(ErrorKind::invalid_input, "the command line ends with a backslash that escapes nothing");
            word += command[i + 1];
            in_word = true;
            i += 2;
        } else {
            word += c;
            in_word = true;
            ++i;
        }
    }
    if (in_word)
        words.push_back(std::move(word));
    return words;
}

} // namespace tagwarden
