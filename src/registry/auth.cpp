#include <tagwarden/core/base64.hpp>
#include <tagwarden/core/json_fields.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/strings.hpp>
#include <tagwarden/registry/auth.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tagwarden::registry {

using nlohmann::json;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

void skip_spaces(std::string_view s, std::size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
        ++i;
}

// "https://index.docker.io/v1/" -> "index.docker.io"; "http://127.0.0.1:5000/v2/" -> "127.0.0.1:5000".
std::string normalize_registry_key(std::string_view key) {
    auto sep = key.find("://");
    if (sep != std::string_view::npos)
        key = key.substr(sep + 3);
    auto slash = key.find('/');
    if (slash != std::string_view::npos)
        key = key.substr(0, slash);
    auto host = lower(key);
    if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "registry.hub.docker.com")
        return "docker.io";
    return host;
}

// The server name a credential helper is asked about (Docker Hub's historical URL for docker.io).
std::string helper_server_name(std::string_view registry) {
    return registry == "docker.io" ? "https://index.docker.io/v1/" : std::string(registry);
}

} // namespace

Result<std::vector<Challenge>> parse_www_authenticate(std::string_view s) {
    std::vector<Challenge> out;
    std::size_t i = 0;
    auto malformed = [&](const std::string& why) {
        return fail(ErrorKind::registry, "malformed WWW-Authenticate header (" + why + "): " + std::string(s));
    };
    while (i < s.size()) {
        skip_spaces(s, i);
        while (i < s.size() && (s[i] == ',' || s[i] == ' '))
            ++i;
        if (i >= s.size())
            break;
        std::size_t start = i;
        while (i < s.size() && is_token_char(s[i]))
            ++i;
        if (i == start)
            return malformed("expected an auth scheme at offset " + std::to_string(i));
        Challenge c;
        c.scheme = lower(s.substr(start, i - start));
        // auth-params: name=value pairs separated by commas, until the next scheme token (a token not
        // followed by '=').
        while (true) {
            skip_spaces(s, i);
            std::size_t save = i;
            while (i < s.size() && s[i] == ',')
                ++i;
            skip_spaces(s, i);
            std::size_t name_start = i;
            while (i < s.size() && is_token_char(s[i]))
                ++i;
            if (i == name_start) {
                if (i < s.size() && s[i] != ',')
                    return malformed("unexpected character '" + std::string(1, s[i]) + "'");
                break;
            }
            std::string name = lower(s.substr(name_start, i - name_start));
            skip_spaces(s, i);
            if (i >= s.size() || s[i] != '=') {
                // Not a parameter: the start of the next challenge.
                i = save;
                break;
            }
            ++i;  // '='
            skip_spaces(s, i);
            std::string value;
            if (i < s.size() && s[i] == '"') {
                ++i;
                bool closed = false;
                while (i < s.size()) {
                    char ch = s[i++];
                    if (ch == '\\' && i < s.size()) {
                        value.push_back(s[i++]);
                    } else if (ch == '"') {
                        closed = true;
                        break;
                    } else {
                        value.push_back(ch);
                    }
                }
                if (!closed)
                    return malformed("unterminated quoted value for '" + name + "'");
            } else {
                std::size_t v = i;
                while (i < s.size() && s[i] != ',' && s[i] != ' ' && s[i] != '\t')
                    ++i;
                value = std::string(s.substr(v, i - v));
            }
            c.params[name] = value;
        }
        out.push_back(std::move(c));
    }
    if (out.empty())
        return fail(ErrorKind::registry, "empty WWW-Authenticate header");
    return out;
}

