#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/subprocess.hpp>
#include <tagwarden/registry/auth.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <csignal>
#include <fcntl.h>
#include <unistd.h>
#include <string>
#include <utility>
#include <vector>

using namespace tagwarden;
namespace fs = std::filesystem;

namespace {

// Generated once with Python 3.11 shlex.split (POSIX mode), as botocore splits credential_process.
const std::vector<std::pair<std::string, std::vector<std::string>>> k_shlex_cases = {
    {"/opt/bin/get-creds --role ci", {"/opt/bin/get-creds", "--role", "ci"}},
    {"  leading   and\ttrailing  ", {"leading", "and", "trailing"}},
    {"'/opt/my tools/get creds' --x", {"/opt/my tools/get creds", "--x"}},
    {"\"/opt/my tools/get creds\" --role \"ci role\"", {"/opt/my tools/get creds", "--role", "ci role"}},
    {"a\\ b c", {"a b", "c"}},
    {"x\"\"y", {"xy"}},
    {"a '' b", {"a", "", "b"}},
    {"\"\"", {""}},
    {"'it'\\''s'", {"it's"}},
    {"\"a\\\"b\"", {"a\"b"}},
    {"\"a\\\\b\"", {"a\\b"}},
    {"\"a\\$b\"", {"a\\$b"}},
    {"\"a\\`b\"", {"a\\`b"}},
    {"\"a\\nb\"", {"a\\nb"}},
    {"a\\$b", {"a$b"}},
    {"a\\\\b", {"a\\b"}},
    {"'a\\b'", {"a\\b"}},
    {"'a\"b'", {"a\"b"}},
    {"\"a'b\"", {"a'b"}},
    {"get; rm -rf /", {"get;", "rm", "-rf", "/"}},
    {"echo $(id) `id` $HOME", {"echo", "$(id)", "`id`", "$HOME"}},
    {"a|b&&c>d", {"a|b&&c>d"}},
    {"#not-a-comment x", {"#not-a-comment", "x"}},
    {"\"mixed\"'quotes'plain", {"mixedquotesplain"}},
    {"a\\\nb", {"a\nb"}},
    {"tab\\\tsep", {"tab\tsep"}},
    {"unicodé ✓", {"unicodé", "✓"}},
    {"", {}},
    {"   ", {}},
};
// shlex.split raises ValueError for each of these.
const std::vector<std::string> k_shlex_errors = {
    "'open",  // No closing quotation
    "\"open",  // No closing quotation
    "trailing\\",  // No escaped character
    "\"esc\\",  // No escaped character
    "ok 'a' \"b",  // No closing quotation
};

class ScratchDir {
  public:
    ScratchDir() {
        std::string pattern = (fs::temp_directory_path() / "tw-subprocess-XXXXXX").string();
        m_path = ::mkdtemp(pattern.data());
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
    const fs::path& path() const { return m_path; }
    // Writes an executable script at `relative` (directories created).
    fs::path script(const std::string& relative, const std::string& body) const {
        auto file = m_path / relative;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << body;
        fs::permissions(file, fs::perms::owner_all);
        return file;
    }

  private:
    fs::path m_path;
};

// Sets an environment variable for one scope, restoring the old value.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const std::string& value) : m_name(name) {
        if (const char* old = std::getenv(name))
            m_old = old;
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (m_old)
            ::setenv(m_name, m_old->c_str(), 1);
        else
            ::unsetenv(m_name);
    }

  private:
    const char* m_name;
    std::optional<std::string> m_old;
};

std::size_t open_descriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

} // namespace

TEST_CASE("split_command_line splits as Python's shlex.split (botocore's credential_process)",
          "[unit][core][subprocess]") {
    for (const auto& [line, expected] : k_shlex_cases) {
        INFO("command line: " << line);
        auto words = split_command_line(line);
        REQUIRE(words);
        CHECK(*words == expected);
    }
    for (const auto& line : k_shlex_errors) {
        INFO("command line: " << line);
        auto words = split_command_line(line);
        REQUIRE_FALSE(words);
        CHECK(words.error().kind == ErrorKind::invalid_input);
    }
}

