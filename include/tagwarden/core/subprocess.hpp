#pragma once

#include <tagwarden/core/error.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden {

// A program run for a credential (docker-credential-X, AWS credential_process): no shell in between.
struct SubprocessRequest {
    // argv[0] is the program: searched on PATH when it contains no '/'.
    std::vector<std::string> argv;
    // Written to the program's stdin, which is then closed. A program that exits without reading it is fine.
    std::string input;
    // After this the program's whole process group is killed with SIGKILL.
    std::chrono::milliseconds timeout{30000};
    // More stdout than this is refused (the program is killed).
    std::size_t max_output = 1024 * 1024;
};

struct SubprocessResult {
    enum class Outcome { exited, signaled, timed_out, too_much_output, cancelled };
    Outcome outcome = Outcome::exited;
    int exit_status = 0;  // when exited
    int signal = 0;       // when signaled
    std::string output;   // stdout; stderr is inherited
};

// Runs `request.argv` in its own process group with stdin and stdout on O_CLOEXEC pipes (no other
// descriptor of this process leaks into it) and stderr inherited. SIGPIPE from a program that does not
// read its input never reaches this process. A cancelled run (cancel::should_stop()) kills the program
// group within about 100 ms. Fails (ErrorKind::auth) only when the program cannot be started; every
// other outcome is in the result.
Result<SubprocessResult> run_subprocess(const SubprocessRequest& request);

// How long a credential helper or credential_process may run: TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT
// ("10s", "500ms", "2m", or bare seconds; more than zero), default 30 s. An invalid value is
// ErrorKind::invalid_input naming the variable.
Result<std::chrono::milliseconds> credential_program_timeout();

// "30 s" or "1500 ms", for messages.
std::string describe_timeout(std::chrono::milliseconds timeout);

// Splits a command line into words as Python's shlex.split (POSIX mode, no comments) does, which is how
// botocore runs credential_process: whitespace separates words; '...' is literal; in "..." a backslash
// escapes only '"' and '\' (before any other character it stays); outside quotes a backslash makes the
// next character literal. An unterminated quote or a trailing backslash is ErrorKind::invalid_input.
Result<std::vector<std::string>> split_command_line(std::string_view command);

} // namespace tagwarden