Result<std::optional<Credential>> lookup_docker_config(const json& config, std::string_view registry_in,
                                                       const CredentialHelperRunner& runner) {
    if (!config.is_object())
        return fail(ErrorKind::invalid_input, "docker config is not a JSON object");
    std::string registry = normalize_registry_key(registry_in);

    auto from_helper = [&](const std::string& helper, const std::string& source) -> Result<std::optional<Credential>> {
        auto r = runner(helper, helper_server_name(registry));
        if (r && *r)
            (*r)->source = source;
        return r;
    };

    if (auto helpers = config.find("credHelpers"); helpers != config.end() && helpers->is_object()) {
        for (auto& [key, value] : helpers->items())
            if (normalize_registry_key(key) == registry && value.is_string())
                return from_helper(value.get<std::string>(), "docker config credHelpers (" + value.get<std::string>() + ")");
    }
    if (auto store = config.find("credsStore"); store != config.end() && store->is_string() &&
                                                !store->get<std::string>().empty()) {
        auto r = from_helper(store->get<std::string>(), "docker config credsStore (" + store->get<std::string>() + ")");
        if (!r || *r)
            return r;
    }
    if (auto auths = config.find("auths"); auths != config.end() && auths->is_object()) {
        for (auto& [key, entry] : auths->items()) {
            if (normalize_registry_key(key) != registry || !entry.is_object())
                continue;
            Credential c;
            c.source = "docker config auths";
            if (auto a = entry.find("auth"); a != entry.end() && a->is_string() && !a->get<std::string>().empty()) {
                auto decoded = base64_decode(a->get<std::string>());
                if (!decoded)
                    return fail(ErrorKind::invalid_input, "docker config: auths['" + key + "'].auth is not valid base64");
                auto colon = decoded->find(':');
                if (colon == std::string::npos)
                    return fail(ErrorKind::invalid_input,
                                "docker config: auths['" + key + "'].auth must encode 'username:password'");
                c.username = decoded->substr(0, colon);
                c.password = decoded->substr(colon + 1);
            }
            auto username = string_field(entry, "username");
            auto password = string_field(entry, "password");
            auto identity_token = string_field(entry, "identitytoken");
            if (!username || !password || !identity_token)
                return fail(ErrorKind::invalid_input, "docker config: auths['" + key +
                                                          "'] username, password and identitytoken must be strings");
            if (c.username.empty())
                c.username = *username;
            if (c.password.empty())
                c.password = *password;
            c.identity_token = *identity_token;
            if (c.username.empty() && c.password.empty() && c.identity_token.empty())
                continue;
            log::add_secret(c.password);
            log::add_secret(c.identity_token);
            return std::optional<Credential>(c);
        }
    }
    return std::optional<Credential>{};
}

Result<json> parse_docker_config(std::string_view text, std::string_view path) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        return fail(ErrorKind::invalid_input, "docker config " + std::string(path) + " is not valid JSON (" + e.what() +
                                                  "): fix or remove it");
    }
}

std::string docker_config_path() {
    if (auto dir = env_or_empty("DOCKER_CONFIG"); !dir.empty())
        return (std::filesystem::path(dir) / "config.json").string();
    auto home = env_or_empty("HOME");
    return (std::filesystem::path(home.empty() ? "/root" : home) / ".docker" / "config.json").string();
}

void Keychain::set_explicit(std::string registry, Credential credential) {
    log::add_secret(credential.password);
    m_explicit = std::make_pair(normalize_registry_key(registry), std::move(credential));
}

void Keychain::set_provider(std::string registry, Provider provider) {
    m_provider = std::make_pair(normalize_registry_key(registry), std::move(provider));
}

Result<std::optional<Credential>> Keychain::resolve(std::string_view registry) const {
    if (m_explicit && m_explicit->first == normalize_registry_key(registry))
        return std::optional<Credential>(m_explicit->second);
    if (m_provider && m_provider->first == normalize_registry_key(registry)) {
        auto c = m_provider->second();
        if (!c)
            return std::unexpected(c.error());
        log::add_secret(c->password);
        return std::optional<Credential>(*c);
    }
    auto path = docker_config_path();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return std::optional<Credential>{};
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    auto config = parse_docker_config(ss.str(), path);
    if (!config)
        return std::unexpected(config.error());
    auto r = lookup_docker_config(*config, registry, &run_credential_helper);
    if (!r)
        return std::unexpected(r.error().with_context("docker config " + path));
    return r;
}

} // namespace tagwarden::registry
