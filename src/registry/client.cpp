#include <tagwarden/core/json_fields.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/reference.hpp>
#include <tagwarden/http/url.hpp>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <utility>
#include <vector>
#include <tagwarden/registry/client.hpp>

#include <nlohmann/json.hpp>

namespace tagwarden::registry {

using nlohmann::json;

namespace {

constexpr std::chrono::seconds k_default_token_lifetime{60};
constexpr std::chrono::seconds k_token_expiry_margin{10};

// Streams a blob as a request body; a rewind reopens the blob so a 401 or retry can replay it.
class BlobBody final : public http::BodySource {
public:
    BlobBody(const BlobOpener& open, std::uint64_t size) : m_open(open), m_size(size) {}

    Result<std::size_t> read(char* buffer, std::size_t size) override {
        if (!m_reader) {
            auto r = m_open();
            if (!r)
                return std::unexpected(r.error());
            m_reader = std::move(*r);
        }
        return m_reader->read(buffer, size);
    }
    [[nodiscard]] std::uint64_t size() const override { return m_size; }
    bool rewind() override {
        m_reader.reset();
        return true;
    }

private:
    const BlobOpener& m_open;
    std::uint64_t m_size;
    std::unique_ptr<image::BlobReader> m_reader;
};

std::string strip_media_type_params(std::string value) {
    auto semi = value.find(';');
    if (semi != std::string::npos)
        value.resize(semi);
    while (!value.empty() && value.back() == ' ')
        value.pop_back();
    return value;
}

} // namespace

std::string describe_registry_errors(std::string_view body, std::string* first_code) {
    try {
        auto doc = json::parse(body);
        if (!doc.is_object() || !doc.contains("errors") || !doc["errors"].is_array())
            return {};
        std::string out;
        for (const auto& e : doc["errors"]) {
            if (!e.is_object())
                continue;
            std::string code = string_field(e, "code").value_or("");
            std::string message = string_field(e, "message").value_or("");
            if (first_code && first_code->empty())
                *first_code = code;
            std::string item = code;
            if (!message.empty())
                item += (item.empty() ? "" : ": ") + message;
            if (auto d = e.find("detail"); d != e.end() && !d->is_null()) {
                auto detail = d->is_string() ? d->get<std::string>() : d->dump();
                if (detail.size() > 300)
                    detail = detail.substr(0, 300) + "...";
                if (!detail.empty() && detail != "{}")
                    item += " (" + detail + ")";
            }
            out += (out.empty() ? "" : "; ") + item;
        }
        return out;
    } catch (const json::exception&) {
        return {};
    }
}

std::string parse_link_next(std::string_view link) {
    // <url>; rel="next", possibly among several comma-separated links.
    std::size_t pos = 0;
    while (pos < link.size()) {
        auto open = link.find('<', pos);
        if (open == std::string_view::npos)
            return {};
        auto close = link.find('>', open);
        if (close == std::string_view::npos)
            return {};
        auto end = link.find(',', close);
        auto params = link.substr(close + 1, end == std::string_view::npos ? std::string_view::npos : end - close - 1);
        if (params.find("rel=\"next\"") != std::string_view::npos || params.find("rel=next") != std::string_view::npos)
            return std::string(link.substr(open + 1, close - open - 1));
        if (end == std::string_view::npos)
            return {};
        pos = end + 1;
    }
    return {};
}

Client::Client(std::shared_ptr<http::Transport> transport, std::string registry, ClientOptions options)
    : m_transport(std::move(transport)), m_registry(std::move(registry)), m_options(std::move(options)) {}

std::string Client::base_url() const {
    std::lock_guard lock(m_mutex);
    return m_base_url;
}

std::string Client::repo_url(const std::string& repo, const std::string& suffix) const {
    return base_url() + "/v2/" + repo + suffix;
}

Error Client::status_error(const http::Response& r, const std::string& what) const {
    std::string code;
    std::string detail = describe_registry_errors(r.body, &code);
    Error e;
    e.http_status = r.status;
    e.registry_code = code;
    // TOOMANYREQUESTS and UNAVAILABLE are the distribution spec's codes for "try again later", whatever the status.
    e.transient = http::RetryPolicy::retryable_status(r.status) || code == "TOOMANYREQUESTS" || code == "UNAVAILABLE";
    if (auto after = r.headers.get("Retry-After"))
        e.retry_after = *after;
    switch (r.status) {
    case 401: e.kind = ErrorKind::auth; break;
    case 403: e.kind = ErrorKind::auth; break;
    case 404: e.kind = ErrorKind::not_found; break;
    default: e.kind = ErrorKind::registry; break;
    }
    e.message = what + ": HTTP " + std::to_string(r.status);
    if (!detail.empty())
        e.message += ": " + detail;
    else if (!r.body.empty() && r.body.size() < 200 && r.body.find('<') == std::string::npos)
        e.message += ": " + r.body;
    // ECR: a manifest PUT into a full repository is a bare 403 DENIED ("... already has the maximum allowed
    // number of images which is 'N'"); say what it is.
    if (r.status == 403 && detail.find("maximum allowed number of images") != std::string::npos) {
        std::string limit = "?";
        if (auto q = detail.find("which is '"); q != std::string::npos)
            limit = detail.substr(q + 10, detail.find('\'', q + 10) - q - 10);
        e.kind = ErrorKind::registry;
        e.message = "repository image quota reached (" + limit + " of " + limit + " images): " + what +
                    " was refused; expire images (a lifecycle policy) or raise the quota (Service Quotas "
                    "L-03A36CE1) [" + detail + "]";
    }
    // ECR: an immutable tag that exists on another digest ("... already exists ... cannot be overwritten
    // because the repository is immutable"). Distribution's TAG_INVALID means something else ("manifest tag
    // did not match URI"): a malformed request, not a conflict.
    if (code == "TAG_INVALID") {
        bool immutable = detail.find("immutable") != std::string::npos ||
                         detail.find("cannot be overwritten") != std::string::npos ||
                         detail.find("already exists") != std::string::npos;
        e.kind = immutable ? ErrorKind::tag_conflict : ErrorKind::registry;
    }
    return e;
}

Status Client::ping() {
    auto host = m_registry == k_default_registry ? std::string("registry-1.docker.io") : m_registry;
    auto try_ping = [&](const std::string& base, bool retryable) -> Result<http::Response> {
        http::Request req;
        req.method = "GET";
        req.url = base + "/v2/";
        req.retryable = retryable;
        return m_transport->send(req);
    };
    std::string base;
    Result<http::Response> r;
    if (m_options.plain_http) {
        base = "http://" + host;
        r = try_ping(base, true);
    } else if (is_loopback_host(host)) {
        base = "https://" + host;
        r = try_ping(base, false);
        if (!r && r.error().transient) {
            log::debug("registry " + host + " does not speak TLS (" + r.error().message + "); using plain HTTP");
            base = "http://" + host;
            r = try_ping(base, true);
        }
    } else {
        base = "https://" + host;
        r = try_ping(base, true);
    }
    if (!r)
        return fail(r.error().with_context("cannot reach registry " + m_registry));
    {
        std::lock_guard lock(m_mutex);
        m_base_url = base;
    }
    if (r->status == 200)
        return {};
    if (r->status == 401) {
        auto header = r->headers.get("WWW-Authenticate");
        if (!header)
            return fail(ErrorKind::registry, "registry " + m_registry + " answered 401 without a WWW-Authenticate challenge");
        auto challenges = parse_www_authenticate(*header);
        if (!challenges)
            return std::unexpected(challenges.error());
        std::lock_guard lock(m_mutex);
        m_challenge = challenges->front();
        for (const auto& c : *challenges)
            if (c.scheme == "bearer")
                m_challenge = c;
        return {};
    }
    if (r->status == 404)
        return fail(ErrorKind::registry, base + "/v2/ answered 404: " + m_registry +
                                             " does not look like an OCI registry (check the host and port)");
    return fail(status_error(*r, "registry " + m_registry + " ping"));
}

std::vector<std::string> Client::scopes_for(const std::string& repo, const std::vector<std::string>& extra) const {
    std::vector<std::string> scopes;
    if (!repo.empty())
        scopes.push_back("repository:" + repo + (m_options.push_access ? ":pull,push" : ":pull"));
    for (const auto& s : extra)
        scopes.push_back(s);
    return scopes;
}

Result<Client::CachedToken> Client::fetch_token(const Challenge& challenge, const std::vector<std::string>& scopes) {
    auto realm = challenge.param("realm");
    if (realm.empty() || !http::Url::parse(realm))
        return fail(ErrorKind::auth, "registry " + m_registry + " sent a Bearer challenge without a usable realm");
    auto service = challenge.param("service");
    std::string source = m_credential ? m_credential->source : std::string("anonymous access");

    http::Request req;
    if (m_credential && !m_credential->identity_token.empty()) {
        // OAuth2 refresh-token grant (docker config identitytoken).
        std::string form = "grant_type=refresh_token&client_id=tagwarden&refresh_token=" +
                           http::url_encode(m_credential->identity_token);
        if (!service.empty())
            form += "&service=" + http::url_encode(service);
        std::string scope_list;
        for (const auto& s : scopes)
            scope_list += (scope_list.empty() ? "" : " ") + s;
        if (!scope_list.empty())
            form += "&scope=" + http::url_encode(scope_list);
        req.method = "POST";
        req.url = realm;
        req.headers.set("Content-Type", "application/x-www-form-urlencoded");
        req.body = std::make_shared<http::StringBody>(form);
    } else {
        req.method = "GET";
        req.url = realm;
        if (!service.empty())
            req.url = http::append_query(req.url, "service", service);
        for (const auto& s : scopes)
            req.url = http::append_query(req.url, "scope", s);
        if (m_credential && !m_credential->username.empty()) {
            auto basic = base64_encode(m_credential->username + ":" + m_credential->password);
            log::add_secret(basic);
            req.headers.set("Authorization", "Basic " + basic);
        }
    }
    auto r = m_transport->send(req);
    if (!r)
        return std::unexpected(r.error().with_context("token request to " + http::redact_url(realm)));
    if (r->status == 401 || r->status == 403) {
        auto e = status_error(*r, "authentication to " + m_registry + " failed");
        e.kind = ErrorKind::auth;
        e.message += " (credentials from " + source + " were rejected: check them, or log in again)";
        return std::unexpected(e);
    }
    if (r->status != 200)
        return std::unexpected(status_error(*r, "token request to " + http::redact_url(realm)));
    json doc;
    try {
        doc = json::parse(r->body);
    } catch (const json::exception&) {
        return fail(ErrorKind::auth, "token endpoint " + http::redact_url(realm) + " did not answer JSON");
    }
    std::string token = string_field(doc, "token").value_or("");
    if (token.empty())
        token = string_field(doc, "access_token").value_or("");
    if (token.empty())
        return fail(ErrorKind::auth, "token endpoint " + http::redact_url(realm) + " answered without a token");
    log::add_secret(token);
    // A lifetime that is not an integer counts as absent: the default, as for a missing one.
    auto lifetime = std::chrono::seconds(
        int_field(doc, "expires_in", k_default_token_lifetime.count()).value_or(k_default_token_lifetime.count()));
    if (lifetime < k_default_token_lifetime)
        lifetime = k_default_token_lifetime;
    return CachedToken{"Bearer " + token, std::chrono::steady_clock::now() + lifetime - k_token_expiry_margin};
}

Result<std::string> Client::authorization(const std::string& scope_key, const std::vector<std::string>& scopes,
                                          std::optional<CachedToken>* fresh) {
    std::lock_guard lock(m_mutex);
    if (!m_challenge)
        return std::string{};
    if (!m_credential_loaded) {
        auto c = m_options.keychain->resolve(m_registry);
        if (!c)
            return std::unexpected(c.error());
        m_credential = *c;
        m_credential_loaded = true;
    }
    if (m_challenge->scheme == "basic") {
        if (!m_credential || m_credential->username.empty())
            return std::string{};
        auto header = "Basic " + base64_encode(m_credential->username + ":" + m_credential->password);
        log::add_secret(header.substr(6));
        return header;
    }
    if (m_challenge->scheme != "bearer")
        return fail(ErrorKind::auth, "registry " + m_registry + " asks for unsupported authentication scheme '" +
                                         m_challenge->scheme + "'");
    if (!fresh) {
        auto it = m_tokens.find(scope_key);
        if (it != m_tokens.end() && it->second.expires > std::chrono::steady_clock::now())
            return it->second.header;
    }
    auto token = fetch_token(*m_challenge, scopes);
    if (!token)
        return std::unexpected(token.error());
    if (fresh)
        *fresh = *token;  // the retry's own: the caller shares it once it has served the retry
    else
        m_tokens[scope_key] = *token;
    return token->header;
}

void Client::remember_token(const std::string& scope_key, const CachedToken& token) {
    std::lock_guard lock(m_mutex);
    m_tokens[scope_key] = token;
}

Result<http::Response> Client::send(http::Request request, const std::string& repo,
                                    const std::vector<std::string>& extra_scopes) {
    // Credentials are scoped to the registry's own host: an upload Location, a Link or a mount-cancel URL on
    // another host is sent without them, and a 401 from another host is never taken as a challenge.
    if (!http::same_origin(request.url, base_url())) {
        request.headers.remove("Authorization");
        auto r = m_transport->send(request);
        if (r && r->status == 401)
            return std::unexpected(foreign_challenge(request, r->final_url));
        return r;
    }
    auto scopes = scopes_for(repo, extra_scopes);
    std::string key;
    for (const auto& s : scopes)
        key += s + " ";
    auto auth = authorization(key, scopes, nullptr);
    if (!auth)
        return std::unexpected(auth.error());
    if (!auth->empty())
        request.headers.set("Authorization", *auth);
    auto r = m_transport->send(request);
    if (!r || r->status != 401)
        return r;
    // A redirect may have taken the request to another host (curl drops Authorization there): its 401 is
    // not the registry's challenge.
    if (!r->final_url.empty() && !http::same_origin(r->final_url, base_url()))
        return std::unexpected(foreign_challenge(request, r->final_url));

    // A 401 means no, or a stale, authorization: learn the (possibly new) challenge and try once more,
    // asking for the scope the challenge names (a registry knows best which action a request needs).
    if (auto header = r->headers.get("WWW-Authenticate")) {
        auto challenges = parse_www_authenticate(*header);
        if (challenges) {
            std::lock_guard lock(m_mutex);
            m_challenge = challenges->front();
            for (const auto& c : *challenges)
                if (c.scheme == "bearer")
                    m_challenge = c;
            std::string named = m_challenge->param("scope");
            std::size_t start = 0;
            while (start < named.size()) {
                auto space = named.find(' ', start);
                auto one = named.substr(start, space == std::string::npos ? std::string::npos : space - start);
                if (!one.empty() && std::find(scopes.begin(), scopes.end(), one) == scopes.end()) {
                    scopes.push_back(one);
                    key += one + " ";
                }
                if (space == std::string::npos)
                    break;
                start = space + 1;
            }
        }
    }
    bool had_auth = !auth->empty();
    // The retry fetches a token of its own and sends with it before any other worker can: a token shared at
    // once could be spent (or, on registries that count uses, used up) by concurrent requests before the
    // retry goes out, and the retry's 401 would then read as rejected credentials.
    std::optional<CachedToken> fresh;
    auth = authorization(key, scopes, &fresh);
    if (!auth)
        return std::unexpected(auth.error());
    if (auth->empty()) {
        auto e = status_error(*r, request.method + " " + http::redact_url(request.url));
        e.message = "registry " + m_registry + " requires authentication and no credentials were found: pass "
                    "--username with --password-stdin, or log in so the docker config has them (" +
                    e.message + ")";
        return std::unexpected(e);
    }
    if (had_auth && auth->starts_with("Basic ")) {
        // Basic credentials do not go stale: a second try cannot help.
        auto e = status_error(*r, "authentication to " + m_registry + " failed");
        std::lock_guard lock(m_mutex);
        e.message += " (credentials from " + (m_credential ? m_credential->source : std::string("?")) +
                     " were rejected: check them, or log in again)";
        return std::unexpected(e);
    }
    if (request.body && !request.body->rewind())
        return std::unexpected(status_error(*r, request.method + " " + http::redact_url(request.url)));
    request.headers.set("Authorization", *auth);
    r = m_transport->send(request);
    if (r && r->status == 401) {
        auto e = status_error(*r, "authentication to " + m_registry + " failed");
        std::lock_guard lock(m_mutex);
        e.message += " (credentials from " + (m_credential ? m_credential->source : std::string("anonymous access")) +
                     " were rejected: check them, or log in again)";
        return std::unexpected(e);
    }
    if (r && fresh)
        remember_token(key, *fresh);
    return r;
}

Error Client::foreign_challenge(const http::Request& request, const std::string& answered_by) const {
    auto where = http::Url::parse(answered_by.empty() ? request.url : answered_by);
    Error e(ErrorKind::auth, request.method + " " + http::redact_url(request.url) + ": " +
                                 (where ? where->host : std::string("another host")) +
                                 " asks for credentials, but it is not the registry " + m_registry +
                                 ": tagwarden sends a registry's credentials only to the registry itself (its upload "
                                 "or redirect URL must accept the request without them, as presigned URLs do)");
    e.http_status = 401;
    return e;
}

Result<std::optional<std::uint64_t>> Client::blob_size(const std::string& repo, const Digest& digest) {
    http::Request req;
    req.method = "HEAD";
    req.url = repo_url(repo, "/blobs/" + digest.str());
    auto r = send(req, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status == 404)
        return std::optional<std::uint64_t>{};
    if (r->status != 200)
        return std::unexpected(status_error(*r, "HEAD blob " + digest.str() + " in " + repo));
    auto length = r->headers.get("Content-Length");
    std::uint64_t size = 0;
    if (length) {
        try {
            size = std::stoull(*length);
        } catch (const std::exception&) {
            return fail(ErrorKind::registry, "registry sent a bad Content-Length for blob " + digest.str());
        }
    }
    return std::optional<std::uint64_t>(size);
}

Status Client::get_blob(const std::string& repo, const Digest& digest,
                        const std::function<Status(const char*, std::size_t)>& sink) {
    http::Request req;
    req.method = "GET";
    req.url = repo_url(repo, "/blobs/" + digest.str());
    req.retryable = false;  // a partially streamed body cannot be replayed into the sink
    req.body_sink = sink;
    auto r = send(req, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status != 200)
        return std::unexpected(status_error(*r, "GET blob " + digest.str() + " from " + repo));
    return {};
}

Result<std::vector<image::Descriptor>> Client::list_referrers(const std::string& repo, const Digest& subject) {
    std::vector<image::Descriptor> out;
    http::Request req;
    req.method = "GET";
    req.url = repo_url(repo, "/referrers/" + subject.str());
    req.headers.set("Accept", std::string(image::media_type::oci_index));
    auto r = send(req, repo);
    if (!r)
        return std::unexpected(r.error());
    std::string body;
    if (r->status == 200) {
        body = r->body;
    } else if (r->status == 404 || r->status == 400 || r->status == 405) {
        // No referrers API: the fallback tag schema "<alg>-<hex>" holds an index of referrers.
        auto tag = std::string(subject.algorithm()) + "-" + std::string(subject.hex()).substr(0, 64);
        auto head = head_manifest(repo, tag);
        if (!head)
            return std::unexpected(head.error());
        if (!*head)
            return out;
        auto m = get_manifest(repo, tag);
        if (!m)
            return std::unexpected(m.error());
        body = m->bytes;
    } else {
        return std::unexpected(status_error(*r, "listing referrers of " + subject.str()));
    }
    try {
        auto doc = json::parse(body);
        const auto* manifests = array_field(doc, "manifests");
        if (!manifests)
            return fail(ErrorKind::registry, "referrers of " + subject.str() + " are not an index with a 'manifests' array");
        for (const auto& d : *manifests) {
            auto desc = image::parse_descriptor(d, "referrer");
            if (!desc)
                return std::unexpected(desc.error());
            out.push_back(*desc);
        }
    } catch (const json::exception& e) {
        return fail(ErrorKind::registry, "referrers of " + subject.str() + " are not a valid index: " + e.what());
    }
    return out;
}

Status Client::publish_referrers(const std::string& repo, const Digest& subject,
                                 const std::vector<image::Descriptor>& referrers) {
    http::Request probe;
    probe.method = "GET";
    probe.url = repo_url(repo, "/referrers/" + subject.str());
    probe.headers.set("Accept", std::string(image::media_type::oci_index));
    auto r = send(probe, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status == 200)
        return {};  // the registry indexes referrers itself from their subject field
    auto tag = std::string(subject.algorithm()) + "-" + std::string(subject.hex()).substr(0, 64);
    json index = {{"schemaVersion", 2}, {"mediaType", image::media_type::oci_index}, {"manifests", json::array()}};
    auto head = head_manifest(repo, tag);
    if (!head)
        return std::unexpected(head.error());
    if (*head) {
        auto existing = get_manifest(repo, tag);
        if (!existing)
            return std::unexpected(existing.error());
        try {
            index = json::parse(existing->bytes);
        } catch (const json::exception&) {
            index = nullptr;
        }
        if (!array_field(index, "manifests"))
            return fail(ErrorKind::registry, "referrers fallback tag " + tag + " in " + repo + " is not an index");
    }
    bool changed = false;
    for (const auto& d : referrers) {
        bool present = false;
        for (const auto& m : index["manifests"])
            present = present || string_field(m, "digest") == d.digest.str();
        if (!present) {
            index["manifests"].push_back(image::descriptor_to_json(d));
            changed = true;
        }
    }
    if (!changed)
        return {};
    auto m = image::parse_manifest(index.dump(), image::media_type::oci_index);
    if (!m)
        return std::unexpected(m.error());
    auto put = put_manifest(repo, tag, *m);
    if (!put)
        return std::unexpected(put.error());
    return {};
}

Status Client::put_upload(const std::string& repo, const image::Descriptor& blob, const BlobOpener& open,
                          const std::string& location) {
    http::Request put;
    put.method = "PUT";
    put.url = http::append_query(location, "digest", blob.digest.str());
    put.retryable = false;  // the upload sequence is retried whole
    put.headers.set("Content-Type", "application/octet-stream");
    put.body = std::make_shared<BlobBody>(open, blob.size);
    auto r = send(put, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status != 201)
        return std::unexpected(status_error(*r, "upload of blob " + blob.digest.str() + " to " + repo));
    if (auto d = r->headers.get("Docker-Content-Digest"); d && *d != blob.digest.str())
        return fail(ErrorKind::verification, "registry stored blob " + blob.digest.str() + " as " + *d);
    return {};
}

Result<std::string> Client::start_upload(const std::string& repo, const image::Descriptor& blob,
                                         std::uint64_t* min_chunk) {
    http::Request post;
    post.method = "POST";
    post.url = repo_url(repo, "/blobs/uploads/");
    post.retryable = false;
    auto r = send(post, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status != 202)
        return std::unexpected(status_error(*r, "starting upload of blob " + blob.digest.str() + " to " + repo));
    auto location = r->headers.get("Location");
    if (!location)
        return fail(ErrorKind::registry, "registry started an upload without a Location header");
    if (min_chunk)
        if (auto m = r->headers.get("OCI-Chunk-Min-Length"))
            *min_chunk = std::strtoull(m->c_str(), nullptr, 10);
    return http::resolve_url(post.url, *location);
}

Status Client::upload_once(const std::string& repo, const image::Descriptor& blob, const BlobOpener& open,
                           std::string session) {
    std::uint64_t min_chunk = 0;
    if (session.empty()) {
        auto started = start_upload(repo, blob, &min_chunk);
        if (!started)
            return std::unexpected(started.error());
        session = std::move(*started);
    }
    if (m_options.chunk_threshold > 0 && blob.size >= m_options.chunk_threshold)
        return upload_chunked(repo, blob, open, session, min_chunk);
    return put_upload(repo, blob, open, session);
}

namespace {

// One PATCH's share of a blob: the next `length` bytes of a reader that the chunks of one upload share.
// Not replayable: a failed chunk is resumed from where the registry says it stands, not resent blindly.
class ChunkBody final : public http::BodySource {
public:
    ChunkBody(image::BlobReader& reader, std::uint64_t length) : m_reader(reader), m_left(length), m_size(length) {}
    Result<std::size_t> read(char* buffer, std::size_t size) override {
        if (m_left == 0)
            return std::size_t{0};
        auto n = m_reader.read(buffer, static_cast<std::size_t>(std::min<std::uint64_t>(size, m_left)));
        if (!n)
            return std::unexpected(n.error());
        if (*n == 0)
            return fail(ErrorKind::invalid_input, "the blob ended " + std::to_string(m_left) + " bytes early");
        m_left -= *n;
        return *n;
    }
    [[nodiscard]] std::uint64_t size() const override { return m_size; }
    // Nothing read yet (curl resending on a kept-alive connection the server had closed): start over is free.
    bool rewind() override { return m_left == m_size; }

private:
    image::BlobReader& m_reader;
    std::uint64_t m_left;
    std::uint64_t m_size;
};

// Reads and drops `count` bytes (a resumed upload's reader catching up: the bytes still pass through the
// digest check, which needs all of them).
Status skip_bytes(image::BlobReader& reader, std::uint64_t count) {
    std::vector<char> buffer(256 * 1024);
    while (count > 0) {
        auto n = reader.read(buffer.data(), static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), count)));
        if (!n)
            return std::unexpected(n.error());
        if (*n == 0)
            return fail(ErrorKind::invalid_input, "the blob ended before the point the upload resumes from");
        count -= *n;
    }
    return {};
}

