#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/digest.hpp>
#include <tagwarden/source/engine_api.hpp>

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>

using namespace tagwarden;
namespace fs = std::filesystem;

namespace {

struct CancelReset {
    CancelReset() { cancel::reset_for_tests(); }
    ~CancelReset() { cancel::reset_for_tests(); }
};

fs::path temp_dir(const std::string& prefix) {
    std::random_device rd;
    auto dir = fs::temp_directory_path() / (prefix + std::to_string(rd()));
    fs::create_directories(dir);
    return dir;
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::string hex_size(std::size_t n) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%zx", n);
    return buffer;
}

// Deterministic bytes standing in for an exported archive.
std::string pattern(std::size_t size, unsigned seed) {
    std::string out(size, '\0');
    std::minstd_rand rng(seed);
    for (auto& c : out)
        c = static_cast<char>(rng() & 0xff);
    return out;
}

// A fake Engine API on a unix socket: one thread, one connection at a time; `handler` gets the request
// path and the connected fd and writes whatever answer the test needs.
class FakeEngine {
public:
    using Handler = std::function<void(const std::string& path, int fd)>;

    explicit FakeEngine(Handler handler) : m_handler(std::move(handler)) {
        m_dir = temp_dir("tw-engine-");
        m_path = (m_dir / "docker.sock").string();
        m_listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, m_path.c_str(), sizeof(address.sun_path) - 1);
        REQUIRE(::bind(m_listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
        REQUIRE(::listen(m_listener, 8) == 0);
        m_thread = std::thread([this] { serve(); });
    }
    ~FakeEngine() {
        m_stop = true;
        m_thread.join();
        ::close(m_listener);
        fs::remove_all(m_dir);
    }
    FakeEngine(const FakeEngine&) = delete;
    FakeEngine& operator=(const FakeEngine&) = delete;

    [[nodiscard]] const std::string& path() const { return m_path; }
    [[nodiscard]] bool stopping() const { return m_stop; }
    [[nodiscard]] source::EngineEndpoint endpoint() const {
        auto e = source::engine_endpoint([this](const char* name) {
            return std::string(name) == "DOCKER_HOST" ? "unix://" + m_path : std::string();
        });
        REQUIRE(e);
        return *e;
    }

    static void answer(int fd, int status, const std::string& body, const std::string& type = "application/json") {
        send_all(fd, "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + type +
                         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    }
    static void start_chunked(int fd) {
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    }
    static bool chunk(int fd, std::string_view data) {
        return send_all(fd, hex_size(data.size()) + "\r\n") && send_all(fd, data) && send_all(fd, "\r\n");
    }
    static void end_chunked(int fd) { send_all(fd, "0\r\n\r\n"); }

private:
    void serve() {
        while (!m_stop) {
            pollfd p{m_listener, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0)
                continue;
            int fd = ::accept4(m_listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            std::string request;
            char buffer[4096];
            while (request.find("\r\n\r\n") == std::string::npos) {
                auto n = ::recv(fd, buffer, sizeof(buffer), 0);
                if (n <= 0)
                    break;
                request.append(buffer, static_cast<std::size_t>(n));
            }
            auto first_space = request.find(' ');
            auto second_space = request.find(' ', first_space + 1);
            if (first_space != std::string::npos && second_space != std::string::npos)
                m_handler(request.substr(first_space + 1, second_space - first_space - 1), fd);
            ::close(fd);
        }
    }

    Handler m_handler;
    fs::path m_dir;
    std::string m_path;
    int m_listener = -1;
    std::atomic<bool> m_stop{false};
    std::thread m_thread;
};

std::string read_all(image::BlobReader& reader, std::size_t step, Error* error = nullptr) {
    std::string out;
    std::string buffer(step, '\0');
    for (;;) {
        auto n = reader.read(buffer.data(), buffer.size());
        if (!n) {
            if (error)
                *error = n.error();
            return out;
        }
        if (*n == 0)
            return out;
        out.append(buffer.data(), *n);
    }
}

std::function<std::string(const char*)> env_of(std::map<std::string, std::string> values) {
    return [values = std::move(values)](const char* name) {
        auto it = values.find(name);
        return it == values.end() ? std::string() : it->second;
    };
}

} // namespace

TEST_CASE("docker-daemon: DOCKER_HOST: the default socket, unix://, tcp:// and what is refused", "[unit][source][daemon]") {
    auto def = source::engine_endpoint(env_of({}));
    REQUIRE(def);
    CHECK(def->socket_path == "/var/run/docker.sock");
    CHECK_FALSE(def->host_from_env);
    CHECK_THAT(def->describe(), Catch::Contains("/var/run/docker.sock") && Catch::Contains("DOCKER_HOST is not set"));

    auto unix_host = source::engine_endpoint(env_of({{"DOCKER_HOST", "unix:///run/user/1000/docker.sock"}}));
    REQUIRE(unix_host);
    CHECK(unix_host->socket_path == "/run/user/1000/docker.sock");
    CHECK(unix_host->host_from_env);
    CHECK_THAT(unix_host->describe(), Catch::Contains("DOCKER_HOST=unix:///run/user/1000/docker.sock"));

    auto tcp = source::engine_endpoint(env_of({{"DOCKER_HOST", "tcp://10.0.0.5"}}));
    REQUIRE(tcp);
    CHECK(tcp->base_url == "http://10.0.0.5:2375");
    CHECK(tcp->socket_path.empty());
    CHECK_FALSE(tcp->tls);
    auto tcp_port = source::engine_endpoint(env_of({{"DOCKER_HOST", "tcp://127.0.0.1:12345/"}}));
    REQUIRE(tcp_port);
    CHECK(tcp_port->base_url == "http://127.0.0.1:12345");

    auto certs = temp_dir("tw-docker-certs-");
    for (const char* name : {"ca.pem", "cert.pem", "key.pem"})
        std::ofstream(certs / name) << "pem\n";
    auto tls = source::engine_endpoint(
        env_of({{"DOCKER_HOST", "tcp://docker.example:2376"}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", certs.string()}}));
    REQUIRE(tls);
    CHECK(tls->tls);
    CHECK(tls->base_url == "https://docker.example:2376");
    CHECK(tls->ca_file == (certs / "ca.pem").string());
    CHECK(tls->cert_file == (certs / "cert.pem").string());
    CHECK(tls->key_file == (certs / "key.pem").string());
    auto tls_default_port = source::engine_endpoint(
        env_of({{"DOCKER_HOST", "tcp://docker.example"}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", certs.string()}}));
    REQUIRE(tls_default_port);
    CHECK(tls_default_port->base_url == "https://docker.example:2376");

    fs::remove(certs / "key.pem");
    auto half = source::engine_endpoint(
        env_of({{"DOCKER_HOST", "tcp://docker.example"}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", certs.string()}}));
    REQUIRE_FALSE(half);
    CHECK(half.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(half.error().message, Catch::Contains("cert.pem but no key.pem"));
    fs::remove(certs / "ca.pem");
    auto no_ca = source::engine_endpoint(
        env_of({{"DOCKER_HOST", "tcp://docker.example"}, {"DOCKER_TLS_VERIFY", "1"}, {"DOCKER_CERT_PATH", certs.string()}}));
    REQUIRE_FALSE(no_ca);
    CHECK_THAT(no_ca.error().message, Catch::Contains("ca.pem") && Catch::Contains("DOCKER_CERT_PATH"));
    fs::remove_all(certs);

    for (const char* bad : {"ssh://me@build-host", "npipe:////./pipe/docker_engine", "unix://relative.sock",
                            "tcp://host:2376/path", "127.0.0.1:2375"}) {
        auto e = source::engine_endpoint(env_of({{"DOCKER_HOST", bad}}));
        INFO(bad);
        REQUIRE_FALSE(e);
        CHECK(e.error().kind == ErrorKind::invalid_input);
        CHECK_THAT(e.error().message, Catch::Contains(std::string("DOCKER_HOST=") + bad));
    }
    CHECK_THAT(source::engine_endpoint(env_of({{"DOCKER_HOST", "ssh://me@build-host"}})).error().message,
               Catch::Contains("ssh -nNT -L"));
    auto long_path = "unix:///" + std::string(200, 'a');
    CHECK_THAT(source::engine_endpoint(env_of({{"DOCKER_HOST", long_path}})).error().message, Catch::Contains("longer than 107"));
}

TEST_CASE("docker-daemon: image names get a tag when they have none", "[unit][source][daemon]") {
    auto check = [](std::string_view text, const std::string& expected, bool tagged = true) {
        auto n = source::parse_daemon_image_name(text);
        INFO(std::string(text));
        REQUIRE(n);
        CHECK(n->name == expected);
        CHECK(n->tagged == tagged);
    };
    check("app", "app:latest");
    check("app:1", "app:1");
    check("team/app", "team/app:latest");
    check("localhost:5000/app", "localhost:5000/app:latest");
    check("registry.example.com:5000/team/app:1.4.2", "registry.example.com:5000/team/app:1.4.2");
    std::string hex(64, 'a');
    check("app@sha256:" + hex, "app@sha256:" + hex, false);
    check("app:1@sha256:" + hex, "app:1@sha256:" + hex, false);
    check("sha256:" + hex, "sha256:" + hex, false);
    for (const char* bad : {"", "sha256:abc", "App:1", "app:-bad"}) {
        auto n = source::parse_daemon_image_name(bad);
        INFO(bad);
        REQUIRE_FALSE(n);
        CHECK(n.error().kind == ErrorKind::invalid_input);
    }
}

TEST_CASE("docker-daemon: an export streams through a bounded buffer, byte for byte", "[unit][source][daemon]") {
    const std::string archive = pattern(12 * 1024 * 1024 + 777, 7);
    std::atomic<std::size_t> sent{0};
    FakeEngine engine([&](const std::string& path, int fd) {
        if (path == "/_ping")
            return FakeEngine::answer(fd, 200, "OK", "text/plain");
        if (path == "/images/app:1/json")
            return FakeEngine::answer(fd, 200, R"({"Id":"sha256:abc","RepoTags":["app:1"],"Size":12})");
        if (path != "/images/app:1/get")
            return FakeEngine::answer(fd, 404, R"({"message":"page not found"})");
        FakeEngine::start_chunked(fd);
        std::size_t step = 64 * 1024;
        for (std::size_t at = 0; at < archive.size(); at += step) {
            auto part = std::string_view(archive).substr(at, step);
            if (!FakeEngine::chunk(fd, part))
                return;
            sent += part.size();
        }
        FakeEngine::end_chunked(fd);
    });
    source::EngineClient client(engine.endpoint());
    REQUIRE(client.ping());
    auto inspected = client.inspect_image("app:1");
    REQUIRE(inspected);
    CHECK((*inspected)["Id"] == "sha256:abc");

    auto reader = client.export_image("app:1");
    REQUIRE(reader);
    // Nobody reads: the daemon is held back by the bounded buffer (1 MiB) and the socket buffers, far
    // from the 12 MiB it has to send.
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    CHECK(sent.load() < 6u * 1024 * 1024);
    Error error;
    auto got = read_all(**reader, 7001, &error);
    CHECK(error.message.empty());
    CHECK(got.size() == archive.size());
    CHECK(got == archive);
    CHECK(sent.load() == archive.size());
}

TEST_CASE("docker-daemon: a daemon that closes the export early is an error from read(), not a short archive", "[unit][source][daemon]") {
    const std::string archive = pattern(3 * 1024 * 1024, 11);
    FakeEngine engine([&](const std::string& path, int fd) {
        if (path != "/images/app:1/get")
            return FakeEngine::answer(fd, 200, "OK", "text/plain");
        FakeEngine::start_chunked(fd);
        // Half the archive, then the connection closes without the last chunk.
        FakeEngine::chunk(fd, std::string_view(archive).substr(0, archive.size() / 2));
    });
    source::EngineClient client(engine.endpoint());
    auto reader = client.export_image("app:1");
    REQUIRE(reader);
    Error error;
    auto got = read_all(**reader, 64 * 1024, &error);
    CHECK(got.size() <= archive.size() / 2);
    CHECK(error.kind == ErrorKind::registry);
    CHECK_THAT(error.message, Catch::Contains("before the archive was complete") && Catch::Contains("app:1") &&
                                  Catch::Contains(engine.path()));
}

TEST_CASE("docker-daemon: an error Docker appends to the export stream is reported, and never reaches the archive reader",
          "[unit][source][daemon]") {
    const std::string archive = pattern(2 * 1024 * 1024, 13);
    const std::string appended = R"({"errorDetail":{"message":"layer does not exist"},"error":"layer does not exist"})" "\r\n";
    FakeEngine engine([&](const std::string&, int fd) {
        FakeEngine::start_chunked(fd);
        FakeEngine::chunk(fd, std::string_view(archive).substr(0, 1024 * 1024 + 5));
        FakeEngine::chunk(fd, appended);
        FakeEngine::end_chunked(fd);
    });
    source::EngineClient client(engine.endpoint());
    auto reader = client.export_image("app:1");
    REQUIRE(reader);
    Error error;
    auto got = read_all(**reader, 4096, &error);
    CHECK(error.kind == ErrorKind::registry);
    CHECK_THAT(error.message, Catch::Contains("failed in the middle of the export of app:1") &&
                                  Catch::Contains("layer does not exist"));
    CHECK(got.find("errorDetail") == std::string::npos);
    CHECK(got == archive.substr(0, got.size()));
}

TEST_CASE("docker-daemon: a tar stream ending in zero blocks is not mistaken for an appended error", "[unit][source][daemon]") {
    // An archive whose last file holds an error-looking JSON line, followed by tar's zero blocks.
    std::string archive = pattern(100 * 1024, 17) + R"({"errorDetail":{"message":"inside a file"}})" + std::string(10240, '\0');
    FakeEngine engine([&](const std::string&, int fd) {
        FakeEngine::start_chunked(fd);
        FakeEngine::chunk(fd, archive);
        FakeEngine::end_chunked(fd);
    });
    source::EngineClient client(engine.endpoint());
    auto reader = client.export_image("app:1");
    REQUIRE(reader);
    Error error;
    CHECK(read_all(**reader, 3000, &error) == archive);
    CHECK(error.message.empty());
}

TEST_CASE("docker-daemon: the daemon's error answers: no such image, a failing export", "[unit][source][daemon]") {
    FakeEngine engine([&](const std::string& path, int fd) {
        if (path == "/images/nope:1/json")
            return FakeEngine::answer(fd, 404, R"({"message":"No such image: nope:1"})");
        if (path == "/images/app:1/get")
            return FakeEngine::answer(fd, 500, R"({"message":"write /var/lib/docker/tmp: no space left on device"})");
        FakeEngine::answer(fd, 404, R"({"message":"page not found"})");
    });
    source::EngineClient client(engine.endpoint());
    auto missing = client.inspect_image("nope:1");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(missing.error().message, Catch::Contains("no such image in the Docker daemon: nope:1") &&
                                            Catch::Contains("docker images") && Catch::Contains("No such image: nope:1"));
    auto failing = client.export_image("app:1");
    REQUIRE_FALSE(failing);
    CHECK(failing.error().kind == ErrorKind::registry);
    CHECK_THAT(failing.error().message, Catch::Contains("500") && Catch::Contains("no space left on device"));
}

TEST_CASE("docker-daemon: no daemon: a missing socket and a socket nobody listens on are told apart", "[unit][source][daemon]") {
    auto dir = temp_dir("tw-nodaemon-");
    auto missing = (dir / "docker.sock").string();
    source::EngineClient absent(*source::engine_endpoint(env_of({{"DOCKER_HOST", "unix://" + missing}})));
    auto e = absent.ping();
    REQUIRE_FALSE(e);
    CHECK(e.error().kind == ErrorKind::registry);
    CHECK_THAT(e.error().message, Catch::Contains("no Docker daemon") && Catch::Contains(missing + " does not exist") &&
                                      Catch::Contains("DOCKER_HOST=unix://" + missing));

    // A socket file whose listener is gone: connect() is refused.
    auto stale = (dir / "stale.sock").string();
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, stale.c_str(), sizeof(address.sun_path) - 1);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
        ::close(fd);
    }
    source::EngineClient dead(*source::engine_endpoint(env_of({{"DOCKER_HOST", "unix://" + stale}})));
    auto refused = dead.ping();
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind == ErrorKind::registry);
    CHECK_THAT(refused.error().message, Catch::Contains("no Docker daemon listens on " + stale));
    fs::remove_all(dir);
}

TEST_CASE("docker-daemon: a cancelled run stops an export that is waiting for the daemon", "[unit][source][daemon][cancel]") {
    CancelReset reset;
    FakeEngine engine([&](const std::string&, int fd) {
        FakeEngine::start_chunked(fd);
        FakeEngine::chunk(fd, pattern(100 * 1024, 3));
        // Then the daemon goes quiet, the connection open.
        for (int i = 0; i < 100 && !engine.stopping(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    });
    source::EngineClient client(engine.endpoint());
    auto reader = client.export_image("app:1");
    REQUIRE(reader);
    std::thread signal([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        cancel::request(SIGTERM);
    });
    auto started = std::chrono::steady_clock::now();
    Error error;
    read_all(**reader, 4096, &error);
    signal.join();
    CHECK(error.kind == ErrorKind::cancelled);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
    reader->reset();
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
}

TEST_CASE("docker-daemon: dropping an export half read aborts the transfer", "[unit][source][daemon]") {
    std::atomic<bool> server_done{false};
    FakeEngine engine([&](const std::string&, int fd) {
        FakeEngine::start_chunked(fd);
        std::string part = pattern(64 * 1024, 5);
        // Far more than the buffers hold: only an aborted transfer lets this loop end early.
        for (int i = 0; i < 4096; ++i)
            if (!FakeEngine::chunk(fd, part))
                break;
        server_done = true;
    });
    source::EngineClient client(engine.endpoint());
    auto reader = client.export_image("app:1");
    REQUIRE(reader);
    char buffer[1000];
    REQUIRE((*reader)->read(buffer, sizeof(buffer)));
    auto started = std::chrono::steady_clock::now();
    reader->reset();
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
    for (int i = 0; i < 100 && !server_done; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(server_done);
}

TEST_CASE("docker-daemon: dropping an export while the daemon is silent does not wait for it", "[unit][source][daemon]") {
    FakeEngine engine([&](const std::string&, int fd) {
        FakeEngine::start_chunked(fd);
        FakeEngine::chunk(fd, pattern(100 * 1024, 9));
        // Silent for up to 30 s: only the transfer's abort hook ends the wait early.
        for (int i = 0; i < 600 && !engine.stopping(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    });
    source::EngineClient client(engine.endpoint());
    auto reader = client.export_image("app:1");
    REQUIRE(reader);
    char buffer[4096];
    REQUIRE((*reader)->read(buffer, sizeof(buffer)));
    // Everything sent is in the buffer by now: the transfer idles, no byte left to notice the reader is gone.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto started = std::chrono::steady_clock::now();
    reader->reset();
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
}
