#pragma once

#include <tagwarden/aws/aws_client.hpp>
#include <tagwarden/core/error.hpp>

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The Amazon ECR control plane (AWS JSON 1.1, target AmazonEC2ContainerRegistry_V20150921, signing name
// "ecr"). Shapes follow the service model (shared/reference/ecr-api-model-appendix.md); timestamps arrive
// as epoch seconds, possibly fractional.
namespace tagwarden::aws {

// A private ECR registry host: ACCOUNT.dkr.ecr[-fips].REGION.SUFFIX or the dual-stack
// ACCOUNT.dkr-ecr[-fips].REGION.on.aws, for SUFFIX in amazonaws.com, amazonaws.com.cn, amazonaws.eu,
// on.aws, on.amazonwebservices.com.cn, sc2s.sgov.gov, c2s.ic.gov, cloud.adc-e.uk, csp.hci.ic.gov
// (amazon-ecr-credential-helper's pattern). A ":port" suffix is ignored.
struct EcrRegistry {
    std::string account_id; // 12 digits
    std::string region;
    bool fips = false;
    bool dual_stack = false; // dkr-ecr host
    std::string dns_suffix;  // "amazonaws.com"

    // The control-plane endpoint for this registry's region and partition
    // (https://api.ecr[-fips].REGION.SUFFIX; dual-stack hosts map to https://ecr[-fips].REGION.api.aws).
    [[nodiscard]] std::string api_endpoint() const;
};
std::optional<EcrRegistry> parse_ecr_host(std::string_view host);

// GetAuthorizationToken, decoded. `password` and `token` are secrets (registered with log::add_secret).
struct EcrAuthorization {
    std::string username; // "AWS"
    std::string password;
    std::string token; // base64("AWS:password"), for "Authorization: Basic <token>"
    Clock::time_point expires_at;
    std::string proxy_endpoint; // https://ACCOUNT.dkr.ecr.REGION.amazonaws.com
};

enum class TagMutability { mutable_tags, immutable, immutable_with_exclusion, mutable_with_exclusion };
std::string_view to_string(TagMutability m);
std::optional<TagMutability> parse_tag_mutability(std::string_view text);

struct TagMutabilityExclusionFilter {
    std::string filter_type; // "WILDCARD"
    std::string filter;      // ^[0-9a-zA-Z._*-]{1,128}$, '*' matches any run of characters
};

// ECR's WILDCARD filter: '*' matches any (possibly empty) run of characters, everything else literally,
// and the whole tag must match.
bool wildcard_match(std::string_view pattern, std::string_view text);

struct EcrRepository {
    std::string arn;
    std::string registry_id;
    std::string name;
    std::string uri;
    std::optional<Clock::time_point> created_at;
    TagMutability tag_mutability = TagMutability::mutable_tags;
    std::vector<TagMutabilityExclusionFilter> exclusion_filters;
    std::string encryption_type; // AES256, KMS, KMS_DSSE
    std::string kms_key;
    bool scan_on_push = false;

    // Whether ECR refuses to move `tag` once it exists: IMMUTABLE -> always; MUTABLE -> never;
    // IMMUTABLE_WITH_EXCLUSION -> unless a filter matches; MUTABLE_WITH_EXCLUSION -> only if a filter
    // matches.
    [[nodiscard]] bool tag_is_immutable(std::string_view tag) const;
};

struct EcrImageId {
    std::string digest; // may be empty when selecting by tag
    std::string tag;    // may be empty
};

struct EcrImageDetail {
    std::string registry_id;
    std::string repository;
    std::string digest;
    std::vector<std::string> tags;
    std::int64_t size_bytes = 0;
    Clock::time_point pushed_at{};
    std::optional<Clock::time_point> last_pulled; // lastRecordedPullTime, absent if never pulled
    std::optional<Clock::time_point> last_archived;  // lastArchivedAt: when it last moved to archive
    std::optional<Clock::time_point> last_activated; // lastActivatedAt: when it was last restored from archive
    std::string manifest_media_type;
    std::string artifact_media_type;
    std::string status; // ACTIVE, ARCHIVED, ACTIVATING ("" when the service did not say: ACTIVE)
    std::string subject_digest;
};

struct EcrImageFailure {
    EcrImageId image;
    std::string code; // ImageNotFound, ImageTagDoesNotMatchDigest, ...
    std::string reason;
};

struct EcrImage {
    EcrImageId id;
    std::string manifest;
    std::string manifest_media_type;
};

struct BatchGetImageResult {
    std::vector<EcrImage> images;
    std::vector<EcrImageFailure> failures;
};

struct BatchDeleteImageResult {
    std::vector<EcrImageId> deleted;
    std::vector<EcrImageFailure> failures;
};

struct PutImageResult {
    EcrImageId id;
    // The tag already pointed at this exact manifest (ImageAlreadyExistsException, confirmed by reading the
    // tag back): nothing changed, which a re-run treats as success.
    bool unchanged = false;
};

struct EcrLifecyclePolicy {
    std::string registry_id;
    std::string text;
    std::optional<Clock::time_point> last_evaluated_at;
};

struct LifecyclePreviewResult {
    std::string digest;
    std::vector<std::string> tags;
    std::optional<Clock::time_point> pushed_at;
    std::string action;               // EXPIRE, TRANSITION
    std::string target_storage_class; // ARCHIVE (TRANSITION)
    int applied_rule_priority = 0;
    std::string storage_class; // ARCHIVE, STANDARD
};

struct LifecyclePreview {
    std::string status; // IN_PROGRESS, COMPLETE, EXPIRED, FAILED
    std::string policy_text;
    std::vector<LifecyclePreviewResult> results;
    std::int64_t expiring_total = 0;
};

// A repository creation template (DescribeRepositoryCreationTemplates): the settings ECR gives a repository it
// creates itself (pull through cache, replication, and a push to a repository that does not exist).
struct EcrCreationTemplate {
    std::string prefix;                     // "team/app" (ECR assumes a trailing '/'), or "ROOT"
    std::string description;
    std::vector<std::string> applied_for;   // CREATE_ON_PUSH, PULL_THROUGH_CACHE, REPLICATION
    std::optional<std::string> lifecycle_policy; // nullopt when the template sets none (also for "")
    TagMutability tag_mutability = TagMutability::mutable_tags;  // MUTABLE when omitted (ECR's default)
    std::vector<TagMutabilityExclusionFilter> exclusion_filters;

    [[nodiscard]] bool applies_for(std::string_view scenario) const;
    // The repository a template with these settings creates, for EcrRepository::tag_is_immutable().
    [[nodiscard]] EcrRepository as_repository(const std::string& name) const;
};

inline constexpr std::string_view k_create_on_push = "CREATE_ON_PUSH";

// The template ECR applies to a new repository `name` created for `scenario`: among the templates applied
// for that scenario, the one with the longest prefix P such that `name` starts with "P/" (ECR assumes a '/'
// after every prefix: "prod" covers "prod/app", not "production/app"), else the ROOT template ("all
// repositories ... that don't have an associated creation template"), else none. Longest-prefix-wins is our
// reading of the documentation (it names no order); a template not applied for `scenario` is skipped.
const EcrCreationTemplate* find_creation_template(const std::vector<EcrCreationTemplate>& templates,
                                                  std::string_view name, std::string_view scenario);

struct DescribeImagesOptions {
    std::vector<EcrImageId> image_ids; // empty: every image (all pages)
    std::string tag_status;            // TAGGED, UNTAGGED, ANY; empty: the service default
    std::string image_status;          // ACTIVE, ARCHIVED, ACTIVATING, ANY; empty: ACTIVE only
    int page_size = 1000;              // maxResults (1-1000) when listing
};

// Pure parsers of response members (exposed for tests).
Result<EcrRepository> parse_repository(const nlohmann::json& j);
Result<EcrImageDetail> parse_image_detail(const nlohmann::json& j);
Result<EcrAuthorization> parse_authorization_data(const nlohmann::json& j);
Result<LifecyclePreviewResult> parse_preview_result(const nlohmann::json& j);
Result<EcrCreationTemplate> parse_creation_template(const nlohmann::json& j);

class EcrClient {
  public:
    explicit EcrClient(std::shared_ptr<AwsJsonClient> client, std::string registry_id = {});

    // The registry's token: cached until 5 minutes before expiresAt (a token already past its expiry is
    // fetched each time).
    Result<EcrAuthorization> get_authorization_token();
    // All repositories (every page) or the named ones.
    Result<std::vector<EcrRepository>> describe_repositories(const std::vector<std::string>& names = {});
    Result<EcrRepository> describe_repository(const std::string& name);
    // DescribeRepositoryCreationTemplates: every template (every page), or those of `prefixes`.
    Result<std::vector<EcrCreationTemplate>> describe_repository_creation_templates(
        const std::vector<std::string>& prefixes = {});
    // Every page (nextToken) unless image ids are given.
    Result<std::vector<EcrImageDetail>> describe_images(const std::string& repository,
                                                        const DescribeImagesOptions& options = {});
    // Every page: one entry per digest/tag pair (an untagged image once, without a tag).
    Result<std::vector<EcrImageId>> list_images(const std::string& repository,
                                                const std::string& tag_status = {});
    Result<BatchGetImageResult> batch_get_image(const std::string& repository,
                                                const std::vector<EcrImageId>& ids,
                                                const std::vector<std::string>& accepted_media_types = {});
    // PutImage. ImageTagAlreadyExistsException (immutable tag) -> Error{tag_conflict};
    // ImageAlreadyExistsException -> success with unchanged=true when the tag holds exactly `manifest`,
    // Error{tag_conflict} otherwise; LimitExceededException -> Error{registry} naming the quota.
    Result<PutImageResult> put_image(const std::string& repository, const std::string& manifest,
                                     const std::string& media_type, const std::string& tag,
                                     const std::string& digest = {});
    Result<BatchDeleteImageResult> batch_delete_image(const std::string& repository,
                                                      const std::vector<EcrImageId>& ids);
    // nullopt when the repository has no policy (LifecyclePolicyNotFoundException).
    Result<std::optional<EcrLifecyclePolicy>> get_lifecycle_policy(const std::string& repository);
    // Starts a preview of `policy_text` (empty: the repository's policy). Returns the status.
    Result<std::string> start_lifecycle_policy_preview(const std::string& repository,
                                                       const std::string& policy_text = {});
    // One status read with every result page (maxResults 100).
    Result<LifecyclePreview> get_lifecycle_policy_preview(const std::string& repository,
                                                          const std::vector<EcrImageId>& ids = {});
    // Polls get_lifecycle_policy_preview until its status is not IN_PROGRESS, or `timeout`.
    Result<LifecyclePreview> wait_lifecycle_policy_preview(const std::string& repository,
                                                           const std::vector<EcrImageId>& ids,
                                                           std::chrono::milliseconds timeout,
                                                           std::chrono::milliseconds interval);

    [[nodiscard]] AwsJsonClient& api() { return *m_client; }

  private:
    nlohmann::json base(const std::string& repository) const;

    std::shared_ptr<AwsJsonClient> m_client;
    std::string m_registry_id;
    std::mutex m_mutex;
    std::optional<EcrAuthorization> m_token;
};

// An ECR client for `registry` (its region and partition endpoint unless
// AWS_ENDPOINT_URL_ECR/AWS_ENDPOINT_URL override it) with credentials from `chain`.
Result<std::unique_ptr<EcrClient>> make_ecr_client(const EcrRegistry& registry,
                                                   std::shared_ptr<CredentialChain> chain,
                                                   std::shared_ptr<http::Transport> transport);

} // namespace tagwarden::aws
