#include <tagwarden/source/engine_api.hpp>

#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/reference.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

namespace tagwarden::source {

namespace {

// sockaddr_un.sun_path holds 108 bytes, the terminating NUL included.
constexpr std::size_t k_max_socket_path = sizeof(sockaddr_un{}.sun_path) - 1;
// The export's bounded buffer: the transfer waits while this much is unread.
constexpr std::size_t k_buffer_capacity = 1024 * 1024;
// The last bytes of an export are held back until the stream ends: Docker reports a failure that happens
// after the answer started by appending a JSON error line to the tar stream (moby's image save handler,
// streamformatter.FormatError), and it must be seen before the archive reader parses it as tar.
constexpr std::size_t k_tail_hold = 16 * 1024;
constexpr auto k_poll = std::chrono::milliseconds(200);

bool is_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string host_hint(const EngineEndpoint& endpoint) {
    return endpoint.host_from_env ? "DOCKER_HOST=" + endpoint.host
                                  : "DOCKER_HOST is not set, so the default socket is used";
}

// The errno of a plain connect() to the socket: tells a missing socket, a dead daemon and a socket
// the user may not open apart (libcurl reports them all as "couldn't connect").
int probe_socket(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), std::min(path.size(), k_max_socket_path));
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    int error = rc == 0 ? 0 : errno;
    ::close(fd);
    return error;
}

// The "message" of an Engine API error body ({"message": "..."}), else the body itself, shortened.
std::string daemon_message(const http::Response& response) {
    auto parsed = nlohmann::json::parse(response.body, nullptr, false);
    if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string())
        return parsed["message"].get<std::string>();
    std::string body = response.body.substr(0, 300);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r'))
        body.pop_back();
    return body.empty() ? "no message" : body;
}

// A JSON error line that Docker appended to an export it could not finish, or nullopt.
std::optional<std::string> appended_error(std::string_view tail) {
    auto at = tail.rfind("{\"errorDetail\"");
    if (at == std::string_view::npos)
        at = tail.rfind("{\"error\"");
    if (at == std::string_view::npos)
        return std::nullopt;
    auto rest = tail.substr(at);
    // The line ends the stream: a tar's own end is zero blocks, and nlohmann's parser would stop at a NUL.
    if (rest.find('\0') != std::string_view::npos)
        return std::nullopt;
    auto parsed = nlohmann::json::parse(rest, nullptr, false);
    if (!parsed.is_object())
        return std::nullopt;
    if (parsed.contains("errorDetail") && parsed["errorDetail"].is_object() &&
        parsed["errorDetail"].contains("message") && parsed["errorDetail"]["message"].is_string())
        return parsed["errorDetail"]["message"].get<std::string>();
    if (parsed.contains("error") && parsed["error"].is_string())
        return parsed["error"].get<std::string>();
    return std::nullopt;
}

// The export's transfer thread and the reader share this.
struct ExportState {
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<std::string> chunks;
    std::size_t front_offset = 0;  // bytes of chunks.front() already read
    std::size_t buffered = 0;      // unread bytes in chunks
    bool started = false;          // the first body byte arrived
    bool finished = false;         // send() returned
    bool closed = false;           // the reader went away: abort the transfer
    std::optional<Error> error;    // why the export failed (set with finished)
};

class ExportReader final : public image::BlobReader {
public:
    ExportReader(std::shared_ptr<ExportState> state, std::thread worker, std::string what)
        : m_state(std::move(state)), m_worker(std::move(worker)), m_what(std::move(what)) {}

    ~ExportReader() override {
        {
            std::lock_guard lock(m_state->mutex);
            m_state->closed = true;
        }
        m_state->changed.notify_all();
        if (m_worker.joinable())
            m_worker.join();
    }
    ExportReader(const ExportReader&) = delete;
    ExportReader& operator=(const ExportReader&) = delete;

