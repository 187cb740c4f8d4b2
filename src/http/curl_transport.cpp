// The only file that includes libcurl.
#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/http/transport.hpp>
#include <tagwarden/http/url.hpp>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <mutex>
#include <string_view>
#include <vector>

namespace tagwarden::http {

namespace {

constexpr int k_max_redirects = 10;

struct CurlGlobal {
    CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    ~CurlGlobal() { curl_global_cleanup(); }
};

void ensure_global_init() {
    static CurlGlobal global;
}

// State of one transfer, shared with libcurl's callbacks.
struct Transfer {
    CURL* handle = nullptr;
    const Request* request = nullptr;
    Response response;
    std::optional<Error> callback_error;  // set when a body source or sink failed
    bool header_started = false;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::string_view line(data, size * count);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
        line.remove_suffix(1);
    if (line.starts_with("HTTP/")) {
        // A new status line (after 100 Continue or a redirect): start over.
        t->response.headers = Headers{};
        return size * count;
    }
    auto colon = line.find(':');
    if (colon != std::string_view::npos) {
        auto value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
            value.remove_prefix(1);
        t->response.headers.add(std::string(line.substr(0, colon)), std::string(value));
    }
    return size * count;
}

size_t on_write(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t n = size * count;
    long status = 0;
    curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
    if (t->request->body_sink && status >= 200 && status < 300) {
        auto r = t->request->body_sink(data, n);
        if (!r) {
            t->callback_error = r.error();
            return 0;  // aborts the transfer
        }
        return n;
    }
    if (t->response.body.size() + n > t->request->max_body) {
        t->callback_error = Error(ErrorKind::registry, "response body from " + redact_url(t->request->url) + " exceeds " +
                                                           std::to_string(t->request->max_body) + " bytes");
        return 0;
    }
    t->response.body.append(data, n);
    return n;
}

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    auto r = t->request->body->read(buffer, size * count);
    if (!r) {
        t->callback_error = r.error();
        return CURL_READFUNC_ABORT;
    }
    return *r;
}

// Called by libcurl about once a second, idle or not: a cancelled run aborts its transfers here.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(user);
    if (cancel::should_stop())
        return 1;
    return t->request->abort_if && t->request->abort_if() ? 1 : 0;
}

Error curl_error(CURLcode code, const char* detail, const std::string& method, const std::string& url) {
    std::string what = detail && *detail ? detail : curl_easy_strerror(code);
    Error e(ErrorKind::registry, method + " " + url + ": " + what);
    switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        e.message += " (the registry's TLS certificate is not trusted: pass its CA with --ca-file)";
        e.transient = false;
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        e.transient = false;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        e.transient = true;
        e.message += " (check the registry host name)";
        break;
    default:
        e.transient = true;  // connection refused/reset, timeouts, partial transfers
        break;
    }
    return e;
}

// The certificate authorities every TLS connection of a transport verifies against, loaded once.
// libcurl (7.88, OpenSSL) parses the CA bundle into a new X509 store for each pooled handle: with the
// system bundle (~140 certificates, what a registry without --ca-file is verified against: ECR) that is
// ~0.8 MiB of resident memory per handle, 7 MiB more at --jobs 8 than at --jobs 1. One store, handed to
// each connection's SSL_CTX by CURLOPT_SSL_CTX_FUNCTION, costs it once. Where libcurl does not use
// OpenSSL, or the file does not load, libcurl loads the CAs itself as before (and reports what fails).
class SharedCaStore {
public:
    ~SharedCaStore() {
        if (m_store)
            X509_STORE_free(m_store);
    }

    // The store for `file` (the CA bundle: --ca-file, else libcurl's default) and `dir` (libcurl's
    // default CA directory, looked up lazily as libcurl does); null when libcurl must load them itself.
    X509_STORE* get(const std::string& file, const std::string& dir) {
        std::call_once(m_once, [&] {
            const auto* info = curl_version_info(CURLVERSION_NOW);
            if (!info || !info->ssl_version || std::string_view(info->ssl_version).find("OpenSSL") == std::string_view::npos)
                return;
            X509_STORE* store = X509_STORE_new();
            bool ok = store != nullptr && (!file.empty() || !dir.empty());
            if (ok && !file.empty())
                ok = X509_STORE_load_file(store, file.c_str()) == 1;
            if (ok && !dir.empty())
                ok = X509_STORE_load_path(store, dir.c_str()) == 1;
            if (!ok) {
                if (store)
                    X509_STORE_free(store);
                ERR_clear_error();
                log::debug("CA store not shared: libcurl loads " + file + " for each connection");
                return;
            }
            m_store = store;
        });
        return m_store;
    }

