#include "sigv4_test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tagwarden::test {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

constexpr int k_timeout_ms = 10'000;

// Milliseconds left until `deadline`, at least 0.
int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count()));
}

} // namespace

std::string read_text_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path.string());
    std::ostringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

RawRequest parse_raw_request(std::string_view text) {
    RawRequest request;
    auto next_line = [&text]() -> std::optional<std::string_view> {
        if (text.empty())
            return std::nullopt;
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        return line;
    };
    auto request_line = next_line().value_or("");
    auto first_space = request_line.find(' ');
    auto version = request_line.rfind(" HTTP/");
    request.method = std::string(request_line.substr(0, first_space));
    if (first_space != std::string_view::npos && version != std::string_view::npos && version > first_space)
        request.target = std::string(request_line.substr(first_space + 1, version - first_space - 1));
    while (auto line = next_line()) {
        if (line->empty())
            break;
        if ((line->front() == ' ' || line->front() == '\t') && !request.headers.empty()) {
            request.headers.back().second += '\n';
            request.headers.back().second += *line;
            continue;
        }
        auto colon = line->find(':');
        request.headers.emplace_back(std::string(line->substr(0, colon)),
                                     colon == std::string_view::npos ? std::string{}
                                                                     : std::string(line->substr(colon + 1)));
    }
    request.body = std::string(text);
    return request;
}

std::optional<std::string> header_value(const aws::HeaderList& headers, std::string_view name) {
    for (const auto& [n, v] : headers)
        if (lower(n) == lower(name))
            return std::string(trim(v));
    return std::nullopt;
}

OneShotHttpServer::OneShotHttpServer() {
    m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m_listen_fd < 0)
        throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(m_listen_fd, 1) != 0) {
        ::close(m_listen_fd);
        throw std::runtime_error(std::string("bind/listen on 127.0.0.1: ") + std::strerror(errno));
    }
    socklen_t len = sizeof addr;
    ::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { serve(); });
}

OneShotHttpServer::~OneShotHttpServer() {
    if (m_thread.joinable())
        m_thread.join();
    if (m_listen_fd >= 0)
        ::close(m_listen_fd);
}

std::string OneShotHttpServer::base_url() const {
    return "http://127.0.0.1:" + std::to_string(m_port);
}

Result<std::string> OneShotHttpServer::received() {
    if (m_thread.joinable())
        m_thread.join();
    if (!m_error.empty())
        return fail(ErrorKind::internal, "loopback server: " + m_error);
    return m_received;
}

void OneShotHttpServer::serve() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(k_timeout_ms);
    pollfd listen_poll{m_listen_fd, POLLIN, 0};
    if (::poll(&listen_poll, 1, k_timeout_ms) <= 0) {
        m_error = "no connection within 10 s";
        return;
    }
    int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
        m_error = std::string("accept: ") + std::strerror(errno);
        return;
    }
    std::string data;
    std::size_t want = std::string::npos; // total bytes once the head is known
    char buf[4096];
    while (want == std::string::npos || data.size() < want) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
            m_error = "timed out reading the request";
            break;
        }
        auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            m_error = "connection closed before the request was complete";
            break;
        }
        data.append(buf, static_cast<std::size_t>(n));
        if (want == std::string::npos) {
            auto head_end = data.find("\r\n\r\n");
            if (head_end == std::string::npos)
                continue;
            auto head = parse_raw_request(std::string_view(data).substr(0, head_end + 2));
            auto length = header_value(head.headers, "Content-Length");
            want = head_end + 4 + (length ? std::stoul(*length) : 0);
        }
    }
    if (m_error.empty()) {
        static constexpr std::string_view k_response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        if (::send(fd, k_response.data(), k_response.size(), MSG_NOSIGNAL) < 0)
            m_error = std::string("send: ") + std::strerror(errno);
    }
    m_received = std::move(data);
    ::close(fd);
}

CommandOutput run_command(const std::string& command) {
    CommandOutput result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) {
        result.output = std::string("popen: ") + std::strerror(errno);
        return result;
    }
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
        result.output.append(buf, n);
    int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

std::string shell_quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += '\'';
    return out;
}

} // namespace tagwarden::test
