#include <tagwarden/http/url.hpp>

#include <algorithm>
#include <cctype>

namespace tagwarden::http {

Result<Url> Url::parse(std::string_view text) {
    auto sep = text.find("://");
    if (sep == std::string_view::npos)
        return fail(ErrorKind::invalid_input, "'" + std::string(text) + "' is not an absolute URL");
    Url u;
    u.scheme = std::string(text.substr(0, sep));
    std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (u.scheme != "http" && u.scheme != "https")
        return fail(ErrorKind::invalid_input, "'" + std::string(text) + "' is not an http or https URL");
    auto rest = text.substr(sep + 3);
    auto slash = rest.find_first_of("/?#");
    u.host = std::string(rest.substr(0, slash));
    if (u.host.empty())
        return fail(ErrorKind::invalid_input, "'" + std::string(text) + "' has no host");
    if (auto at = u.host.rfind('@'); at != std::string::npos)
        u.host = u.host.substr(at + 1);  // never carry userinfo
    u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (auto hash = u.target.find('#'); hash != std::string::npos)
        u.target.resize(hash);
    if (u.target.empty() || u.target.front() != '/')
        u.target = "/" + u.target;
    return u;
}

std::string Url::origin() const {
    std::string h = host;
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    bool has_port = false;
    if (!h.empty() && h.front() == '[')
        has_port = h.find("]:") != std::string::npos;
    else
        has_port = h.find(':') != std::string::npos;
    if (!has_port)
        h += scheme == "https" ? ":443" : ":80";
    return scheme + "://" + h;
}

Result<std::string> resolve_url(std::string_view base, std::string_view ref) {
    if (ref.find("://") != std::string_view::npos) {
        auto u = Url::parse(ref);
        if (!u)
            return std::unexpected(u.error());
        return u->str();
    }
    auto b = Url::parse(base);
    if (!b)
        return std::unexpected(b.error());
    if (ref.starts_with("//"))
        return b->scheme + ":" + std::string(ref);
    if (ref.starts_with("/"))
        return b->scheme + "://" + b->host + std::string(ref);
    if (ref.starts_with("?")) {
        auto path = b->target.substr(0, b->target.find('?'));
        return b->scheme + "://" + b->host + path + std::string(ref);
    }
    auto path = b->target.substr(0, b->target.find('?'));
    auto dir = path.substr(0, path.rfind('/') + 1);
    return b->scheme + "://" + b->host + dir + std::string(ref);
}

bool same_origin(std::string_view a, std::string_view b) {
    auto ua = Url::parse(a);
    auto ub = Url::parse(b);
    return ua && ub && ua->origin() == ub->origin();
}

std::string url_encode(std::string_view text) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(k_hex[c >> 4]);
            out.push_back(k_hex[c & 15]);
        }
    }
    return out;
}

std::string append_query(std::string_view url, std::string_view name, std::string_view value) {
    std::string out(url);
    out += url.find('?') == std::string_view::npos ? '?' : '&';
    out += name;
    out += '=';
    out += url_encode(value);
    return out;
}

std::string redact_url(std::string_view url) {
    std::string out(url);
    if (auto hash = out.find('#'); hash != std::string::npos)
        out.resize(hash);
    if (auto q = out.find('?'); q != std::string::npos)
        out = out.substr(0, q) + "?…";
    auto scheme_end = out.find("://");
    auto authority_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
    auto authority_end = out.find_first_of("/?", authority_start);
    auto at = out.find('@', authority_start);
    if (at != std::string::npos && (authority_end == std::string::npos || at < authority_end))
        out.erase(authority_start, at + 1 - authority_start);
    return out;
}

} // namespace tagwarden::http