// The end of an upload session's Range header ("0-1023", or "bytes=0-1023"): bytes held = end + 1.
// distribution answers "0-0" for an empty session too; an empty session is what that is taken for.
std::optional<std::uint64_t> range_bytes(const std::optional<std::string>& header) {
    if (!header)
        return std::nullopt;
    std::string_view v = *header;
    if (v.starts_with("bytes="))
        v.remove_prefix(6);
    auto dash = v.find('-');
    if (dash == std::string_view::npos)
        return std::nullopt;
    std::string end(v.substr(dash + 1));
    char* stop = nullptr;
    auto last = std::strtoull(end.c_str(), &stop, 10);
    if (end.empty() || (stop && *stop != '\0'))
        return std::nullopt;
    return last == 0 ? 0 : last + 1;
}

} // namespace

Result<std::uint64_t> Client::upload_offset(const std::string& repo, const std::string& location, std::string* next) {
    http::Request get;
    get.method = "GET";
    get.url = location;
    get.retryable = true;
    auto r = send(get, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status != 204 && r->status != 202 && r->status != 200)
        return std::unexpected(status_error(*r, "asking the registry how much of the upload it holds"));
    if (auto l = r->headers.get("Location"))
        if (auto absolute = http::resolve_url(location, *l))
            *next = *absolute;
    return range_bytes(r->headers.get("Range")).value_or(0);
}

