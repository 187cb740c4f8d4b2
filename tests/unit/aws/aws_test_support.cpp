#include "aws_test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace tagwarden::test {

namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Reads one request (head and a Content-Length body) within 5 s. Empty on failure.
std::string read_request(int fd) {
    std::string data;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::size_t need = std::string::npos;
    char buffer[8192];
    while (true) {
        auto head_end = data.find("\r\n\r\n");
        if (head_end != std::string::npos && need == std::string::npos) {
            need = head_end + 4;
            std::string head = data.substr(0, head_end);
            for (auto& c : head)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            auto cl = head.find("\r\ncontent-length:");
            if (cl != std::string::npos)
                need += std::stoul(head.substr(cl + 17));
        }
        if (need != std::string::npos && data.size() >= need)
            return data;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return {};
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            return {};
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0)
            return need != std::string::npos ? data : std::string();
        data.append(buffer, static_cast<std::size_t>(n));
    }
}

} // namespace

Result<http::Response> FakeTransport::send(const http::Request& request) {
    SentRequest sent;
    sent.method = request.method;
    sent.url = request.url;
    sent.headers = request.headers;
    sent.retryable = request.retryable;
    if (request.body) {
        request.body->rewind();
        char buffer[4096];
        while (true) {
            auto n = request.body->read(buffer, sizeof buffer);
            if (!n || *n == 0)
                break;
            sent.body.append(buffer, *n);
        }
    }
    {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(sent);
    }
    return m_handler(sent);
}

std::vector<SentRequest> FakeTransport::requests() {
    std::lock_guard lock(m_mutex);
    return m_requests;
}

http::Response response(int status, std::string body,
                        std::vector<std::pair<std::string, std::string>> headers) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    for (auto& [n, v] : headers)
        r.headers.add(n, v);
    return r;
}

LocalHttpServer::LocalHttpServer(Handler handler) : m_handler(std::move(handler)) {
    m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m_listen_fd < 0)
        throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(m_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(m_listen_fd, 16) != 0)
        throw std::runtime_error("bind/listen failed");
    socklen_t len = sizeof addr;
    ::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { serve(); });
}

LocalHttpServer::~LocalHttpServer() {
    m_stop = true;
    if (m_thread.joinable())
        m_thread.join();
    ::close(m_listen_fd);
}

std::string LocalHttpServer::base_url() const {
    return "http://127.0.0.1:" + std::to_string(m_port);
}

std::vector<RawRequest> LocalHttpServer::requests() {
    std::lock_guard lock(m_mutex);
    return m_requests;
}

void LocalHttpServer::serve() {
    while (!m_stop) {
        pollfd p{m_listen_fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        std::string raw = read_request(fd);
        if (!raw.empty()) {
            RawRequest request = parse_raw_request(raw);
            {
                std::lock_guard lock(m_mutex);
                m_requests.push_back(request);
            }
            Reply reply = m_handler(request);
            std::string out = "HTTP/1.1 " + std::to_string(reply.status) +
                              " X\r\nContent-Length: " + std::to_string(reply.body.size()) +
                              "\r\nConnection: close\r\n";
            for (const auto& [n, v] : reply.headers)
                out += n + ": " + v + "\r\n";
            out += "\r\n" + reply.body;
            send_all(fd, out);
        }
        ::close(fd);
    }
}

std::string find_python_with(const std::string& module, std::string& tried) {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("TAGWARDEN_PYTHON"); env != nullptr && *env != '\0')
        candidates.emplace_back(env);
    candidates.emplace_back("python3");
    // The machine image's pyenv Python carries moto; CI's PATH may not name its shims.
    if (const char* root = std::getenv("PYENV_ROOT"); root != nullptr && *root != '\0')
        candidates.push_back(std::string(root) + "/shims/python3");
    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
        candidates.push_back(std::string(home) + "/.pyenv/shims/python3");
    candidates.emplace_back("/usr/bin/python3");
    for (const auto& python : candidates) {
        if (python.find('/') != std::string::npos && ::access(python.c_str(), X_OK) != 0)
            continue;
        tried += (tried.empty() ? "" : ", ") + python;
        auto probe = run_command(shell_quote(python) + " -c " +
                                 shell_quote("import sys, " + module + "; print(sys.executable)"));
        if (probe.exit_code == 0)
            return probe.output.substr(0, probe.output.find('\n'));
    }
    return {};
}

