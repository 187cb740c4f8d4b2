#pragma once

// Helpers for the AWS tests: a scripted in-memory transport, a loopback HTTP server driven by a handler
// (container credentials and IMDS stand-ins), moto_server started on a free loopback port, and stderr
// capture.

#include "sigv4_test_support.hpp"

#include <tagwarden/aws/aws_client.hpp>
#include <tagwarden/aws/config.hpp>
#include <tagwarden/aws/credential_chain.hpp>
#include <tagwarden/http/transport.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tagwarden::test {

// One request as a transport saw it, with the body read out.
struct SentRequest {
    std::string method;
    std::string url;
    http::Headers headers;
    std::string body;
    bool retryable = true;
};

// A transport that answers from a handler and records every request. Thread-safe.
class FakeTransport final : public http::Transport {
  public:
    using Handler = std::function<Result<http::Response>(const SentRequest&)>;
    explicit FakeTransport(Handler handler) : m_handler(std::move(handler)) {}
    Result<http::Response> send(const http::Request& request) override;
    std::vector<SentRequest> requests();

  private:
    Handler m_handler;
    std::mutex m_mutex;
    std::vector<SentRequest> m_requests;
};

http::Response response(int status, std::string body,
                        std::vector<std::pair<std::string, std::string>> headers = {});

// An HTTP/1.1 server on 127.0.0.1 (kernel-chosen port): one request per connection, answered by `handler`
// (status, body, extra headers), then closed. Stops on destruction.
class LocalHttpServer {
  public:
    struct Reply {
        int status = 200;
        std::string body;
        std::vector<std::pair<std::string, std::string>> headers;
    };
    using Handler = std::function<Reply(const RawRequest&)>;

    explicit LocalHttpServer(Handler handler);
    ~LocalHttpServer();
    LocalHttpServer(const LocalHttpServer&) = delete;
    LocalHttpServer& operator=(const LocalHttpServer&) = delete;

    [[nodiscard]] int port() const { return m_port; }
    [[nodiscard]] std::string base_url() const;
    std::vector<RawRequest> requests();

  private:
    void serve();

    Handler m_handler;
    int m_listen_fd = -1;
    int m_port = 0;
    std::atomic<bool> m_stop{false};
    std::mutex m_mutex;
    std::vector<RawRequest> m_requests;
    std::thread m_thread;
};

// The python3 to run moto and botocore with: the first of TAGWARDEN_PYTHON, python3 (PATH), the pyenv shims
// ($PYENV_ROOT, ~/.pyenv) and /usr/bin/python3 that can import `module`. Empty when none can.
std::string find_python_with(const std::string& module, std::string& tried);

// moto's server app on 127.0.0.1 port 0 (the kernel's choice, reported by the child), waited for, killed
// (its process group) on destruction; it also exits by itself if the test process dies.
class MotoServer {
  public:
    MotoServer();
    ~MotoServer();
    MotoServer(const MotoServer&) = delete;
    MotoServer& operator=(const MotoServer&) = delete;

    // Empty when the server is up; otherwise why not.
    [[nodiscard]] const std::string& error() const { return m_error; }
    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }
    [[nodiscard]] const std::string& python() const { return m_python; }
    [[nodiscard]] std::string log() const;

  private:
    int m_port = 0;
    int m_pid = -1;
    std::string m_python;
    std::string m_error;
    std::filesystem::path m_log;
};

// Runs `python -c SCRIPT` with the environment additions; returns exit code and output.
CommandOutput run_python(const std::string& python, const std::string& script,
                         const std::map<std::string, std::string>& env = {});

// Captures what is written to stderr (fd 2) between construction and text().
class StderrCapture {
  public:
    StderrCapture();
    ~StderrCapture();
    std::string text();

  private:
    int m_saved = -1;
    std::filesystem::path m_path;
    bool m_done = false;
    std::string m_text;
};

// A temporary directory removed on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }
    std::filesystem::path write(const std::string& name, const std::string& content,
                                bool executable = false) const;

  private:
    std::filesystem::path m_path;
};

// An ECR control-plane client (us-east-1, static test credentials, 1 ms retry backoff) over `transport`.
inline std::shared_ptr<aws::AwsJsonClient> ecr_api_with(std::shared_ptr<http::Transport> transport) {
    aws::AwsClientConfig config;
    config.region = "us-east-1";
    config.endpoint = "http://127.0.0.1:9";
    config.credentials = std::make_shared<aws::StaticCredentialSource>(aws::Credentials{"AKIAECR", "ecrTestSecret01", ""});
    config.transport = std::move(transport);
    config.retry.base_delay = std::chrono::milliseconds(1);
    return std::make_shared<aws::AwsJsonClient>(aws::k_ecr, std::move(config));
}

} // namespace tagwarden::test