Status Client::upload_chunked(const std::string& repo, const image::Descriptor& blob, const BlobOpener& open,
                              std::string location, std::uint64_t min_chunk) {
    const auto chunk = std::max<std::uint64_t>({m_options.chunk_size, min_chunk, 1});
    std::uint64_t offset = 0;
    std::unique_ptr<image::BlobReader> reader;
    int failures = 0;
    const std::string what = "chunked upload of blob " + blob.digest.str();
    while (offset < blob.size || !reader) {
        if (!reader) {
            auto opened = open();
            if (!opened)
                return std::unexpected(opened.error());
            reader = std::move(*opened);
            TW_TRY(skip_bytes(*reader, offset));
            if (offset == blob.size)
                break;
        }
        auto length = std::min(chunk, blob.size - offset);
        http::Request patch;
        patch.method = "PATCH";
        patch.url = location;
        patch.retryable = false;  // resumed below from the registry's own count
        patch.headers.set("Content-Type", "application/octet-stream");
        patch.headers.set("Content-Range", std::to_string(offset) + "-" + std::to_string(offset + length - 1));
        patch.body = std::make_shared<ChunkBody>(*reader, length);
        auto r = send(patch, repo);
        if (r && r->status == 202) {
            if (auto l = r->headers.get("Location"))
                if (auto absolute = http::resolve_url(location, *l))
                    location = *absolute;
            offset += length;
            // A registry that says it holds less than was sent is believed: resume from its count.
            if (auto held = range_bytes(r->headers.get("Range")); held && *held < offset && *held > 0) {
                log::debug(what + ": the registry holds " + std::to_string(*held) + " bytes, not " +
                           std::to_string(offset) + "; resuming from its count");
                offset = *held;
                reader.reset();
            }
            failures = 0;
            continue;
        }
        Error error = r ? status_error(*r, what + " to " + repo) : r.error();
        // 416: the registry's count and ours differ (a chunk half-received): resume from its count.
        bool resync = r && r->status == 416;
        if ((!error.transient && !resync) || ++failures >= m_options.retry.max_attempts)
            return std::unexpected(error);
        auto delay = m_options.retry.delay(failures, error.retry_after.empty() ? std::nullopt
                                                                              : std::optional<std::string>(error.retry_after));
        http::log_retry(what, failures, m_options.retry.max_attempts, delay, error.message);
        if (!http::sleep_for(delay))
            return std::unexpected(http::cancelled_wait(what));
        // Where does the registry stand? Resume from there (a session it lost restarts the whole upload).
        auto held = upload_offset(repo, location, &location);
        if (!held) {
            auto gone = held.error();
            gone.transient = true;
            gone.message = what + ": the registry lost the upload session (" + gone.message + "); starting over";
            return std::unexpected(gone);
        }
        log::info(what + ": resuming at byte " + std::to_string(*held) + " of " + std::to_string(blob.size) +
                  " (" + std::to_string(offset - std::min(offset, *held)) + " bytes of the failed chunk resent)");
        offset = *held;
        reader.reset();
    }
    // Every byte has passed: one more read ends the stream, and with it the digest and size check.
    char end = 0;
    auto last = reader->read(&end, 1);
    if (!last)
        return std::unexpected(last.error());
    if (*last != 0)
        return fail(ErrorKind::invalid_input, "blob " + blob.digest.str() + " is longer than its descriptor says");
    http::Request put;
    put.method = "PUT";
    put.url = http::append_query(location, "digest", blob.digest.str());
    put.retryable = false;
    put.headers.set("Content-Type", "application/octet-stream");
    put.body = std::make_shared<http::StringBody>(std::string());
    auto r = send(put, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status != 201)
        return std::unexpected(status_error(*r, "completing the " + what + " to " + repo));
    if (auto d = r->headers.get("Docker-Content-Digest"); d && *d != blob.digest.str())
        return fail(ErrorKind::verification, "registry stored blob " + blob.digest.str() + " as " + *d);
    return {};
}