TEST_CASE("run_subprocess: a program that exits without reading its input does not kill us (SIGPIPE)",
          "[unit][core][subprocess]") {
    SubprocessRequest request;
    request.argv = {"true"};
    request.input = std::string(4 * 1024 * 1024, 'x');  // more than a pipe holds
    request.timeout = std::chrono::seconds(20);
    auto before = open_descriptors();
    auto run = run_subprocess(request);
    REQUIRE(run);
    CHECK(run->outcome == SubprocessResult::Outcome::exited);
    CHECK(run->exit_status == 0);
    CHECK(open_descriptors() == before);
}

TEST_CASE("run_subprocess: only stdin, stdout and stderr reach the program; nothing leaks", "[unit][core][subprocess]") {
    SubprocessRequest request;
    request.argv = {"/bin/sh", "-c", "ls /proc/$$/fd"};
    // What the program may see: 0, 1, 2, and whatever this process itself holds without FD_CLOEXEC.
    std::set<std::string> inheritable = {"0", "1", "2"};
    for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
        auto name = entry.path().filename().string();
        int flags = ::fcntl(std::stoi(name), F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            inheritable.insert(name);
    }
    auto before = open_descriptors();
    auto run = run_subprocess(request);
    REQUIRE(run);
    std::set<std::string> seen;
    std::istringstream lines(run->output);
    for (std::string line; std::getline(lines, line);)
        seen.insert(line);
    CHECK(seen.count("0") == 1);
    CHECK(seen.count("1") == 1);
    CHECK(seen.count("2") == 1);
    for (const auto& fd : seen) {
        INFO("descriptor " << fd << " reached the program");
        CHECK(inheritable.count(fd) == 1);
    }
    CHECK(open_descriptors() == before);
}

TEST_CASE("run_subprocess: on timeout the whole process group is killed, soon", "[unit][core][subprocess]") {
    ScratchDir dir;
    auto pid_file = dir.path() / "grandchild.pid";
    SubprocessRequest request;
    request.argv = {"/bin/sh", "-c", "sleep 60 & echo $! > '" + pid_file.string() + "'; wait"};
    request.timeout = std::chrono::milliseconds(500);
    auto started = std::chrono::steady_clock::now();
    auto run = run_subprocess(request);
    REQUIRE(run);
    CHECK(run->outcome == SubprocessResult::Outcome::timed_out);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
    std::string pid;
    std::ifstream(pid_file) >> pid;
    REQUIRE_FALSE(pid.empty());
    // The grandchild is gone (or a zombie waiting for its reaper) within a moment.
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        std::ifstream stat("/proc/" + pid + "/stat");
        std::string line;
        std::getline(stat, line);
        auto close = line.rfind(')');
        gone = !stat || line.empty() || (close != std::string::npos && line.substr(close + 2, 1) == "Z");
        if (!gone)
            ::usleep(20000);
    }
    CHECK(gone);
}

TEST_CASE("credential_program_timeout reads TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT", "[unit][core][subprocess]") {
    {
        ScopedEnv unset("TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT", "");
        CHECK(credential_program_timeout() == std::chrono::milliseconds(30000));
    }
    for (auto [text, ms] : std::vector<std::pair<std::string, long>>{{"10s", 10000}, {"10", 10000}, {"500ms", 500}, {"2m", 120000}}) {
        ScopedEnv set("TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT", text);
        CHECK(credential_program_timeout() == std::chrono::milliseconds(ms));
    }
    for (const char* bad : {"abc", "0", "0s", "-5s", "10x", "s"}) {
        ScopedEnv set("TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT", bad);
        auto t = credential_program_timeout();
        REQUIRE_FALSE(t);
        CHECK(t.error().kind == ErrorKind::invalid_input);
        CHECK(t.error().message.find("TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT") != std::string::npos);
    }
}