    Result<std::size_t> read(char* buffer, std::size_t size) override {
        std::unique_lock lock(m_state->mutex);
        auto& s = *m_state;
        for (;;) {
            if (s.finished && !m_tail_checked) {
                m_tail_checked = true;
                if (!s.error)
                    check_tail(s);
            }
            if (s.finished && s.error)
                return fail(*s.error);
            std::size_t releasable = s.finished ? s.buffered : (s.buffered > k_tail_hold ? s.buffered - k_tail_hold : 0);
            if (releasable > 0 && size > 0) {
                std::size_t n = 0;
                std::size_t want = std::min(size, releasable);
                while (n < want) {
                    auto& front = s.chunks.front();
                    std::size_t take = std::min(want - n, front.size() - s.front_offset);
                    std::memcpy(buffer + n, front.data() + s.front_offset, take);
                    n += take;
                    s.front_offset += take;
                    if (s.front_offset == front.size()) {
                        s.chunks.pop_front();
                        s.front_offset = 0;
                    }
                }
                s.buffered -= n;
                lock.unlock();
                s.changed.notify_all();
                return n;
            }
            if (s.finished || size == 0)
                return 0;
            if (cancel::should_stop())
                return std::unexpected(cancel::cancelled_error(m_what));
            s.changed.wait_for(lock, k_poll);
        }
    }

private:
    void check_tail(ExportState& s) {
        std::string tail;
        tail.reserve(std::min(s.buffered, k_tail_hold));
        std::size_t skip = s.buffered > k_tail_hold ? s.buffered - k_tail_hold : 0;
        std::size_t offset = s.front_offset;
        for (const auto& chunk : s.chunks) {
            std::string_view part(chunk);
            part.remove_prefix(offset);
            offset = 0;
            if (skip >= part.size()) {
                skip -= part.size();
                continue;
            }
            part.remove_prefix(skip);
            skip = 0;
            tail.append(part);
        }
        if (auto message = appended_error(tail))
            s.error = Error(ErrorKind::registry,
                            "the Docker daemon failed in the middle of " + m_what + ": " + *message);
    }

    std::shared_ptr<ExportState> m_state;
    std::thread m_worker;
    std::string m_what;
    bool m_tail_checked = false;
};

} // namespace

std::string EngineEndpoint::describe() const {
    if (!socket_path.empty())
        return "the Docker daemon socket " + socket_path + " (" + host_hint(*this) + ")";
    return "the Docker daemon at " + host + (tls ? " (TLS)" : "");
}

Result<EngineEndpoint> engine_endpoint(const std::function<std::string(const char*)>& getenv) {
    EngineEndpoint endpoint;
    endpoint.host = getenv("DOCKER_HOST");
    endpoint.host_from_env = !endpoint.host.empty();
    if (!endpoint.host_from_env)
        endpoint.host = "unix://" + std::string(k_default_docker_socket);
    std::string_view host = endpoint.host;
    auto bad = [&](const std::string& why) {
        return fail(ErrorKind::invalid_input,
                    "DOCKER_HOST=" + endpoint.host + " " + why +
                        ": set it to unix:///PATH/TO/docker.sock or tcp://HOST:PORT, or unset it for " +
                        std::string(k_default_docker_socket));
    };

    if (host.starts_with("unix://")) {
        endpoint.socket_path = std::string(host.substr(7));
        if (endpoint.socket_path.empty() || endpoint.socket_path.front() != '/')
            return bad("names no absolute socket path");
        if (endpoint.socket_path.size() > k_max_socket_path)
            return bad("names a socket path longer than " + std::to_string(k_max_socket_path) + " bytes");
        endpoint.base_url = "http://docker";
        return endpoint;
    }
    if (host.starts_with("ssh://"))
        return fail(ErrorKind::invalid_input,
                    "DOCKER_HOST=" + endpoint.host +
                        ": ssh:// is not supported; forward the remote socket and point DOCKER_HOST at it, e.g. "
                        "`ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST &` and DOCKER_HOST=unix:///tmp/docker.sock");
    if (!host.starts_with("tcp://"))
        return bad("has a scheme tagwarden cannot use");

    std::string_view address = host.substr(6);
    while (address.ends_with('/'))
        address.remove_suffix(1);
    if (address.empty() || address.find('/') != std::string_view::npos || address.find('@') != std::string_view::npos)
        return bad("is not tcp://HOST[:PORT]");

    std::string verify = getenv("DOCKER_TLS_VERIFY");
    std::string cert_path = getenv("DOCKER_CERT_PATH");
    // As the docker CLI: DOCKER_TLS_VERIFY (or DOCKER_TLS, or a DOCKER_CERT_PATH) means TLS. tagwarden always
    // verifies the daemon's certificate (the docker CLI skips that when only DOCKER_CERT_PATH is set).
    endpoint.tls = !verify.empty() || !getenv("DOCKER_TLS").empty() || !cert_path.empty();
    // The port, when absent, is Docker's: 2376 with TLS, 2375 without.
    bool has_port = address.starts_with('[') ? address.find("]:") != std::string_view::npos
                                             : address.find(':') != std::string_view::npos;
    std::string authority(address);
    if (!has_port)
        authority += endpoint.tls ? ":2376" : ":2375";
    endpoint.base_url = (endpoint.tls ? "https://" : "http://") + authority;
    if (!endpoint.tls)
        return endpoint;

    std::string dir = cert_path;
    if (dir.empty()) {
        std::string home = getenv("HOME");
        dir = (home.empty() ? std::string(".") : home) + "/.docker";
    }
    namespace fs = std::filesystem;
    std::error_code ec;
    auto ca = fs::path(dir) / "ca.pem";
    auto cert = fs::path(dir) / "cert.pem";
    auto key = fs::path(dir) / "key.pem";
    if (fs::is_regular_file(ca, ec))
        endpoint.ca_file = ca.string();
    else if (!verify.empty())
        return fail(ErrorKind::invalid_input,
                    "DOCKER_TLS_VERIFY is set but " + ca.string() +
                        " (the CA that signed the daemon's certificate) does not exist: set DOCKER_CERT_PATH to "
                        "the directory holding ca.pem, cert.pem and key.pem");
    bool has_cert = fs::is_regular_file(cert, ec);
    bool has_key = fs::is_regular_file(key, ec);
    if (has_cert != has_key)
        return fail(ErrorKind::invalid_input, dir + " holds " + (has_cert ? "cert.pem but no key.pem" : "key.pem but no cert.pem") +
                                                  ": the daemon's client certificate needs both");
    if (has_cert) {
        endpoint.cert_file = cert.string();
        endpoint.key_file = key.string();
    }
    return endpoint;
}