Status Client::upload_blob(const std::string& repo, const image::Descriptor& blob, const BlobOpener& open,
                           std::string session) {
    // A session the registry opened (a declined mount) serves one attempt; whatever ends it, the upload goes
    // on in sessions of its own, as if there had been none.
    if (!session.empty()) {
        auto first = upload_once(repo, blob, open, session);
        if (first || first.error().kind == ErrorKind::cancelled)
            return first;
        log::debug("upload of blob " + blob.digest.str() + " into the session the registry opened failed (" +
                   first.error().message + "); starting a new one");
    }
    return http::retry_sequence<void>(m_options.retry, "upload of blob " + blob.digest.str(),
                                      [&]() -> Status { return upload_once(repo, blob, open, {}); });
}

Result<bool> Client::mount_blob(const std::string& repo, const image::Descriptor& blob, const std::string& from_repo,
                                std::string* session) {
    http::Request post;
    post.method = "POST";
    post.url = repo_url(repo, "/blobs/uploads/?mount=" + http::url_encode(blob.digest.str()) +
                                  "&from=" + http::url_encode(from_repo));
    auto r = send(post, repo, {"repository:" + from_repo + ":pull"});
    if (!r)
        return std::unexpected(r.error());
    if (r->status == 201)
        return true;
    if (r->status == 202) {
        // The registry started an upload session instead: the caller uploads into it, or it is cancelled
        // (failures ignored, as the spec allows).
        if (auto location = r->headers.get("Location")) {
            if (auto absolute = http::resolve_url(post.url, *location)) {
                if (session) {
                    *session = *absolute;
                    return false;
                }
                http::Request cancel;
                cancel.method = "DELETE";
                cancel.url = *absolute;
                cancel.retryable = false;
                (void)send(cancel, repo);
            }
        }
        return false;
    }
    return std::unexpected(status_error(*r, "mount of blob " + blob.digest.str() + " from " + from_repo));
}

