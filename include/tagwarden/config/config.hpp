#pragma once

#include <tagwarden/core/error.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tagwarden::config {

// Settings that are not per-invocation. Precedence: command-line flags, then TAGWARDEN_* environment
// variables, then tagwarden.yaml (in the working directory, or $TAGWARDEN_CONFIG), then these defaults.
struct Config {
    // How an environment-suffixed tag is spelled; {version} and {env} are replaced.
    std::string tag_template = "{version}-{env}";
    // Environments --env accepts; empty accepts any name that makes a valid tag.
    std::vector<std::string> environments;
    // Environments whose tags can never be overwritten, --allow-overwrite or not.
    std::vector<std::string> protected_environments = {"prod"};
    // Lock backend URL; empty means lock::default_lock_url().
    std::string lock_url;
    std::chrono::seconds lock_ttl{30};
    std::chrono::seconds lock_timeout{60};
    // Where run journals are kept (for push --resume); empty means the default state directory.
    std::string state_dir;

    // Guards.
    double quota_threshold = 0.9;             // refuse at or above this share of the image quota
    std::optional<std::int64_t> quota;        // images per repository, where the registry cannot say
    int keep_releases = 10;                   // last K releases of each protected environment kept alive
    std::chrono::hours protection_window{24 * 30};
    bool allow_no_lifecycle_policy = false;   // TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY=true; loud when used
    bool guards_first = false;                // every guard before any upload (TAGWARDEN_GUARDS_FIRST=true)
    // Registries that are not ECR: each repository's lifecycle policy (JSON text) and quota.
    struct Repository {
        std::optional<std::string> lifecycle_policy;
        std::optional<std::int64_t> quota;
    };
    std::map<std::string, Repository> repositories;  // key: "registry/repo"

    std::string loaded_from;  // the file read, or empty
};

// Parses tagwarden.yaml text. Unknown keys are errors (a typo must not silently disable a guard).
Result<Config> parse_config(const std::string& yaml_text, const std::string& origin);

// Loads the configuration: $TAGWARDEN_CONFIG if set (must exist), else ./tagwarden.yaml if present,
// else defaults; then applies TAGWARDEN_* environment variables (TAGWARDEN_LOCK, TAGWARDEN_LOCK_TTL,
// TAGWARDEN_LOCK_TIMEOUT, TAGWARDEN_TAG_TEMPLATE, TAGWARDEN_PROTECTED_ENVIRONMENTS, TAGWARDEN_STATE_DIR).
// `path`, when not empty, replaces both and must exist.
Result<Config> load_config(const std::string& path = {});

// "30", "30s", "5m", "1h" -> seconds.
Result<std::chrono::seconds> parse_duration(const std::string& text, const std::string& what);

// The journal directory: config.state_dir, else $XDG_STATE_HOME/tagwarden, else ~/.local/state/tagwarden.
std::string state_directory(const Config& config);

} // namespace tagwarden::config
