#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/http/transport.hpp>
#include <tagwarden/image/image_source.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

// A client of the Docker Engine API (Docker, or podman's compatible service): where it listens, a
// ping, an image inspect and the streamed export of an image (`docker save`), for docker-daemon:.
namespace tagwarden::source {

inline constexpr std::string_view k_default_docker_socket = "/var/run/docker.sock";

// Where the Engine API listens, from DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_TLS and DOCKER_CERT_PATH
// as the docker CLI reads them.
struct EngineEndpoint {
    std::string host;         // DOCKER_HOST, or "unix:///var/run/docker.sock" when it is unset
    bool host_from_env = false;
    std::string socket_path;  // unix://: the socket; empty for tcp://
    std::string base_url;     // "http://docker" for a socket (the host name is not used), else http(s)://HOST:PORT
    bool tls = false;
    std::string ca_file;      // DOCKER_CERT_PATH/ca.pem (TLS only; empty: the system's CAs)
    std::string cert_file;    // DOCKER_CERT_PATH/cert.pem, when present
    std::string key_file;     // DOCKER_CERT_PATH/key.pem, when present

    // "the Docker daemon socket /var/run/docker.sock (DOCKER_HOST is not set)" and the like, for errors.
    [[nodiscard]] std::string describe() const;
};

// Reads the endpoint from variables looked up with `getenv` (empty string: unset). Error{invalid_input}
// for a DOCKER_HOST tagwarden cannot use (ssh://, npipe://, a malformed address) or missing TLS files.
Result<EngineEndpoint> engine_endpoint(const std::function<std::string(const char*)>& getenv);
// The same from the process environment.
Result<EngineEndpoint> engine_endpoint_from_environment();

// What an image reference names for the Engine API: `name` as the daemon is asked for it (a tag added
// when there is none: "app" -> "app:latest"; image IDs "sha256:<hex>" and digests left alone).
struct DaemonImageName {
    std::string name;     // e.g. "app:1", "registry.example.com/team/app:latest", "sha256:…"
    bool tagged = true;   // false for an image ID or a digest: the export's manifest.json names no tag for it
};
Result<DaemonImageName> parse_daemon_image_name(std::string_view text);

class EngineClient {
public:
    // `stall_timeout`: an export that delivers less than 1 KiB/s for this long is aborted.
    explicit EngineClient(EngineEndpoint endpoint, std::chrono::seconds stall_timeout = std::chrono::seconds(300));

    // GET /_ping. Errors name the socket (or address) and DOCKER_HOST, and tell no daemon (exit 8)
    // from a socket the user may not open (exit 7).
    Status ping();
    // GET /images/{name}/json. A 404 is Error{invalid_input} naming the image (suggests `docker images`).
    Result<nlohmann::json> inspect_image(std::string_view name);
    // GET /images/{name}/get, streamed: the transfer runs on its own thread into a bounded buffer and the
    // reader pulls from it, so the image is never held whole. Returns once the first bytes (or the
    // daemon's error answer) arrived. A transfer that fails — the daemon closed the stream, an HTTP error,
    // an error the daemon appended to the stream — makes read() return an error; cancellation
    // (core/cancel) stops the transfer and read() returns Error{cancelled}. Destroying the reader early
    // aborts the transfer.
    Result<std::unique_ptr<image::BlobReader>> export_image(std::string_view name);

    [[nodiscard]] const EngineEndpoint& endpoint() const { return m_endpoint; }

private:
    EngineEndpoint m_endpoint;
    std::shared_ptr<http::Transport> m_transport;
};

} // namespace tagwarden::source