Result<std::optional<ManifestInfo>> Client::head_manifest(const std::string& repo, const std::string& reference) {
    http::Request req;
    req.method = "HEAD";
    req.url = repo_url(repo, "/manifests/" + reference);
    req.headers.set("Accept", image::manifest_accept_header());
    auto r = send(req, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status == 404)
        return std::optional<ManifestInfo>{};
    if (r->status != 200)
        return std::unexpected(status_error(*r, "HEAD manifest " + repo + ":" + reference));
    auto digest_header = r->headers.get("Docker-Content-Digest");
    if (!digest_header) {
        // Some registries omit the digest on HEAD: read the manifest instead.
        auto m = get_manifest(repo, reference);
        if (!m)
            return std::unexpected(m.error());
        return std::optional<ManifestInfo>(ManifestInfo{m->digest, m->media_type, m->bytes.size()});
    }
    auto digest = Digest::parse(*digest_header);
    if (!digest)
        return fail(ErrorKind::registry, "registry sent an invalid Docker-Content-Digest: " + *digest_header);
    ManifestInfo info;
    info.digest = *digest;
    info.media_type = strip_media_type_params(r->headers.get("Content-Type").value_or(""));
    if (auto length = r->headers.get("Content-Length")) {
        try {
            info.size = std::stoull(*length);
        } catch (const std::exception&) {
        }
    }
    return std::optional<ManifestInfo>(info);
}

