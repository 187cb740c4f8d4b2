#pragma once

#include <tagwarden/core/base64.hpp>
#include <tagwarden/core/error.hpp>

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::registry {

// One challenge of a WWW-Authenticate header: `Bearer realm="...",service="...",scope="..."`.
struct Challenge {
    std::string scheme;                         // lowercased: "basic", "bearer"
    std::map<std::string, std::string> params;  // keys lowercased, values unquoted
    [[nodiscard]] std::string param(const std::string& key) const {
        auto it = params.find(key);
        return it == params.end() ? std::string{} : it->second;
    }
};

// Parses a WWW-Authenticate value that may hold several challenges, quoted values with commas and
// escapes, and token68 forms. Returns Error{registry} when the header is malformed.
Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header);

struct Credential {
    std::string username;
    std::string password;
    std::string identity_token;  // an OAuth2 refresh token (docker config "identitytoken", helper "<token>")
    std::string source;          // where it came from, for messages: "--username", "docker config auths", ...
};

// Runs `docker-credential-<helper> get` with `server` on stdin. Returns the credential, nullopt when the
// helper has none for that server, or an Error naming the helper when it cannot be run or misbehaves.
using CredentialHelperRunner =
    std::function<Result<std::optional<Credential>>(const std::string& helper, const std::string& server)>;
Result<std::optional<Credential>> run_credential_helper(const std::string& helper, const std::string& server);

// Looks `registry` (host[:port], "docker.io" for Docker Hub) up in a parsed docker config.json:
// credHelpers[registry], then credsStore, then auths (keys may carry a scheme and path, e.g.
// "https://index.docker.io/v1/"). Returns nullopt when the config has nothing for it.
Result<std::optional<Credential>> lookup_docker_config(const nlohmann::json& config, std::string_view registry,
                                                       const CredentialHelperRunner& runner);

// Parses the text of a docker config.json read from `path` (named in the error). Returns the document, or
// Error{invalid_input} when it is not valid JSON.
Result<nlohmann::json> parse_docker_config(std::string_view text, std::string_view path);

// The path of config.json: $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
std::string docker_config_path();

// Credentials in the order of their sources: explicit (--username/--password-stdin) for the target
// registry, then the docker config, then none (anonymous).
class Keychain {
public:
    Keychain() = default;
    // Explicit credentials apply to `registry` only.
    void set_explicit(std::string registry, Credential credential);
    // A credential source for `registry` consulted after explicit credentials and before the docker config
    // (ECR: GetAuthorizationToken).
    using Provider = std::function<Result<Credential>()>;
    void set_provider(std::string registry, Provider provider);
    // Returns the credential for `registry`, nullopt for anonymous, or an Error when the docker config is
    // unreadable or a credential helper fails.
    [[nodiscard]] Result<std::optional<Credential>> resolve(std::string_view registry) const;

private:
    std::optional<std::pair<std::string, Credential>> m_explicit;
    std::optional<std::pair<std::string, Provider>> m_provider;
};

} // namespace tagwarden::registry