TEST_CASE("docker credential helpers: timeout, a helper that does not read, fd hygiene", "[unit][registry][auth]") {
    ScratchDir dir;
    ScopedEnv path("PATH", dir.path().string() + ":" + std::string(std::getenv("PATH") ? std::getenv("PATH") : ""));
    ScopedEnv timeout("TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT", "1s");

    SECTION("a helper that hangs is killed after the timeout: Error{auth} naming it, the timeout and the fix") {
        dir.script("docker-credential-hang", "#!/bin/sh\nsleep 60\n");
        auto started = std::chrono::steady_clock::now();
        auto r = registry::run_credential_helper("hang", "registry.example.com");
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::auth);
        CHECK(r.error().message.find("docker-credential-hang") != std::string::npos);
        CHECK(r.error().message.find("1 s") != std::string::npos);
        CHECK(r.error().message.find("TAGWARDEN_CREDENTIAL_HELPER_TIMEOUT") != std::string::npos);
    }
    SECTION("a helper that answers without reading stdin works") {
        dir.script("docker-credential-deaf",
                   "#!/bin/sh\nexec 0<&-\necho '{\"ServerURL\":\"x\",\"Username\":\"u\",\"Secret\":\"deafSecret\"}'\n");
        auto before = open_descriptors();
        auto r = registry::run_credential_helper("deaf", "registry.example.com");
        REQUIRE(r);
        REQUIRE(r->has_value());
        CHECK((*r)->username == "u");
        CHECK(open_descriptors() == before);
    }
    SECTION("the server is written on stdin; a helper that does not know it answers not found") {
        dir.script("docker-credential-echo",
                   "#!/bin/sh\nread server\nif [ \"$server\" = registry.example.com ]; then\n"
                   "echo '{\"Username\":\"u\",\"Secret\":\"s\"}'; else echo 'credentials not found'; exit 1; fi\n");
        auto found = registry::run_credential_helper("echo", "registry.example.com");
        REQUIRE(found);
        CHECK(found->has_value());
        auto missing = registry::run_credential_helper("echo", "other.example.com");
        REQUIRE(missing);
        CHECK_FALSE(missing->has_value());
    }
    SECTION("a missing helper is Error{auth} naming it") {
        auto r = registry::run_credential_helper("no-such-helper-xyz", "registry.example.com");
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::auth);
        CHECK(r.error().message.find("docker-credential-no-such-helper-xyz") != std::string::npos);
    }
}

TEST_CASE("credential_process runs without a shell: quoted path with a space, literal ; and $(...)",
          "[unit][aws][chain]") {
    ScratchDir dir;
    auto marker = dir.path() / "ran";
    auto program = dir.script("my tools/print args",
                              "#!/bin/sh\nfor a in \"$@\"; do printf '%s|' \"$a\"; done\n");
    auto command = "\"" + program.string() + "\" --role 'ci role' \\; $(touch " + marker.string() +
                   ") \"a;b\" `id`";
    auto out = aws::run_credential_process(command);
    REQUIRE(out);
    CHECK(*out == "--role|ci role|;|$(touch|" + marker.string() + ")|a;b|`id`|");
    CHECK_FALSE(fs::exists(marker));

    auto unterminated = aws::run_credential_process("\"/opt/get creds --role ci");
    REQUIRE_FALSE(unterminated);
    CHECK(unterminated.error().kind == ErrorKind::invalid_input);
    CHECK(unterminated.error().message.find("quotation") != std::string::npos);

    auto failed = aws::run_credential_process("/bin/sh -c 'exit 3'");
    REQUIRE_FALSE(failed);
    CHECK(failed.error().kind == ErrorKind::auth);
    CHECK(failed.error().message.find("status 3") != std::string::npos);

    auto started = std::chrono::steady_clock::now();
    auto slow = aws::run_credential_process("sleep 30", std::chrono::seconds(1));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
    REQUIRE_FALSE(slow);
    CHECK(slow.error().kind == ErrorKind::auth);
    CHECK(slow.error().message.find("did not finish within 1 s") != std::string::npos);
}

TEST_CASE("run_subprocess: a cancelled run kills the program at once", "[unit][core][subprocess]") {
    cancel::reset_for_tests();
    cancel::request(SIGTERM);
    SubprocessRequest request;
    request.argv = {"sleep", "30"};
    auto started = std::chrono::steady_clock::now();
    auto run = run_subprocess(request);
    cancel::reset_for_tests();
    REQUIRE(run);
    CHECK(run->outcome == SubprocessResult::Outcome::cancelled);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
}
