#pragma once

// Helpers for the SigV4 tests: the test-suite request format, a one-shot loopback HTTP server that
// records what a client sent, and running a helper program.

#include <tagwarden/aws/sigv4.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace tagwarden::test {

std::string read_text_file(const std::filesystem::path& path);

// A request in the test-suite format: "METHOD target HTTP/1.1", "Name:value" lines (a line starting with
// whitespace continues the previous value, the '\n' kept), an optional blank line and a body.
// Also parses what an HTTP client sent (CRLF line ends).
struct RawRequest {
    std::string method;
    std::string target;      // path and query as written (may contain spaces in the suite's get-space)
    aws::HeaderList headers; // values as written after the ':'
    std::string body;
};
RawRequest parse_raw_request(std::string_view text);

// The first value of header `name` (case-insensitive), with surrounding whitespace removed.
std::optional<std::string> header_value(const aws::HeaderList& headers, std::string_view name);

// Accepts one connection on 127.0.0.1 (port chosen by the kernel), reads one request (head and a
// Content-Length body), answers 200 with an empty body and closes. Gives up after 10 s.
class OneShotHttpServer {
  public:
    OneShotHttpServer();
    ~OneShotHttpServer();
    OneShotHttpServer(const OneShotHttpServer&) = delete;
    OneShotHttpServer& operator=(const OneShotHttpServer&) = delete;

    [[nodiscard]] int port() const { return m_port; }
    // "http://127.0.0.1:PORT"
    [[nodiscard]] std::string base_url() const;
    // Waits for the exchange to finish; returns the raw bytes received, or an error description.
    Result<std::string> received();

  private:
    void serve();

    int m_listen_fd = -1;
    int m_port = 0;
    std::thread m_thread;
    std::string m_received;
    std::string m_error;
};

struct CommandOutput {
    int exit_code = -1;
    std::string output; // stdout and stderr
};
// Runs `command` with /bin/sh, capturing stdout and stderr.
CommandOutput run_command(const std::string& command);

// Quotes `s` for /bin/sh.
std::string shell_quote(std::string_view s);

} // namespace tagwarden::test
