#pragma once

#include <tagwarden/core/digest.hpp>
#include <tagwarden/core/error.hpp>
#include <tagwarden/http/transport.hpp>
#include <tagwarden/image/image_source.hpp>
#include <tagwarden/image/manifest.hpp>
#include <tagwarden/registry/auth.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tagwarden::registry {

struct ClientOptions {
    // Speak plain HTTP. Without it, loopback registries are tried with HTTPS first and fall back to HTTP
    // when they do not speak TLS (as Docker does); every other registry is HTTPS only.
    bool plain_http = false;
    // Ask for push access in token scopes (pull,push); otherwise pull only.
    bool push_access = true;
    std::shared_ptr<const Keychain> keychain = std::make_shared<Keychain>();
    http::RetryPolicy retry;
    // Blobs of at least this size are uploaded in chunks (POST, PATCH with Content-Range, PUT with the
    // digest); after a dropped connection the upload asks the registry how much it has and resumes there,
    // so a failure costs at most one chunk. Smaller blobs go in one PUT. 0: never chunk.
    std::uint64_t chunk_threshold = 256ULL << 20;
    // Bytes per PATCH (raised to the registry's OCI-Chunk-Min-Length when it asks for more).
    std::uint64_t chunk_size = 64ULL << 20;
};

struct ManifestInfo {
    Digest digest;
    std::string media_type;
    std::uint64_t size = 0;
};

using BlobOpener = std::function<Result<std::unique_ptr<image::BlobReader>>()>;

// What a manifest or tag write must satisfy on every send (retries included): `check` runs right before
// each one (fencing: the tag lock must still be held long enough), and the exchange is bounded by `timeout`.
struct WriteFence {
    std::function<Status()> check;
    std::chrono::milliseconds timeout{0};
};

// Parses an OCI error body {"errors":[{"code","message","detail"}]} into "CODE: message; CODE2: ...".
// Returns an empty string when the body is not such a document.
std::string describe_registry_errors(std::string_view body, std::string* first_code = nullptr);
// Extracts the rel="next" target of a Link header, or an empty string.
std::string parse_link_next(std::string_view link);

// The OCI Distribution API client for one registry host. Thread-safe.
// Every call states the statuses it accepts; anything else becomes an Error whose kind follows the
// status (401/403 auth, 404 not_found, others registry) and whose message carries the registry's
// error codes ("MANIFEST_INVALID: manifest invalid").
class Client {
public:
    Client(std::shared_ptr<http::Transport> transport, std::string registry, ClientOptions options);

    [[nodiscard]] const std::string& registry() const { return m_registry; }
    // The base URL chosen by ping(), e.g. "http://127.0.0.1:5000".
    [[nodiscard]] std::string base_url() const;

    // GET /v2/: picks the scheme and learns the authentication challenge. Called once before other calls.
    Status ping();

    // HEAD a blob. Returns its size, or nullopt when the registry does not have it.
    Result<std::optional<std::uint64_t>> blob_size(const std::string& repo, const Digest& digest);
    // GET a blob, streaming its bytes to `sink` (follows redirects to object storage, without credentials).
    // The bytes are not checked here; wrap the consumer in a VerifyingReader.
    Status get_blob(const std::string& repo, const Digest& digest, const std::function<Status(const char*, std::size_t)>& sink);
    // The referrers of a manifest (OCI 1.1 referrers API, falling back to the "sha256-<hex>" tag schema).
    Result<std::vector<image::Descriptor>> list_referrers(const std::string& repo, const Digest& subject);
    // Makes `referrers` findable from `subject` in `repo`: nothing to do where the registry serves the
    // referrers API; otherwise merges them into the "<alg>-<hex>" fallback tag's index (OCI 1.1).
    Status publish_referrers(const std::string& repo, const Digest& subject,
                             const std::vector<image::Descriptor>& referrers);
    // Upload: POST a session (or use `session`, an upload URL the registry already opened, e.g. by refusing
    // a mount), then PUT the streamed bytes with ?digest= — or, for blobs of at least chunk_threshold,
    // PATCH them chunk by chunk, resuming a failed chunk from the registry's count. The whole sequence is
    // retried on transient failures, reopening the blob each time (in a new session).
    Status upload_blob(const std::string& repo, const image::Descriptor& blob, const BlobOpener& open,
                       std::string session = {});
    // Cross-repository mount. Returns true when mounted (201); false when the registry started an upload
    // instead (202): then `session` (when given) receives that upload's URL for upload_blob to use,
    // otherwise the session is cancelled.
    Result<bool> mount_blob(const std::string& repo, const image::Descriptor& blob, const std::string& from_repo,
                            std::string* session = nullptr);

