#pragma once

#include <tagwarden/core/error.hpp>

#include <optional>
#include <string>
#include <vector>

namespace tagwarden::push {

// How environment-suffixed tags are named and which environments are protected.
struct TagNaming {
    std::string tag_template = "{version}-{env}";
    std::vector<std::string> environments;            // allowed --env values; empty allows any
    std::vector<std::string> protected_environments = {"prod"};
};

// "1.4.2" + "dev" -> "1.4.2-dev". Returns Error{invalid_input} for an unknown environment or a result that
// is not a valid OCI tag (naming the part to change).
Result<std::string> expand_tag(const TagNaming& naming, const std::string& version, const std::string& env);

// The environment a tag belongs to (one of the configured or protected environments whose template
// expansion matches it), or nullopt for a plain tag.
std::optional<std::string> environment_of(const TagNaming& naming, const std::string& tag);

// Whether the tag belongs to a protected environment and so can never be moved.
bool is_protected_tag(const TagNaming& naming, const std::string& tag);

} // namespace tagwarden::push