Result<EngineEndpoint> engine_endpoint_from_environment() {
    return engine_endpoint([](const char* name) {
        const char* value = std::getenv(name);
        return std::string(value ? value : "");
    });
}

Result<DaemonImageName> parse_daemon_image_name(std::string_view text) {
    if (text.empty())
        return fail(ErrorKind::invalid_input,
                    "docker-daemon: names no image: use docker-daemon:NAME[:TAG], e.g. docker-daemon:app:1");
    if (text.starts_with("sha256:")) {
        auto hex = text.substr(7);
        if (hex.size() != 64 || !is_hex(hex))
            return fail(ErrorKind::invalid_input, "docker-daemon:" + std::string(text) +
                                                      ": an image ID is sha256: and 64 lower-case hex digits (`docker images --no-trunc`)");
        return DaemonImageName{std::string(text), false};
    }
    auto ref = Reference::parse(text);
    if (!ref)
        return fail(ErrorKind::invalid_input, "docker-daemon:" + std::string(text) + ": " + ref.error().message);
    DaemonImageName name{std::string(text), !ref->digest};
    if (ref->tag.empty() && !ref->digest)
        name.name += ":latest";
    return name;
}

namespace {

Error transport_error(const EngineEndpoint& endpoint, const Error& error, std::string_view what) {
    if (error.kind == ErrorKind::cancelled || cancel::requested())
        return error;
    if (!endpoint.socket_path.empty()) {
        const auto& path = endpoint.socket_path;
        int probe = probe_socket(path);
        if (probe == ENOENT || probe == ENOTDIR)
            return Error(ErrorKind::registry,
                         "no Docker daemon: " + path + " does not exist (" + host_hint(endpoint) +
                             "). Start the daemon (e.g. `sudo systemctl start docker`), or set DOCKER_HOST to where "
                             "it listens, e.g. DOCKER_HOST=unix:///run/user/1000/docker.sock");
        if (probe == ECONNREFUSED)
            return Error(ErrorKind::registry,
                         "no Docker daemon listens on " + path + " (" + host_hint(endpoint) +
                             "): the socket is there but nothing accepts connections. Start the daemon, or set "
                             "DOCKER_HOST to the socket it listens on");
        if (probe == EACCES || probe == EPERM)
            return Error(ErrorKind::auth,
                         "permission denied on the Docker daemon socket " + path + " (" + host_hint(endpoint) +
                             "): add this user to the docker group (`sudo usermod -aG docker $USER`, then log in "
                             "again) or run tagwarden as a user with access to the socket");
    }
    std::string detail = error.message;
    // The transport's advice for an untrusted certificate is the registry's (--ca-file); the daemon's CA
    // comes from DOCKER_CERT_PATH, which the advice below names.
    if (auto hint = detail.find(" (the registry's TLS certificate"); hint != std::string::npos)
        detail.erase(hint);
    Error e(ErrorKind::registry, "cannot talk to " + endpoint.describe() + " (" + std::string(what) + "): " + detail);
    if (endpoint.socket_path.empty())
        e.message += endpoint.tls ? "; is the daemon listening there with TLS, and do DOCKER_CERT_PATH's ca.pem, "
                                      "cert.pem and key.pem belong to it?"
                                    : "; is the daemon listening there (dockerd -H tcp://…)?";
    return e;
}

Error answer_error(const EngineEndpoint& endpoint, const http::Response& response, std::string_view what,
                   std::string_view image) {
    auto message = daemon_message(response);
    if (response.status == 404 && !image.empty())
        return Error(ErrorKind::invalid_input,
                     "no such image in the Docker daemon: " + std::string(image) + " (" + endpoint.describe() +
                         " says: " + message + "). `docker images` lists the images it holds; build or pull it "
                         "first, e.g. `docker build -t " + std::string(image) + " .`");
    Error e(ErrorKind::registry, endpoint.describe() + " answered " + std::to_string(response.status) + " to " +
                                     std::string(what) + ": " + message);
    e.http_status = response.status;
    return e;
}

} // namespace