namespace {

// moto's WSGI app (what moto_server serves) bound to 127.0.0.1:0, so the kernel picks the port and no other
// process can take it between a pick and the bind; the port is printed on stdout. The server exits when its
// parent (the test) is gone, even if the test crashed.
constexpr const char* k_moto_launcher = R"(
import os, sys, threading, time
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True)
def orphaned(parent=os.getppid()):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=orphaned, daemon=True).start()
sys.stdout.write(f"{server.port}\n")
sys.stdout.flush()
server.serve_forever()
)";

} // namespace

MotoServer::MotoServer() {
    std::string tried;
    m_python = find_python_with("moto.server", tried);
    if (m_python.empty()) {
        m_error = "no python3 with moto (tried " + tried +
                  "); moto 5 with its server extra is part of the machine image (pip: moto[server])";
        return;
    }
    m_log = fs::temp_directory_path() /
            ("tagwarden-moto-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".log");
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        m_error = "pipe failed";
        return;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        m_error = "fork failed";
        return;
    }
    if (pid == 0) {
        ::setpgid(0, 0);
        ::dup2(out[1], STDOUT_FILENO);
        int log = ::open(m_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (log >= 0)
            ::dup2(log, STDERR_FILENO);
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            ::dup2(devnull, STDIN_FILENO);
        ::unsetenv("MOTO_PORT");
        ::execl(m_python.c_str(), m_python.c_str(), "-c", k_moto_launcher, static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(out[1]);
    m_pid = pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::string line;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0)
            continue;
        char buffer[64];
        ssize_t n = ::read(out[0], buffer, sizeof buffer);
        if (n <= 0)
            break;
        line.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    try {
        m_port = std::stoi(line);
    } catch (const std::exception&) {
        m_port = 0;
    }
    if (m_port <= 0) {
        m_error = "moto did not start with " + m_python + ": " + read_all(m_log);
        return;
    }
    // Listening already (bound before the port was printed); wait until it answers a connection.
    while (std::chrono::steady_clock::now() < deadline) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(m_port));
        bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        if (up)
            return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    m_error =
        "moto did not accept connections on 127.0.0.1:" + std::to_string(m_port) + ": " + read_all(m_log);
}

MotoServer::~MotoServer() {
    if (m_pid > 0) {
        ::kill(-m_pid, SIGTERM);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        int status = 0;
        while (::waitpid(m_pid, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(-m_pid, SIGKILL);
                ::waitpid(m_pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    if (!m_log.empty()) {
        std::error_code ec;
        fs::remove(m_log, ec);
    }
}

std::string MotoServer::log() const {
    return m_log.empty() ? std::string() : read_all(m_log);
}

CommandOutput run_python(const std::string& python, const std::string& script,
                         const std::map<std::string, std::string>& env) {
    auto file = fs::temp_directory_path() /
                ("tagwarden-py-" + std::to_string(::getpid()) + "-" +
                 std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".py");
    {
        std::ofstream out(file, std::ios::binary);
        out << script;
    }
    std::string command = "env";
    for (const auto& [k, v] : env)
        command += " " + shell_quote(k + "=" + v);
    command += " " + shell_quote(python) + " " + shell_quote(file.string());
    auto result = run_command(command);
    std::error_code ec;
    fs::remove(file, ec);
    return result;
}

StderrCapture::StderrCapture() {
    std::fflush(stderr);
    m_path = fs::temp_directory_path() /
             ("tagwarden-stderr-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    int fd = ::open(m_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    m_saved = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
}

StderrCapture::~StderrCapture() {
    text();
    std::error_code ec;
    fs::remove(m_path, ec);
}

std::string StderrCapture::text() {
    if (!m_done) {
        std::fflush(stderr);
        ::dup2(m_saved, STDERR_FILENO);
        ::close(m_saved);
        m_text = read_all(m_path);
        m_done = true;
    }
    return m_text;
}

TempDir::TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tagwarden-aws-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
        throw std::runtime_error("mkdtemp failed");
    m_path = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(m_path, ec);
}

fs::path TempDir::write(const std::string& name, const std::string& content, bool executable) const {
    auto path = m_path / name;
    {
        std::ofstream out(path, std::ios::binary);
        out << content;
    }
    if (executable)
        fs::permissions(path, fs::perms::owner_all, fs::perm_options::replace);
    return path;
}

} // namespace tagwarden::test
