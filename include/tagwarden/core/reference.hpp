#pragma once

#include <tagwarden/core/digest.hpp>
#include <tagwarden/core/error.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace tagwarden {

inline constexpr std::string_view k_default_registry = "docker.io";

// An image reference in the docker grammar: [registry[:port]/]path[:tag][@digest].
// A first component is a registry when it contains '.' or ':' or is "localhost"; otherwise the
// registry is docker.io and single-component paths get "library/".
struct Reference {
    std::string registry;    // "docker.io", "127.0.0.1:5000", "[::1]:5000"
    std::string repository;  // "library/alpine", "team/app"
    std::string tag;         // empty when absent
    std::optional<Digest> digest;

    // Returns the reference or Error{invalid_input} naming the part that is wrong and how to fix it.
    static Result<Reference> parse(std::string_view text);

    // "registry/repository"
    [[nodiscard]] std::string name() const { return registry + "/" + repository; }
    // The full canonical form: name[:tag][@digest].
    [[nodiscard]] std::string str() const;
    // The host[:port] that serves the API (registry-1.docker.io for docker.io).
    [[nodiscard]] std::string api_host() const;
    // The tag or digest a manifest request uses; the digest wins when both are set.
    [[nodiscard]] std::string manifest_ref() const;
};

// Whether `tag` matches the OCI tag grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
bool is_valid_tag(std::string_view tag);
// Returns an error naming the problem when `tag` is not a valid OCI tag.
Status validate_tag(std::string_view tag);
// Whether `path` is a valid repository path ([a-z0-9]+((.|_|__|-+)[a-z0-9]+)* components joined by '/').
bool is_valid_repository(std::string_view path);
// Whether host[:port] names a loopback address (localhost, 127.0.0.0/8, ::1).
bool is_loopback_host(std::string_view host_port);

} // namespace tagwarden