EngineClient::EngineClient(EngineEndpoint endpoint, std::chrono::seconds stall_timeout)
    : m_endpoint(std::move(endpoint)) {
    http::TransportOptions options;
    options.unix_socket = m_endpoint.socket_path;
    options.ca_file = m_endpoint.ca_file;
    options.client_cert = m_endpoint.cert_file;
    options.client_key = m_endpoint.key_file;
    options.connect_timeout = std::chrono::seconds(10);
    options.stall_timeout = stall_timeout;
    m_transport = http::make_curl_transport(std::move(options));
}

Status EngineClient::ping() {
    http::Request request;
    request.url = m_endpoint.base_url + "/_ping";
    request.timeout = std::chrono::seconds(30);
    request.max_body = 64 * 1024;
    auto response = m_transport->send(request);
    if (!response)
        return fail(transport_error(m_endpoint, response.error(), "GET /_ping"));
    if (response->status != 200)
        return fail(answer_error(m_endpoint, *response, "GET /_ping", {}));
    return {};
}

Result<nlohmann::json> EngineClient::inspect_image(std::string_view name) {
    http::Request request;
    std::string what = "GET /images/" + std::string(name) + "/json";
    request.url = m_endpoint.base_url + "/images/" + std::string(name) + "/json";
    request.timeout = std::chrono::seconds(60);
    auto response = m_transport->send(request);
    if (!response)
        return fail(transport_error(m_endpoint, response.error(), what));
    if (response->status != 200)
        return fail(answer_error(m_endpoint, *response, what, name));
    auto parsed = nlohmann::json::parse(response->body, nullptr, false);
    if (!parsed.is_object())
        return fail(ErrorKind::registry, m_endpoint.describe() + " answered " + what + " with something that is not a JSON object");
    return parsed;
}

Result<std::unique_ptr<image::BlobReader>> EngineClient::export_image(std::string_view name) {
    auto state = std::make_shared<ExportState>();
    std::string what = "the export of " + std::string(name) + " (GET /images/" + std::string(name) + "/get)";
    auto request = std::make_shared<http::Request>();
    request->url = m_endpoint.base_url + "/images/" + std::string(name) + "/get";
    request->retryable = false;
    request->max_body = 1024 * 1024;  // an error answer; the archive itself goes to the sink
    request->abort_if = [state] {
        std::lock_guard lock(state->mutex);
        return state->closed;
    };
    request->body_sink = [state](const char* data, std::size_t size) -> Status {
        std::unique_lock lock(state->mutex);
        while (state->buffered >= k_buffer_capacity && !state->closed) {
            if (cancel::should_stop())
                return std::unexpected(cancel::cancelled_error("the Docker daemon export"));
            state->changed.wait_for(lock, k_poll);
        }
        if (state->closed)
            return fail(ErrorKind::internal, "the export's reader was closed");
        state->chunks.emplace_back(data, size);
        state->buffered += size;
        state->started = true;
        lock.unlock();
        state->changed.notify_all();
        return {};
    };

    std::thread worker([transport = m_transport, endpoint = m_endpoint, state, request, image = std::string(name), what] {
        auto response = transport->send(*request);
        std::optional<Error> error;
        if (!response) {
            bool closed = false;
            bool started = false;
            {
                std::lock_guard lock(state->mutex);
                closed = state->closed;
                started = state->started;
            }
            if (closed || response.error().kind == ErrorKind::cancelled || cancel::requested())
                error = response.error();
            else if (!started)
                error = transport_error(endpoint, response.error(), "GET /images/" + image + "/get");
            else
                error = Error(ErrorKind::registry, endpoint.describe() + " ended " + what +
                                                       " before the archive was complete: " + response.error().message);
        } else if (response->status < 200 || response->status >= 300) {
            error = answer_error(endpoint, *response, "GET /images/" + image + "/get", image);
        }
        {
            std::lock_guard lock(state->mutex);
            state->finished = true;
            state->error = std::move(error);
        }
        state->changed.notify_all();
    });
    auto reader = std::make_unique<ExportReader>(state, std::move(worker), what);

    // Wait for the first bytes, so an error answer (an image that vanished, a daemon failure) is
    // returned here rather than from the first read.
    std::unique_lock lock(state->mutex);
    while (!state->started && !state->finished) {
        if (cancel::should_stop()) {
            lock.unlock();
            return std::unexpected(cancel::cancelled_error(what));
        }
        state->changed.wait_for(lock, k_poll);
    }
    if (state->finished && state->error) {
        auto e = *state->error;
        lock.unlock();
        return fail(std::move(e));
    }
    lock.unlock();
    return std::unique_ptr<image::BlobReader>(std::move(reader));
}

} // namespace tagwarden::source