    static CURLcode install(CURL*, void* ssl_ctx, void* store) {
        SSL_CTX_set1_cert_store(static_cast<SSL_CTX*>(ssl_ctx), static_cast<X509_STORE*>(store));
        return CURLE_OK;
    }

private:
    std::once_flag m_once;
    X509_STORE* m_store = nullptr;
};

class CurlTransport final : public Transport {
public:
    explicit CurlTransport(TransportOptions options) : m_options(std::move(options)) {
        ensure_global_init();
        for (const auto& entry : m_options.resolve)
            m_resolve = curl_slist_append(m_resolve, entry.c_str());
        // TLS sessions and DNS answers are shared by every pooled handle: a worker's new connection
        // resumes the session another worker negotiated instead of a full handshake.
        m_share = curl_share_init();
        if (m_share) {
            curl_share_setopt(m_share, CURLSHOPT_LOCKFUNC, &share_lock);
            curl_share_setopt(m_share, CURLSHOPT_UNLOCKFUNC, &share_unlock);
            curl_share_setopt(m_share, CURLSHOPT_USERDATA, this);
            curl_share_setopt(m_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
            curl_share_setopt(m_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        }
    }

    ~CurlTransport() override {
        for (CURL* h : m_pool)
            curl_easy_cleanup(h);
        if (m_share)
            curl_share_cleanup(m_share);
        curl_slist_free_all(m_resolve);
    }
    CurlTransport(const CurlTransport&) = delete;
    CurlTransport& operator=(const CurlTransport&) = delete;

    Result<Response> send(const Request& request) override {
        Request current = request;
        for (int redirects = 0;; ++redirects) {
            auto r = send_once(current);
            if (!r)
                return r;
            bool is_redirect = r->status == 301 || r->status == 302 || r->status == 303 || r->status == 307 ||
                               r->status == 308;
            bool can_follow = current.follow_redirects && (current.method == "GET" || current.method == "HEAD");
            auto location = r->headers.get("Location");
            if (!is_redirect || !can_follow || !location)
                return r;
            if (redirects >= k_max_redirects)
                return fail(ErrorKind::registry, current.method + " " + redact_url(request.url) + ": more than " +
                                                     std::to_string(k_max_redirects) + " redirects");
            auto next = resolve_url(current.url, *location);
            if (!next)
                return fail(ErrorKind::registry, "bad redirect Location from " + redact_url(current.url) + ": " + next.error().message);
            // Credentials never cross a redirect to another host (e.g. ECR and Docker Hub send blob GETs to S3).
            if (!same_origin(current.url, *next))
                current.headers.remove("Authorization");
            log::debug("redirect " + redact_url(current.url) + " -> " + redact_url(*next));
            current.url = *next;
        }
    }

private:
    static void share_lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
        static_cast<CurlTransport*>(user)->share_mutex(data).lock();
    }
    static void share_unlock(CURL*, curl_lock_data data, void* user) {
        static_cast<CurlTransport*>(user)->share_mutex(data).unlock();
    }
    std::mutex& share_mutex(curl_lock_data data) {
        auto index = static_cast<std::size_t>(data);
        return m_share_mutexes[index < m_share_mutexes.size() ? index : 0];
    }

    CURL* acquire() {
        {
            std::lock_guard lock(m_mutex);
            if (!m_pool.empty()) {
                CURL* h = m_pool.back();
                m_pool.pop_back();
                return h;
            }
        }
        return curl_easy_init();
    }

    void release(CURL* h) {
        curl_easy_reset(h);  // keeps the live connections for reuse
        std::lock_guard lock(m_mutex);
        m_pool.push_back(h);
    }

    Result<Response> send_once(const Request& request) {
        if (cancel::should_stop())
            return std::unexpected(cancel::cancelled_error(request.method + " " + redact_url(request.url)));
        if (request.before_send)
            TW_TRY(request.before_send());
        CURL* h = acquire();
        if (!h)
            return fail(ErrorKind::internal, "libcurl: cannot create a handle");
        Transfer t;
        t.handle = h;
        t.request = &request;
        char error_buffer[CURL_ERROR_SIZE] = {0};

        curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (m_share)
            curl_easy_setopt(h, CURLOPT_SHARE, m_share);
        // HTTP/1.1 for every request, measured (bench/RESULTS.md, push-tls): over TLS, curl's default
        // HTTP/2 made a 1 GiB push with 4 workers take 1.8x as long as HTTP/1.1 (each worker's big body
        // crawls through its own h2 connection's flow-control window), and HTTP/1.1 for blob bodies only
        // cost a second connection per worker (1.25x). Larger upload buffers than curl's 64 KiB gained nothing.
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_USERAGENT, m_options.user_agent.c_str());
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(m_options.connect_timeout.count()));
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(m_options.stall_timeout.count()));
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
        if (request.timeout.count() > 0)
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (!m_options.ca_file.empty())
            curl_easy_setopt(h, CURLOPT_CAINFO, m_options.ca_file.c_str());
        if (request.url.starts_with("https://"))
            share_ca_store(h);
        if (m_resolve)
            curl_easy_setopt(h, CURLOPT_RESOLVE, m_resolve);
        if (!m_options.unix_socket.empty()) {
            curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, m_options.unix_socket.c_str());
            curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
        }
        if (!m_options.client_cert.empty()) {
            curl_easy_setopt(h, CURLOPT_SSLCERT, m_options.client_cert.c_str());
            curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        }
        if (!m_options.client_key.empty()) {
            curl_easy_setopt(h, CURLOPT_SSLKEY, m_options.client_key.c_str());
            curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        }
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);

        curl_slist* headers = nullptr;
        for (const auto& [name, value] : request.headers.fields())
            headers = curl_slist_append(headers, (name + ": " + value).c_str());
        headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip

        const auto& method = request.method;
        if (method == "HEAD") {
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (method == "GET") {
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        } else {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
            if (request.body) {
                curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(h, CURLOPT_READFUNCTION, &on_read);
                curl_easy_setopt(h, CURLOPT_READDATA, &t);
                curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body->size()));
            } else if (method == "POST" || method == "PUT" || method == "PATCH") {
                // An empty body with Content-Length: 0 (upload session starts, manifest-less PUTs).
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
            }
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

        CURLcode code = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);

        if (t.callback_error) {
            curl_easy_cleanup(h);  // the connection is in an unknown state
            log::debug(request.method + " " + redact_url(request.url) + " aborted: " + t.callback_error->message);
            return fail(*t.callback_error);
        }
        if (code == CURLE_ABORTED_BY_CALLBACK && cancel::should_stop()) {
            curl_easy_cleanup(h);
            return std::unexpected(cancel::cancelled_error(request.method + " " + redact_url(request.url)));
        }
        if (code != CURLE_OK) {
            auto e = curl_error(code, error_buffer, request.method, redact_url(request.url));
            curl_easy_cleanup(h);
            log::debug(e.message);
            return fail(e);
        }
        release(h);
        t.response.status = static_cast<int>(status);
        t.response.final_url = request.url;
        log::debug(request.method + " " + redact_url(request.url) + " -> " + std::to_string(status));
        return std::move(t.response);
    }

    // Verifies this handle's next TLS connection against the transport's one CA store instead of a copy
    // libcurl would parse for it (what libcurl was set to load: CAINFO, CAPATH).
    void share_ca_store(CURL* h) {
        char* file = nullptr;
        char* dir = nullptr;
        curl_easy_getinfo(h, CURLINFO_CAINFO, &file);  // the default, unless --ca-file set it above
        curl_easy_getinfo(h, CURLINFO_CAPATH, &dir);
        std::string ca_file = m_options.ca_file.empty() ? (file ? file : "") : m_options.ca_file;
        auto* store = m_ca_store.get(ca_file, dir ? dir : "");
        if (!store)
            return;
        curl_easy_setopt(h, CURLOPT_CAINFO, nullptr);
        curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
        curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, &SharedCaStore::install);
        curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, store);
    }

    TransportOptions m_options;
    SharedCaStore m_ca_store;
    curl_slist* m_resolve = nullptr;
    CURLSH* m_share = nullptr;
    std::array<std::mutex, CURL_LOCK_DATA_LAST> m_share_mutexes;  // one per kind of shared data
    std::mutex m_mutex;
    std::vector<CURL*> m_pool;
};

} // namespace

std::unique_ptr<Transport> make_curl_transport(TransportOptions options) {
    return std::make_unique<CurlTransport>(std::move(options));
}

} // namespace tagwarden::http
