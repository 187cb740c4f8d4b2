#include <tagwarden/core/reference.hpp>

#include <algorithm>
#include <cctype>

namespace tagwarden {

namespace {

constexpr std::size_t k_max_name_length = 255;

bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool is_valid_component(std::string_view c) {
    if (c.empty() || !is_alnum_lower(c.front()) || !is_alnum_lower(c.back()))
        return false;
    std::size_t i = 0;
    while (i < c.size()) {
        if (is_alnum_lower(c[i])) {
            ++i;
            continue;
        }
        // a separator run
        std::size_t j = i;
        while (j < c.size() && !is_alnum_lower(c[j]))
            ++j;
        auto sep = c.substr(i, j - i);
        bool ok = sep == "." || sep == "_" || sep == "__" || std::all_of(sep.begin(), sep.end(), [](char x) {
                      return x == '-';
                  });
        if (!ok)
            return false;
        i = j;
    }
    return true;
}

bool is_valid_domain_label(std::string_view l) {
    if (l.empty())
        return false;
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    if (!alnum(l.front()) || !alnum(l.back()))
        return false;
    return std::all_of(l.begin(), l.end(), [&](char c) { return alnum(c) || c == '-'; });
}

bool is_valid_port(std::string_view p) {
    return !p.empty() && p.size() <= 5 &&
           std::all_of(p.begin(), p.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

bool is_valid_domain(std::string_view d) {
    if (d.empty())
        return false;
    std::string_view host = d;
    if (d.front() == '[') {
        auto close = d.find(']');
        if (close == std::string_view::npos)
            return false;
        auto inner = d.substr(1, close - 1);
        if (inner.empty() || !std::all_of(inner.begin(), inner.end(), [](char c) {
                return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
            }))
            return false;
        auto rest = d.substr(close + 1);
        if (rest.empty())
            return true;
        return rest.front() == ':' && is_valid_port(rest.substr(1));
    }
    auto colon = d.rfind(':');
    if (colon != std::string_view::npos) {
        if (!is_valid_port(d.substr(colon + 1)))
            return false;
        host = d.substr(0, colon);
    }
    std::size_t start = 0;
    while (true) {
        auto dot = host.find('.', start);
        auto label = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (!is_valid_domain_label(label))
            return false;
        if (dot == std::string_view::npos)
            break;
        start = dot + 1;
    }
    return true;
}

Error bad(std::string_view text, const std::string& why) {
    return Error(ErrorKind::invalid_input, "invalid image reference '" + std::string(text) + "': " + why);
}

} // namespace

bool is_valid_tag(std::string_view tag) {
    if (tag.empty() || tag.size() > 128)
        return false;
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    if (!word(tag.front()))
        return false;
    return std::all_of(tag.begin(), tag.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

Status validate_tag(std::string_view tag) {
    if (is_valid_tag(tag))
        return {};
    std::string why = tag.empty()           ? "it is empty"
                      : tag.size() > 128    ? "it is longer than 128 characters"
                      : (tag.front() == '.' || tag.front() == '-')
                          ? "it must start with a letter, digit or '_'"
                          : "only letters, digits, '_', '.' and '-' are allowed";
    return fail(ErrorKind::invalid_input,
                "invalid tag '" + std::string(tag) + "': " + why + " (OCI tags match [A-Za-z0-9_][A-Za-z0-9._-]{0,127})");
}

bool is_valid_repository(std::string_view path) {
    if (path.empty())
        return false;
    std::size_t start = 0;
    while (true) {
        auto slash = path.find('/', start);
        auto comp = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
        if (!is_valid_component(comp))
            return false;
        if (slash == std::string_view::npos)
            return true;
        start = slash + 1;
    }
}

bool is_loopback_host(std::string_view host_port) {
    std::string_view host = host_port;
    if (!host.empty() && host.front() == '[') {
        auto close = host.find(']');
        host = host.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
        return host == "::1";
    }
    auto colon = host.rfind(':');
    if (colon != std::string_view::npos)
        host = host.substr(0, colon);
    if (host == "localhost")
        return true;
    if (host.starts_with("127.")) {
        int dots = 0;
        for (char c : host) {
            if (c == '.')
                ++dots;
            else if (!std::isdigit(static_cast<unsigned char>(c)))
                return false;
        }
        return dots == 3;
    }
    return false;
}

Result<Reference> Reference::parse(std::string_view text) {
    if (text.empty())
        return std::unexpected(bad(text, "it is empty; expected REGISTRY/REPOSITORY[:TAG][@DIGEST]"));
    if (text.find("://") != std::string_view::npos)
        return std::unexpected(bad(text, "remove the URL scheme; write it as REGISTRY/REPOSITORY[:TAG]"));
    Reference ref;
    std::string_view rest = text;

    if (auto at = rest.find('@'); at != std::string_view::npos) {
        auto d = Digest::parse(rest.substr(at + 1));
        if (!d)
            return std::unexpected(bad(text, d.error().message));
        ref.digest = *d;
        rest = rest.substr(0, at);
    }

    // Split off the registry: the first component, if it looks like a host.
    auto slash = rest.find('/');
    std::string_view domain;
    std::string_view remainder = rest;
    if (slash != std::string_view::npos) {
        auto first = rest.substr(0, slash);
        if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
            first == "localhost" || first.front() == '[') {
            domain = first;
            remainder = rest.substr(slash + 1);
        }
    }

    // The tag is after the last ':' of the path part (domains may have ports, handled above).
    auto colon = remainder.rfind(':');
    std::string_view path = remainder;
    if (colon != std::string_view::npos) {
        auto tag = remainder.substr(colon + 1);
        path = remainder.substr(0, colon);
        if (!is_valid_tag(tag))
            return std::unexpected(bad(text, validate_tag(tag).error().message));
        ref.tag = std::string(tag);
    }

    if (!domain.empty()) {
        if (!is_valid_domain(domain))
            return std::unexpected(bad(text, "'" + std::string(domain) + "' is not a valid registry host[:port]"));
        ref.registry = std::string(domain);
        if (ref.registry == "index.docker.io" || ref.registry == "registry-1.docker.io")
            ref.registry = std::string(k_default_registry);
    } else {
        ref.registry = std::string(k_default_registry);
    }

    if (path.empty())
        return std::unexpected(bad(text, "the repository path is missing"));
    std::string lowered(path);
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lowered != path && is_valid_repository(lowered))
        return std::unexpected(bad(text, "repository names must be lowercase ('" + lowered + "')"));
    if (!is_valid_repository(path))
        return std::unexpected(
            bad(text, "'" + std::string(path) +
                          "' is not a valid repository path (lowercase letters and digits, separated by '.', '_', "
                          "'__', '-' or '/')"));
    ref.repository = std::string(path);
    if (ref.registry == k_default_registry && ref.repository.find('/') == std::string::npos)
        ref.repository = "library/" + ref.repository;
    if (ref.name().size() > k_max_name_length)
        return std::unexpected(bad(text, "the name is longer than 255 characters"));
    return ref;
}

std::string Reference::str() const {
    std::string s = name();
    if (!tag.empty())
        s += ":" + tag;
    if (digest)
        s += "@" + digest->str();
    return s;
}

std::string Reference::api_host() const {
    return registry == k_default_registry ? std::string("registry-1.docker.io") : registry;
}

std::string Reference::manifest_ref() const { return digest ? digest->str() : tag; }

} // namespace tagwarden