Result<image::Manifest> Client::get_manifest(const std::string& repo, const std::string& reference) {
    http::Request req;
    req.method = "GET";
    req.url = repo_url(repo, "/manifests/" + reference);
    req.headers.set("Accept", image::manifest_accept_header());
    req.max_body = 4 * 1024 * 1024;
    auto r = send(req, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status != 200)
        return std::unexpected(status_error(*r, "GET manifest " + repo + ":" + reference));
    if (auto want = Digest::parse(reference); want && Digest::of(r->body) != *want)
        return fail(ErrorKind::verification, "registry returned manifest bytes for " + repo + "@" + reference +
                                                 " that hash to " + Digest::of(r->body).str());
    auto content_type = strip_media_type_params(r->headers.get("Content-Type").value_or(""));
    if (!image::is_index_media_type(content_type) && !image::is_manifest_media_type(content_type))
        content_type.clear();
    auto m = image::parse_manifest(std::move(r->body), content_type);
    if (!m) {
        auto e = m.error();
        e.kind = ErrorKind::registry;
        return std::unexpected(e.with_context("manifest " + repo + ":" + reference + " from the registry"));
    }
    return m;
}

Result<Digest> Client::put_manifest(const std::string& repo, const std::string& reference,
                                    const image::Manifest& manifest, const WriteFence& fence) {
    http::Request req;
    req.before_send = fence.check;
    req.timeout = fence.timeout;
    req.method = "PUT";
    req.url = repo_url(repo, "/manifests/" + reference);
    req.headers.set("Content-Type", manifest.media_type);
    req.body = std::make_shared<http::StringBody>(manifest.bytes);
    auto r = send(req, repo);
    if (!r)
        return std::unexpected(r.error());
    if (r->status != 201 && r->status != 200)
        return std::unexpected(status_error(*r, "PUT manifest " + repo + ":" + reference));
    if (auto d = r->headers.get("Docker-Content-Digest")) {
        auto parsed = Digest::parse(*d);
        if (!parsed)
            return fail(ErrorKind::registry, "registry sent an invalid Docker-Content-Digest: " + *d);
        return *parsed;
    }
    return manifest.digest;
}

