#include <tagwarden/aws/sigv4.hpp>
#include <tagwarden/core/strings.hpp>

#include <tagwarden/core/digest.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace tagwarden::aws {

namespace {

constexpr std::string_view k_algorithm = "AWS4-HMAC-SHA256";

// Never signed: botocore's SIGNED_HEADERS_BLACKLIST (hop-by-hop headers, and headers that proxies and
// HTTP clients rewrite). Authorization and X-Amz-Date are replaced instead.
constexpr std::array<std::string_view, 11> k_unsigned_headers = {"connection",
                                                                 "expect",
                                                                 "keep-alive",
                                                                 "proxy-authenticate",
                                                                 "proxy-authorization",
                                                                 "te",
                                                                 "trailer",
                                                                 "transfer-encoding",
                                                                 "upgrade",
                                                                 "user-agent",
                                                                 "x-amzn-trace-id"};

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_unreserved(char c) {
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool is_hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

// RFC 7230 token characters (header names, methods).
bool is_token_char(char c) {
    return is_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), to_lower);
    return out;
}

void append_percent(std::string& out, unsigned char c) {
    static constexpr char k_digits[] = "0123456789ABCDEF";
    out += '%';
    out += k_digits[c >> 4];
    out += k_digits[c & 0x0f];
}

// RFC 3986 encoding with the unreserved set A-Za-z0-9-._~; '/' kept when `keep_slash`.
std::string uri_encode(std::string_view s, bool keep_slash) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (is_unreserved(c) || (keep_slash && c == '/'))
            out += c;
        else
            append_percent(out, static_cast<unsigned char>(c));
    }
    return out;
}

// Encodes what is not already encoded: valid %XX triplets are kept, other bytes outside
// unreserved and '/' are encoded.
std::string uri_encode_raw_bytes(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%' && i + 2 < s.size() && is_hex_digit(s[i + 1]) && is_hex_digit(s[i + 2])) {
            out += s.substr(i, 3);
            i += 2;
        } else if (is_unreserved(c) || c == '/') {
            out += c;
        } else {
            append_percent(out, static_cast<unsigned char>(c));
        }
    }
    return out;
}

struct UrlParts {
    std::string host; // host[:port] as the Host header carries it
    std::string path;
    std::string query;
};

Result<UrlParts> split_url(std::string_view url) {
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos)
        return fail(ErrorKind::invalid_input,
                    "SigV4: the request URL must be absolute (http:// or https://)");
    std::string scheme = lowercase(url.substr(0, scheme_end));
    if (scheme != "http" && scheme != "https")
        return fail(ErrorKind::invalid_input,
                    "SigV4: unsupported URL scheme '" + uri_encode(scheme, false) + "' (use http or https)");
    std::string_view rest = url.substr(scheme_end + 3);
    auto authority_end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, authority_end);
    std::string_view tail =
        authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);

    if (auto at = authority.rfind('@'); at != std::string_view::npos)
        authority = authority.substr(at + 1);
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos)
            return fail(ErrorKind::invalid_input, "SigV4: the request URL has an unterminated IPv6 host");
        host = authority.substr(0, close + 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                return fail(ErrorKind::invalid_input, "SigV4: the request URL has a malformed host");
            port = after.substr(1);
        }
    } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }
    if (host.empty())
        return fail(ErrorKind::invalid_input, "SigV4: the request URL has no host");
    if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return fail(ErrorKind::invalid_input, "SigV4: the request URL has a non-numeric port");
    for (char c : host)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return fail(ErrorKind::invalid_input,
                        "SigV4: the request URL's host contains a space or control byte");

    UrlParts parts;
    parts.host = std::string(host);
    bool default_port =
        port.empty() || (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
    if (!default_port) {
        parts.host += ':';
        parts.host += port;
    }
    if (auto hash = tail.find('#'); hash != std::string_view::npos)
        tail = tail.substr(0, hash);
    auto question = tail.find('?');
    parts.path = std::string(tail.substr(0, question));
    if (question != std::string_view::npos)
        parts.query = std::string(tail.substr(question + 1));
    return parts;
}

