#pragma once

#include <tagwarden/core/error.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

// Where AWS settings come from, as the SDKs read them: environment variables and the shared `config` and
// `credentials` files (profiles), giving the region and each service's endpoint. Pure apart from
// load_shared_config and process_environment; everything else takes the environment as a map so tests
// never depend on the real one.
namespace tagwarden::aws {

// Environment variables by name.
using Environment = std::map<std::string, std::string, std::less<>>;

// The process environment (environ) as a map.
Environment process_environment();
// The value of `name`, or nullopt when it is unset or empty (the SDKs treat both alike).
std::optional<std::string> env_value(const Environment& env, std::string_view name);
// Whether `name` is set to "true" (any case).
bool env_true(const Environment& env, std::string_view name);

// One profile. Keys are lower-cased (botocore's configparser does the same); values are trimmed.
struct Profile {
    std::string name;
    std::map<std::string, std::string, std::less<>> values;
    // The value of `key`, or nullopt when absent or empty.
    [[nodiscard]] std::optional<std::string> get(std::string_view key) const;
};
using ProfileMap = std::map<std::string, Profile, std::less<>>;

enum class ProfileFileKind { config, credentials };

// Parses a shared config or credentials file with botocore's rules: `[name]` sections in the credentials
// file; `[profile name]` and `[default]` in the config file (other config sections, such as `[sso-session x]`
// and `[services x]`, are not profiles and are skipped); `key = value` or `key: value` (the first '=' or ':'
// splits); whole-line comments starting with '#' or ';' (no inline comments: a '#' inside a value is part of
// it); an indented line continues the previous value (nested settings such as `s3 =` blocks). A section
// repeated later adds to and overrides the earlier one.
ProfileMap parse_profile_file(std::string_view text, ProfileFileKind kind);

// Both files, merged per profile (a key in the credentials file wins over the same key in the config file).
struct SharedConfig {
    std::string profile_name = "default"; // AWS_PROFILE, else AWS_DEFAULT_PROFILE, else "default"
    bool profile_from_environment = false;
    std::string config_path; // as resolved, for messages
    std::string credentials_path;
    ProfileMap profiles;

    [[nodiscard]] const Profile* find(std::string_view name) const;
    [[nodiscard]] const Profile* selected() const { return find(profile_name); }
};

SharedConfig merge_shared_config(const ProfileMap& config, const ProfileMap& credentials);

// Reads AWS_CONFIG_FILE (default ~/.aws/config) and AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials),
// "~" expanded from HOME. A missing file is empty; a file that exists but cannot be read is an error.
Result<SharedConfig> load_shared_config(const Environment& env);

// AWS_REGION, else AWS_DEFAULT_REGION, else the selected profile's `region`.
std::optional<std::string> resolve_region(const Environment& env, const SharedConfig* config);

// An AWS service as the clients address it.
struct ServiceInfo {
    std::string_view name;            // for messages: "ECR"
    std::string_view env_id;          // AWS_ENDPOINT_URL_<env_id>
    std::string_view signing_name;    // SigV4 credential scope service
    std::string_view endpoint_prefix; // "api.ecr" -> https://api.ecr.REGION.amazonaws.com
    std::string_view target_prefix;   // X-Amz-Target prefix (JSON protocols)
    std::string_view content_type;    // request Content-Type
};

// From the services' models (metadata: signingName, endpointPrefix, targetPrefix, jsonVersion).
inline constexpr ServiceInfo k_ecr{
    "ECR", "ECR", "ecr", "api.ecr", "AmazonEC2ContainerRegistry_V20150921", "application/x-amz-json-1.1"};
inline constexpr ServiceInfo k_sts{"STS", "STS", "sts",
                                   "sts", "",    "application/x-www-form-urlencoded; charset=utf-8"};
inline constexpr ServiceInfo k_dynamodb{"DynamoDB", "DYNAMODB",          "dynamodb",
                                        "dynamodb", "DynamoDB_20120810", "application/x-amz-json-1.0"};
inline constexpr ServiceInfo k_service_quotas{"Service Quotas",         "SERVICE_QUOTAS",
                                              "servicequotas",          "servicequotas",
                                              "ServiceQuotasV20190624", "application/x-amz-json-1.1"};

// The DNS suffix of the partition `region` belongs to: amazonaws.com, amazonaws.com.cn (cn-*),
// c2s.ic.gov (us-iso-*), sc2s.sgov.gov (us-isob-*), cloud.adc-e.uk (eu-isoe-*), csp.hci.ic.gov (us-isof-*),
// amazonaws.eu (eusc-*).
std::string dns_suffix_for_region(std::string_view region);

// https://PREFIX.REGION.SUFFIX, or https://PREFIX-fips.REGION.SUFFIX when `fips`. STS without a region is
// the global endpoint https://sts.amazonaws.com.
std::string default_endpoint(const ServiceInfo& service, std::string_view region, bool fips = false);

// The endpoint configured for `service`, if any: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else the
// profile's `endpoint_url`; none when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true. A trailing '/' is removed.
std::optional<std::string> configured_endpoint(const ServiceInfo& service, const Environment& env,
                                               const SharedConfig* config = nullptr);

// The endpoint to call: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else the profile's
// `endpoint_url`, else the default (FIPS when AWS_USE_FIPS_ENDPOINT=true).
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true ignores the configured ones. A trailing '/' is removed.
std::string resolve_endpoint(const ServiceInfo& service, std::string_view region, const Environment& env,
                             const SharedConfig* config = nullptr);

} // namespace tagwarden::aws