Status Client::delete_manifest(const std::string& repo, const std::string& reference, const WriteFence& fence) {
    http::Request req;
    req.before_send = fence.check;
    req.timeout = fence.timeout;
    req.method = "DELETE";
    req.url = repo_url(repo, "/manifests/" + reference);
    // Token registries grant deletes only to the `delete` action, asked for here alone.
    auto r = send(req, repo, {"repository:" + repo + ":delete"});
    if (!r)
        return std::unexpected(r.error());
    if (r->status != 202 && r->status != 200 && r->status != 204)
        return std::unexpected(status_error(*r, "DELETE manifest " + repo + ":" + reference));
    return {};
}

Result<bool> Client::can_delete_manifests(const std::string& repo) {
    // A DELETE of a digest nobody has: a registry that deletes answers 404 (MANIFEST_UNKNOWN), one that
    // refuses deletes 405 (UNSUPPORTED, docker-registry's default) or 401/403 (no delete permission).
    auto probe = Digest::of("tagwarden delete probe " + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    auto r = delete_manifest(repo, probe.str());
    if (r || r.error().kind == ErrorKind::not_found)
        return true;
    const auto& e = r.error();
    if (e.http_status == 405 || e.http_status == 400 || e.kind == ErrorKind::auth || e.registry_code == "UNSUPPORTED")
        return false;
    return std::unexpected(e);
}

Result<std::vector<std::string>> Client::list_tags(const std::string& repo) {
    // Registries cap the page size (ECR: 1000); follow Link headers rather than counting. NAME_UNKNOWN: a
    // repository that does not exist yet has no tags.
    return read_paged_list(repo_url(repo, "/tags/list?n=1000"), "tags", "the tag list of " + repo, repo, {}, true);
}

Result<std::vector<std::string>> Client::list_repositories() {
    return read_paged_list(base_url() + "/v2/_catalog?n=1000", "repositories", "the catalog of " + m_registry, "",
                           {"registry:catalog:*"}, false);
}

Result<std::vector<std::string>> Client::read_paged_list(std::string url, const std::string& field,
                                                         const std::string& what, const std::string& repo,
                                                         const std::vector<std::string>& extra_scopes,
                                                         bool empty_if_missing) {
    std::vector<std::string> items;
    std::set<std::string> seen{url};
    for (int page = 0; page < 10000; ++page) {
        http::Request req;
        req.method = "GET";
        req.url = url;
        auto r = send(req, repo, extra_scopes);
        if (!r)
            return std::unexpected(r.error());
        if (r->status == 404 && page == 0 && empty_if_missing)
            return items;
        if (r->status != 200)
            return std::unexpected(status_error(*r, "reading " + what));
        try {
            auto doc = json::parse(r->body);
            if (doc.contains(field) && doc[field].is_array())
                for (const auto& item : doc[field])
                    if (item.is_string())
                        items.push_back(item.get<std::string>());
        } catch (const json::exception&) {
            return fail(ErrorKind::registry, what + " is not valid JSON");
        }
        auto link = r->headers.get("Link");
        auto next = link ? parse_link_next(*link) : std::string{};
        if (next.empty())
            return items;
        auto resolved = http::resolve_url(url, next);
        if (!resolved)
            return std::unexpected(resolved.error());
        if (!seen.insert(*resolved).second)
            return fail(ErrorKind::registry, what + " loops: its Link header points back to " +
                                                 http::redact_url(*resolved) + ", a page already read (a registry bug)");
        url = *resolved;
    }
    return fail(ErrorKind::registry, what + " did not end after 10000 pages");
}

} // namespace tagwarden::registry