// RFC 3986 section 5.2.4 dot-segment removal plus removal of empty segments, as botocore's
// remove_dot_segments (the suite's normalize-path cases): a trailing '/' stays when a segment remains.
std::string normalize_path(std::string_view path) {
    std::vector<std::string_view> segments;
    std::size_t start = 0;
    while (start <= path.size()) {
        auto slash = path.find('/', start);
        auto end = slash == std::string_view::npos ? path.size() : slash;
        std::string_view segment = path.substr(start, end - start);
        if (segment == "..") {
            if (!segments.empty())
                segments.pop_back();
        } else if (!segment.empty() && segment != ".") {
            segments.push_back(segment);
        }
        if (slash == std::string_view::npos)
            break;
        start = slash + 1;
    }
    std::string out = path.front() == '/' ? "/" : "";
    for (std::size_t i = 0; i < segments.size(); ++i) {
        if (i > 0)
            out += '/';
        out += segments[i];
    }
    if (path.back() == '/' && !segments.empty())
        out += '/';
    return out.empty() ? "/" : out;
}

std::string canonical_uri(std::string_view path, bool normalize, bool double_encode) {
    if (path.empty())
        return "/";
    std::string p = normalize ? normalize_path(path) : std::string(path);
    return double_encode ? uri_encode(p, true) : uri_encode_raw_bytes(p);
}

// Pairs decoded then RFC 3986 encoded, sorted by encoded key then value; "k" without '=' becomes "k=".
std::string canonical_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> pairs;
    std::size_t start = 0;
    while (start <= query.size()) {
        auto amp = query.find('&', start);
        auto end = amp == std::string_view::npos ? query.size() : amp;
        std::string_view item = query.substr(start, end - start);
        if (!item.empty()) {
            auto eq = item.find('=');
            std::string_view key = item.substr(0, eq);
            std::string_view value = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
            pairs.emplace_back(uri_encode(percent_decode(key), false),
                               uri_encode(percent_decode(value), false));
        }
        if (amp == std::string_view::npos)
            break;
        start = amp + 1;
    }
    std::sort(pairs.begin(), pairs.end());
    std::string out;
    for (const auto& [key, value] : pairs) {
        if (!out.empty())
            out += '&';
        out += key;
        out += '=';
        out += value;
    }
    return out;
}

// Trimall: leading and trailing whitespace removed, inner runs (obs-fold line breaks included) collapsed
// to one space.
std::string trim_all(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    bool pending_space = false;
    for (char c : value) {
        if (is_space(c)) {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space)
            out += ' ';
        pending_space = false;
        out += c;
    }
    return out;
}

Status validate_header_value(std::string_view name, std::string_view value) {
    for (std::size_t i = 0; i < value.size(); ++i) {
        auto c = static_cast<unsigned char>(value[i]);
        if (c == '\r' || c == '\n') {
            // Only obs-fold (a line break followed by a space or tab) is acceptable.
            std::size_t next = i + 1;
            if (c == '\r' && next < value.size() && value[next] == '\n')
                ++next;
            if (next >= value.size() || (value[next] != ' ' && value[next] != '\t'))
                return fail(ErrorKind::invalid_input, "SigV4: the value of header '" + std::string(name) +
                                                          "' contains a bare line break");
            i = next;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return fail(ErrorKind::invalid_input, "SigV4: the value of header '" + std::string(name) +
                                                      "' contains a control character");
        }
    }
    return {};
}

bool is_scope_part(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(),
                                     [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool is_valid_payload_hash(std::string_view s) {
    if (s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        }))
        return true;
    // UNSIGNED-PAYLOAD and the chunked-upload constants (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, ...).
    return s == k_unsigned_payload ||
           (s.starts_with("STREAMING-") && std::all_of(s.begin(), s.end(), [](char c) {
                return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
            }));
}

Status validate_credentials(const Credentials& credentials) {
    if (credentials.access_key_id.empty() || credentials.secret_access_key.empty())
        return fail(ErrorKind::auth,
                    "SigV4: the AWS credentials are incomplete (empty access key ID or secret access key)");
    for (char c : credentials.access_key_id)
        if (!is_alnum(c) && c != '_' && c != '-')
            return fail(ErrorKind::auth,
                        "SigV4: the AWS access key ID contains a character other than A-Z, 0-9");
    for (char c : credentials.session_token) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f)
            return fail(ErrorKind::auth, "SigV4: the AWS session token contains a control character");
    }
    return {};
}