    // HEAD a manifest by tag or digest. Returns nullopt when it does not exist.
    Result<std::optional<ManifestInfo>> head_manifest(const std::string& repo, const std::string& reference);
    // GET a manifest; when `reference` is a digest the bytes are checked against it.
    Result<image::Manifest> get_manifest(const std::string& repo, const std::string& reference);
    // PUT manifest bytes under a tag or digest. Returns the digest the registry reports
    // (Docker-Content-Digest), or the local digest when the registry sends none.
    Result<Digest> put_manifest(const std::string& repo, const std::string& reference, const image::Manifest& manifest,
                                const WriteFence& fence = {});
    // DELETE a manifest by digest (or a tag, where the registry allows it).
    Status delete_manifest(const std::string& repo, const std::string& reference, const WriteFence& fence = {});
    // Whether the registry deletes manifests in `repo` (so a failed multi-tag write can be undone): probed
    // with a DELETE of a digest nobody has. False for 405/UNSUPPORTED (docker-registry's default), 401/403.
    Result<bool> can_delete_manifests(const std::string& repo);
    // Every tag of the repository, following Link pagination. An unknown repository has no tags.
    Result<std::vector<std::string>> list_tags(const std::string& repo);
    // Every repository of the registry (GET /v2/_catalog, token scope registry:catalog:*), following Link
    // pagination. Registries that do not serve the catalog answer 401/403/404 (an Error).
    Result<std::vector<std::string>> list_repositories();

private:
    struct CachedToken {
        std::string header;  // full Authorization value
        std::chrono::steady_clock::time_point expires;
    };

    Result<http::Response> send(http::Request request, const std::string& repo,
                                const std::vector<std::string>& extra_scopes = {});
    // Every string of the array `field` across a Link-paginated list starting at `url` (the tag list, the
    // catalog), sent with `repo`'s and `extra_scopes`' token; `what` names it in errors ("the tag list of
    // app"). A 404 on the first page is an empty list when `empty_if_missing`. A Link back to a page already
    // read is an error, not a loop.
    Result<std::vector<std::string>> read_paged_list(std::string url, const std::string& field, const std::string& what,
                                                     const std::string& repo,
                                                     const std::vector<std::string>& extra_scopes,
                                                     bool empty_if_missing);
    // The Authorization header for `scopes`: a cached token, or (Bearer) a new one. With `fresh`, always a
    // new token, handed back in *fresh and not cached: the caller remembers it after using it once.
    Result<std::string> authorization(const std::string& scope_key, const std::vector<std::string>& scopes,
                                      std::optional<CachedToken>* fresh);
    Result<CachedToken> fetch_token(const Challenge& challenge, const std::vector<std::string>& scopes);
    void remember_token(const std::string& scope_key, const CachedToken& token);
    std::vector<std::string> scopes_for(const std::string& repo, const std::vector<std::string>& extra) const;
    Error status_error(const http::Response& response, const std::string& what) const;
    // Error{auth} for a 401 that came from a host other than the registry's.
    Error foreign_challenge(const http::Request& request, const std::string& answered_by) const;
    std::string repo_url(const std::string& repo, const std::string& suffix) const;
    Status upload_once(const std::string& repo, const image::Descriptor& blob, const BlobOpener& open,
                       std::string session);
    Result<std::string> start_upload(const std::string& repo, const image::Descriptor& blob,
                                     std::uint64_t* min_chunk);
    Status upload_chunked(const std::string& repo, const image::Descriptor& blob, const BlobOpener& open,
                          std::string location, std::uint64_t min_chunk);
    // How many bytes an upload session holds (its Range header), or an error when the session is gone.
    Result<std::uint64_t> upload_offset(const std::string& repo, const std::string& location, std::string* next);
    Status put_upload(const std::string& repo, const image::Descriptor& blob, const BlobOpener& open,
                      const std::string& location);

    std::shared_ptr<http::Transport> m_transport;
    std::string m_registry;
    ClientOptions m_options;

    mutable std::mutex m_mutex;
    std::string m_base_url;
    std::optional<Challenge> m_challenge;
    bool m_credential_loaded = false;
    std::optional<Credential> m_credential;
    std::map<std::string, CachedToken> m_tokens;
};

} // namespace tagwarden::registry