// Key material is wiped when it goes out of scope.
class SecretBytes {
  public:
    SecretBytes() = default;
    explicit SecretBytes(std::string bytes) : m_bytes(std::move(bytes)) {}
    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    SecretBytes(SecretBytes&& other) noexcept : m_bytes(std::move(other.m_bytes)) { other.wipe(); }
    SecretBytes& operator=(SecretBytes&& other) noexcept {
        wipe();
        m_bytes = std::move(other.m_bytes);
        other.wipe();
        return *this;
    }
    ~SecretBytes() { wipe(); }

    [[nodiscard]] const std::string& bytes() const { return m_bytes; }

  private:
    void wipe() {
        if (!m_bytes.empty())
            OPENSSL_cleanse(m_bytes.data(), m_bytes.size());
        m_bytes.clear();
    }
    std::string m_bytes;
};

Result<SecretBytes> hmac_sha256(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int out_size = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
             &out_size) == nullptr)
        return fail(ErrorKind::internal, "SigV4: OpenSSL HMAC-SHA256 failed");
    SecretBytes result(std::string(reinterpret_cast<const char*>(out.data()), out_size));
    OPENSSL_cleanse(out.data(), out.size());
    return result;
}

struct CanonicalHeader {
    std::string name;  // lowercase
    std::string value; // trimmed
};

} // namespace

std::string sha256_hex(std::string_view data) {
    return std::string(Digest::of(data).hex());
}

std::string format_amz_date(std::chrono::system_clock::time_point time) {
    using namespace std::chrono;
    auto seconds = floor<std::chrono::seconds>(time);
    auto day = floor<days>(seconds);
    year_month_day ymd{day};
    hh_mm_ss hms{seconds - day};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

Result<std::chrono::system_clock::time_point> parse_amz_date(std::string_view text) {
    using namespace std::chrono;
    auto bad = [&] {
        return fail(ErrorKind::invalid_input,
                    "invalid X-Amz-Date '" + uri_encode(text, false) + "': expected YYYYMMDDTHHMMSSZ");
    };
    if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z')
        return bad();
    auto number = [&](std::size_t pos, std::size_t len) {
        int v = 0;
        for (std::size_t i = pos; i < pos + len; ++i)
            v = v * 10 + (text[i] - '0');
        return v;
    };
    for (std::size_t i : {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14})
        if (text[i] < '0' || text[i] > '9')
            return bad();
    year_month_day ymd{year{number(0, 4)}, month{static_cast<unsigned>(number(4, 2))},
                       day{static_cast<unsigned>(number(6, 2))}};
    int h = number(9, 2), m = number(11, 2), s = number(13, 2);
    if (!ymd.ok() || h > 23 || m > 59 || s > 59)
        return bad();
    return sys_days{ymd} + hours{h} + minutes{m} + seconds{s};
}

Result<SignedHeaders> sign(const SigningRequest& request, const Credentials& credentials,
                           std::string_view region, std::string_view service,
                           std::chrono::system_clock::time_point now, const SignOptions& options) {
    if (!is_token(request.method))
        return fail(ErrorKind::invalid_input, "SigV4: the request method is empty or not an HTTP token");
    if (!is_scope_part(region))
        return fail(ErrorKind::invalid_input,
                    "SigV4: invalid region '" + uri_encode(region, false) + "' (expected e.g. us-east-1)");
    if (!is_scope_part(service))
        return fail(ErrorKind::invalid_input, "SigV4: invalid service signing name '" +
                                                  uri_encode(service, false) + "' (expected e.g. ecr)");
    TW_TRY(validate_credentials(credentials));
    std::string payload_hash =
        request.payload_hash.empty() ? std::string(k_empty_payload_sha256) : request.payload_hash;
    if (!is_valid_payload_hash(payload_hash))
        return fail(
            ErrorKind::invalid_input,
            "SigV4: the payload hash must be 64 lowercase hex digits or a constant such as UNSIGNED-PAYLOAD");
    auto url = split_url(request.url);
    if (!url)
        return std::unexpected(url.error());

    auto year =
        static_cast<int>(std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(now)}.year());
    if (year < 1000 || year > 9999)
        return fail(ErrorKind::invalid_input, "SigV4: the signing time is outside the years 1000-9999");

    const bool is_s3 = service == "s3";
    const bool normalize = options.normalize_path.value_or(!is_s3);
    const bool double_encode = options.double_encode_path.value_or(!is_s3);
    const bool add_content_sha256 = options.add_content_sha256.value_or(is_s3);
    const bool has_token = credentials.has_session_token();
    const std::string amz_date = format_amz_date(now);
    const std::string date_stamp = amz_date.substr(0, 8);

    std::vector<CanonicalHeader> headers;
    bool has_host = false;
    for (const auto& [name, value] : request.headers) {
        if (!is_token(name))
            return fail(ErrorKind::invalid_input,
                        "SigV4: invalid header name '" + uri_encode(name, false) + "'");
        TW_TRY(validate_header_value(name, value));
        std::string lower = lowercase(name);
        if (lower == "authorization" || lower == "x-amz-date" ||
            (has_token && lower == "x-amz-security-token") ||
            (add_content_sha256 && lower == "x-amz-content-sha256"))
            continue;
        if (std::find(k_unsigned_headers.begin(), k_unsigned_headers.end(), lower) !=
            k_unsigned_headers.end())
            continue;
        has_host = has_host || lower == "host";
        headers.push_back({std::move(lower), trim_all(value)});
    }
    if (!has_host)
        headers.push_back({"host", url->host});
    headers.push_back({"x-amz-date", amz_date});
    if (has_token && options.sign_session_token)
        headers.push_back({"x-amz-security-token", credentials.session_token});
    if (add_content_sha256)
        headers.push_back({"x-amz-content-sha256", payload_hash});
    // Repeated names are joined with ',' in their original order, hence the stable sort.
    std::stable_sort(headers.begin(), headers.end(),
                     [](const CanonicalHeader& a, const CanonicalHeader& b) { return a.name < b.name; });

    std::string canonical_headers;
    std::string signed_headers;
    for (std::size_t i = 0; i < headers.size(); ++i) {
        if (i > 0 && headers[i].name == headers[i - 1].name) {
            canonical_headers.pop_back(); // the '\n' of the previous value
            canonical_headers += ',';
        } else {
            if (!signed_headers.empty())
                signed_headers += ';';
            signed_headers += headers[i].name;
            canonical_headers += headers[i].name;
            canonical_headers += ':';
        }
        canonical_headers += headers[i].value;
        canonical_headers += '\n';
    }

    SignedHeaders out;
    out.canonical_request = request.method;
    out.canonical_request += '\n';
    out.canonical_request += canonical_uri(url->path, normalize, double_encode);
    out.canonical_request += '\n';
    out.canonical_request += canonical_query(url->query);
    out.canonical_request += '\n';
    out.canonical_request += canonical_headers;
    out.canonical_request += '\n';
    out.canonical_request += signed_headers;
    out.canonical_request += '\n';
    out.canonical_request += payload_hash;

    const std::string scope =
        date_stamp + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
    out.string_to_sign =
        std::string(k_algorithm) + "\n" + amz_date + "\n" + scope + "\n" + sha256_hex(out.canonical_request);

    SecretBytes secret("AWS4" + credentials.secret_access_key);
    auto k_date = hmac_sha256(secret.bytes(), date_stamp);
    if (!k_date)
        return std::unexpected(k_date.error());
    auto k_region = hmac_sha256(k_date->bytes(), region);
    if (!k_region)
        return std::unexpected(k_region.error());
    auto k_service = hmac_sha256(k_region->bytes(), service);
    if (!k_service)
        return std::unexpected(k_service.error());
    auto k_signing = hmac_sha256(k_service->bytes(), "aws4_request");
    if (!k_signing)
        return std::unexpected(k_signing.error());
    auto signature = hmac_sha256(k_signing->bytes(), out.string_to_sign);
    if (!signature)
        return std::unexpected(signature.error());

    out.signature =
        to_hex(reinterpret_cast<const unsigned char*>(signature->bytes().data()), signature->bytes().size());
    out.signed_headers = signed_headers;
    out.authorization = std::string(k_algorithm) + " Credential=" + credentials.access_key_id + "/" + scope +
                        ", SignedHeaders=" + signed_headers + ", Signature=" + out.signature;

    out.headers_to_add.emplace_back("X-Amz-Date", amz_date);
    if (has_token)
        out.headers_to_add.emplace_back("X-Amz-Security-Token", credentials.session_token);
    if (add_content_sha256)
        out.headers_to_add.emplace_back("X-Amz-Content-Sha256", payload_hash);
    out.headers_to_add.emplace_back("Authorization", out.authorization);
    return out;
}

} // namespace tagwarden::aws
