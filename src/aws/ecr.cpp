#include <tagwarden/aws/ecr.hpp>

#include <tagwarden/aws/wire.hpp>
#include <tagwarden/core/base64.hpp>
#include <tagwarden/core/log.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <cctype>
#include <regex>
#include <thread>

namespace tagwarden::aws {

namespace {

using nlohmann::json;

constexpr auto k_token_refresh_window = std::chrono::minutes(5);

std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> strings(const json& j, const char* key) {
    std::vector<std::string> out;
    auto it = j.find(key);
    if (it != j.end() && it->is_array())
        for (const auto& v : *it)
            if (v.is_string())
                out.push_back(v.get<std::string>());
    return out;
}

Result<std::optional<Clock::time_point>> optional_time(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null())
        return std::optional<Clock::time_point>();
    auto t = parse_epoch_seconds(*it);
    if (!t)
        return std::unexpected(t.error().with_context(key));
    return std::optional<Clock::time_point>(*t);
}

json image_id_json(const EcrImageId& id) {
    json j = json::object();
    if (!id.digest.empty())
        j["imageDigest"] = id.digest;
    if (!id.tag.empty())
        j["imageTag"] = id.tag;
    return j;
}

json image_ids_json(const std::vector<EcrImageId>& ids) {
    json out = json::array();
    for (const auto& id : ids)
        out.push_back(image_id_json(id));
    return out;
}

EcrImageId parse_image_id(const json& j) {
    if (!j.is_object())
        return {};
    return {str(j, "imageDigest"), str(j, "imageTag")};
}

std::vector<EcrImageFailure> parse_failures(const json& j) {
    std::vector<EcrImageFailure> out;
    auto it = j.find("failures");
    if (it == j.end() || !it->is_array())
        return out;
    for (const auto& f : *it) {
        EcrImageFailure failure;
        if (auto id = f.find("imageId"); id != f.end())
            failure.image = parse_image_id(*id);
        failure.code = str(f, "failureCode");
        failure.reason = str(f, "failureReason");
        out.push_back(std::move(failure));
    }
    return out;
}

const json& array_member(const json& j, const char* key) {
    static const json empty = json::array();
    auto it = j.find(key);
    return it != j.end() && it->is_array() ? *it : empty;
}

std::string next_token(const json& j) {
    return str(j, "nextToken");
}

// Calls `operation` with `input`, then, when `paged`, again with each nextToken the answers carry, handing
// every answer to `on_page`. (Requests for explicit ids or names are not paged.)
Status for_each_page(AwsJsonClient& client, const char* operation, json input, bool paged,
                     const std::function<Status(const json&)>& on_page) {
    std::string token;
    do {
        if (!token.empty())
            input["nextToken"] = token;
        auto page = client.call(operation, input);
        if (!page)
            return std::unexpected(page.error());
        TW_TRY(on_page(*page));
        token = paged ? next_token(*page) : std::string();
    } while (!token.empty());
    return {};
}

} // namespace

std::string EcrRegistry::api_endpoint() const {
    std::string service = fips ? "ecr-fips" : "ecr";
    if (dual_stack) {
        std::string suffix =
            dns_suffix == "on.amazonwebservices.com.cn" ? "api.amazonwebservices.com.cn" : "api.aws";
        return "https://" + service + "." + region + "." + suffix;
    }
    return "https://api." + service + "." + region + "." + dns_suffix;
}

std::optional<EcrRegistry> parse_ecr_host(std::string_view host) {
    std::string h(host);
    if (auto scheme = h.find("://"); scheme != std::string::npos)
        h = h.substr(scheme + 3);
    h = h.substr(0, h.find('/'));
    if (auto colon = h.rfind(':'); colon != std::string::npos)
        h = h.substr(0, colon);
    std::transform(h.begin(), h.end(), h.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    static const std::regex pattern(
        R"(^(\d{12})\.dkr([.-])ecr(-fips)?\.([a-z0-9][a-z0-9_-]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$)");
    std::smatch m;
    if (!std::regex_match(h, m, pattern))
        return std::nullopt;
    EcrRegistry r;
    r.account_id = m[1];
    r.dual_stack = m[2] == "-";
    r.fips = m[3].matched;
    r.region = m[4];
    r.dns_suffix = m[5];
    // The dual-stack form (dkr-ecr) lives under on.aws; the dotted form under the partition suffix.
    if (r.dual_stack != r.dns_suffix.starts_with("on."))
        return std::nullopt;
    return r;
}

std::string_view to_string(TagMutability m) {
    switch (m) {
    case TagMutability::mutable_tags:
        return "MUTABLE";
    case TagMutability::immutable:
        return "IMMUTABLE";
    case TagMutability::immutable_with_exclusion:
        return "IMMUTABLE_WITH_EXCLUSION";
    case TagMutability::mutable_with_exclusion:
        return "MUTABLE_WITH_EXCLUSION";
    }
    return "MUTABLE";
}

std::optional<TagMutability> parse_tag_mutability(std::string_view text) {
    if (text == "MUTABLE")
        return TagMutability::mutable_tags;
    if (text == "IMMUTABLE")
        return TagMutability::immutable;
    if (text == "IMMUTABLE_WITH_EXCLUSION")
        return TagMutability::immutable_with_exclusion;
    if (text == "MUTABLE_WITH_EXCLUSION")
        return TagMutability::mutable_with_exclusion;
    return std::nullopt;
}

bool wildcard_match(std::string_view pattern, std::string_view text) {
    // Iterative glob with backtracking to the last '*'.
    std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

bool EcrRepository::tag_is_immutable(std::string_view tag) const {
    auto excluded = [&] {
        return std::any_of(exclusion_filters.begin(), exclusion_filters.end(),
                           [&](const auto& f) { return wildcard_match(f.filter, tag); });
    };
    switch (tag_mutability) {
    case TagMutability::mutable_tags:
        return false;
    case TagMutability::immutable:
        return true;
    case TagMutability::immutable_with_exclusion:
        return !excluded();
    case TagMutability::mutable_with_exclusion:
        return excluded();
    }
    return false;
}

Result<EcrRepository> parse_repository(const json& j) {
    if (!j.is_object())
        return fail(ErrorKind::registry, "ECR repository is not an object");
    EcrRepository r;
    r.arn = str(j, "repositoryArn");
    r.registry_id = str(j, "registryId");
    r.name = str(j, "repositoryName");
    r.uri = str(j, "repositoryUri");
    auto created = optional_time(j, "createdAt");
    if (!created)
        return std::unexpected(created.error());
    r.created_at = *created;
    auto mutability = str(j, "imageTagMutability");
    if (!mutability.empty()) {
        auto m = parse_tag_mutability(mutability);
        if (!m)
            return fail(ErrorKind::registry,
                        "ECR repository " + r.name + ": unknown imageTagMutability " + mutability);
        r.tag_mutability = *m;
    }
    for (const auto& f : array_member(j, "imageTagMutabilityExclusionFilters"))
        r.exclusion_filters.push_back({str(f, "filterType"), str(f, "filter")});
    if (auto enc = j.find("encryptionConfiguration"); enc != j.end() && enc->is_object()) {
        r.encryption_type = str(*enc, "encryptionType");
        r.kms_key = str(*enc, "kmsKey");
    }
    if (auto scan = j.find("imageScanningConfiguration"); scan != j.end() && scan->is_object()) {
        auto it = scan->find("scanOnPush");
        r.scan_on_push = it != scan->end() && it->is_boolean() && it->get<bool>();
    }
    return r;
}

bool EcrCreationTemplate::applies_for(std::string_view scenario) const {
    return std::find(applied_for.begin(), applied_for.end(), scenario) != applied_for.end();
}

EcrRepository EcrCreationTemplate::as_repository(const std::string& name) const {
    EcrRepository r;
    r.name = name;
    r.tag_mutability = tag_mutability;
    r.exclusion_filters = exclusion_filters;
    return r;
}

const EcrCreationTemplate* find_creation_template(const std::vector<EcrCreationTemplate>& templates,
                                                  std::string_view name, std::string_view scenario) {
    const EcrCreationTemplate* best = nullptr;
    const EcrCreationTemplate* root = nullptr;
    std::size_t best_length = 0;
    for (const auto& t : templates) {
        if (!t.applies_for(scenario))
            continue;
        if (t.prefix == "ROOT") {
            root = &t;
            continue;
        }
        std::string_view prefix = t.prefix;
        while (!prefix.empty() && prefix.back() == '/')
            prefix.remove_suffix(1);
        if (prefix.empty() || name.size() <= prefix.size() || !name.starts_with(prefix) ||
            name[prefix.size()] != '/')
            continue;
        if (!best || prefix.size() > best_length) {
            best = &t;
            best_length = prefix.size();
        }
    }
    return best ? best : root;
}

Result<EcrCreationTemplate> parse_creation_template(const json& j) {
    if (!j.is_object())
        return fail(ErrorKind::registry, "ECR repository creation template is not an object");
    EcrCreationTemplate t;
    t.prefix = str(j, "prefix");
    if (t.prefix.empty())
        return fail(ErrorKind::registry, "ECR repository creation template without a prefix");
    t.description = str(j, "description");
    t.applied_for = strings(j, "appliedFor");
    if (auto policy = str(j, "lifecyclePolicy"); !policy.empty())
        t.lifecycle_policy = policy;
    auto mutability = str(j, "imageTagMutability");
    if (!mutability.empty()) {
        auto m = parse_tag_mutability(mutability);
        if (!m)
            return fail(ErrorKind::registry,
                        "ECR repository creation template " + t.prefix + ": unknown imageTagMutability " + mutability);
        t.tag_mutability = *m;
    }
    for (const auto& f : array_member(j, "imageTagMutabilityExclusionFilters"))
        t.exclusion_filters.push_back({str(f, "filterType"), str(f, "filter")});
    return t;
}

Result<EcrImageDetail> parse_image_detail(const json& j) {
    if (!j.is_object())
        return fail(ErrorKind::registry, "ECR image detail is not an object");
    EcrImageDetail d;
    d.registry_id = str(j, "registryId");
    d.repository = str(j, "repositoryName");
    d.digest = str(j, "imageDigest");
    d.tags = strings(j, "imageTags");
    if (auto size = j.find("imageSizeInBytes"); size != j.end() && size->is_number())
        d.size_bytes = size->get<std::int64_t>();
    auto pushed = optional_time(j, "imagePushedAt");
    if (!pushed)
        return std::unexpected(pushed.error().with_context("image " + d.digest));
    if (*pushed)
        d.pushed_at = **pushed;
    auto pulled = optional_time(j, "lastRecordedPullTime");
    if (!pulled)
        return std::unexpected(pulled.error().with_context("image " + d.digest));
    d.last_pulled = *pulled;
    auto archived = optional_time(j, "lastArchivedAt");
    if (!archived)
        return std::unexpected(archived.error().with_context("image " + d.digest));
    d.last_archived = *archived;
    auto activated = optional_time(j, "lastActivatedAt");
    if (!activated)
        return std::unexpected(activated.error().with_context("image " + d.digest));
    d.last_activated = *activated;
    d.manifest_media_type = str(j, "imageManifestMediaType");
    d.artifact_media_type = str(j, "artifactMediaType");
    d.status = str(j, "imageStatus");
    d.subject_digest = str(j, "subjectManifestDigest");
    return d;
}

Result<EcrAuthorization> parse_authorization_data(const json& j) {
    if (!j.is_object())
        return fail(ErrorKind::registry, "ECR authorizationData entry is not an object");
    EcrAuthorization a;
    a.token = str(j, "authorizationToken");
    if (a.token.empty())
        return fail(ErrorKind::auth, "ECR GetAuthorizationToken returned no authorizationToken");
    log::add_secret(a.token);
    auto decoded = base64_decode(a.token);
    if (!decoded)
        return fail(ErrorKind::auth, "ECR authorization token is not base64");
    auto colon = decoded->find(':');
    if (colon == std::string::npos)
        return fail(ErrorKind::auth, "ECR authorization token is not \"user:password\"");
    a.username = decoded->substr(0, colon);
    a.password = decoded->substr(colon + 1);
    log::add_secret(a.password);
    auto expires = optional_time(j, "expiresAt");
    if (!expires)
        return std::unexpected(expires.error());
    // Without expiresAt, assume the documented 12 hours.
    a.expires_at = expires->value_or(Clock::now() + std::chrono::hours(12));
    a.proxy_endpoint = str(j, "proxyEndpoint");
    return a;
}

Result<LifecyclePreviewResult> parse_preview_result(const json& j) {
    if (!j.is_object())
        return fail(ErrorKind::registry, "ECR preview result is not an object");
    LifecyclePreviewResult r;
    r.digest = str(j, "imageDigest");
    r.tags = strings(j, "imageTags");
    auto pushed = optional_time(j, "imagePushedAt");
    if (!pushed)
        return std::unexpected(pushed.error());
    r.pushed_at = *pushed;
    if (auto action = j.find("action"); action != j.end() && action->is_object()) {
        r.action = str(*action, "type");
        r.target_storage_class = str(*action, "targetStorageClass");
    }
    if (auto prio = j.find("appliedRulePriority"); prio != j.end() && prio->is_number_integer())
        r.applied_rule_priority = prio->get<int>();
    r.storage_class = str(j, "storageClass");
    return r;
}

EcrClient::EcrClient(std::shared_ptr<AwsJsonClient> client, std::string registry_id)
    : m_client(std::move(client)), m_registry_id(std::move(registry_id)) {}

json EcrClient::base(const std::string& repository) const {
    json j = json::object();
    if (!m_registry_id.empty())
        j["registryId"] = m_registry_id;
    if (!repository.empty())
        j["repositoryName"] = repository;
    return j;
}

Result<EcrAuthorization> EcrClient::get_authorization_token() {
    std::lock_guard lock(m_mutex);
    if (m_token && Clock::now() + k_token_refresh_window < m_token->expires_at)
        return *m_token;
    json input = json::object();
    if (!m_registry_id.empty())
        input["registryIds"] = json::array({m_registry_id});
    auto out = m_client->call("GetAuthorizationToken", input);
    if (!out)
        return std::unexpected(out.error());
    const auto& data = array_member(*out, "authorizationData");
    if (data.empty())
        return fail(ErrorKind::auth, "ECR GetAuthorizationToken returned no authorizationData");
    auto auth = parse_authorization_data(data.front());
    if (!auth)
        return std::unexpected(auth.error());
    m_token = *auth;
    return *auth;
}

Result<std::vector<EcrRepository>> EcrClient::describe_repositories(const std::vector<std::string>& names) {
    std::vector<EcrRepository> out;
    json input = base("");
    if (!names.empty())
        input["repositoryNames"] = names;
    else
        input["maxResults"] = 1000;
    TW_TRY(for_each_page(*m_client, "DescribeRepositories", std::move(input), names.empty(), [&](const json& page) -> Status {
        for (const auto& r : array_member(page, "repositories")) {
            auto repo = parse_repository(r);
            if (!repo)
                return std::unexpected(repo.error());
            out.push_back(std::move(*repo));
        }
        return {};
    }));
    return out;
}

Result<EcrRepository> EcrClient::describe_repository(const std::string& name) {
    auto repos = describe_repositories({name});
    if (!repos)
        return std::unexpected(repos.error());
    for (auto& r : *repos)
        if (r.name == name)
            return std::move(r);
    return fail(ErrorKind::not_found, "ECR repository " + name + " was not described");
}

Result<std::vector<EcrCreationTemplate>>
EcrClient::describe_repository_creation_templates(const std::vector<std::string>& prefixes) {
    std::vector<EcrCreationTemplate> out;
    // The operation takes no registryId: it describes the caller's own registry.
    json input = json::object();
    if (!prefixes.empty())
        input["prefixes"] = prefixes;
    input["maxResults"] = 1000;
    TW_TRY(for_each_page(*m_client, "DescribeRepositoryCreationTemplates", std::move(input), true,
                         [&](const json& page) -> Status {
                             for (const auto& t : array_member(page, "repositoryCreationTemplates")) {
                                 auto parsed = parse_creation_template(t);
                                 if (!parsed)
                                     return std::unexpected(parsed.error());
                                 out.push_back(std::move(*parsed));
                             }
                             return {};
                         }));
    return out;
}

Result<std::vector<EcrImageDetail>> EcrClient::describe_images(const std::string& repository,
                                                               const DescribeImagesOptions& options) {
    std::vector<EcrImageDetail> out;
    json input = base(repository);
    if (!options.image_ids.empty())
        input["imageIds"] = image_ids_json(options.image_ids);
    else
        input["maxResults"] = std::clamp(options.page_size, 1, 1000);
    json filter = json::object();
    if (!options.tag_status.empty())
        filter["tagStatus"] = options.tag_status;
    if (!options.image_status.empty())
        filter["imageStatus"] = options.image_status;
    if (!filter.empty())
        input["filter"] = filter;
    TW_TRY(for_each_page(*m_client, "DescribeImages", std::move(input), options.image_ids.empty(),
                         [&](const json& page) -> Status {
                             for (const auto& d : array_member(page, "imageDetails")) {
                                 auto detail = parse_image_detail(d);
                                 if (!detail)
                                     return std::unexpected(
                                         detail.error().with_context("ECR DescribeImages " + repository));
                                 out.push_back(std::move(*detail));
                             }
                             return {};
                         }));
    return out;
}

Result<std::vector<EcrImageId>> EcrClient::list_images(const std::string& repository,
                                                       const std::string& tag_status) {
    std::vector<EcrImageId> out;
    json input = base(repository);
    input["maxResults"] = 1000;
    if (!tag_status.empty())
        input["filter"] = {{"tagStatus", tag_status}};
    TW_TRY(for_each_page(*m_client, "ListImages", std::move(input), true, [&](const json& page) -> Status {
        for (const auto& id : array_member(page, "imageIds"))
            out.push_back(parse_image_id(id));
        return {};
    }));
    return out;
}

Result<BatchGetImageResult> EcrClient::batch_get_image(const std::string& repository,
                                                       const std::vector<EcrImageId>& ids,
                                                       const std::vector<std::string>& accepted_media_types) {
    json input = base(repository);
    input["imageIds"] = image_ids_json(ids);
    if (!accepted_media_types.empty())
        input["acceptedMediaTypes"] = accepted_media_types;
    auto out = m_client->call("BatchGetImage", input);
    if (!out)
        return std::unexpected(out.error());
    BatchGetImageResult result;
    for (const auto& image : array_member(*out, "images")) {
        EcrImage i;
        if (auto id = image.find("imageId"); id != image.end())
            i.id = parse_image_id(*id);
        i.manifest = str(image, "imageManifest");
        i.manifest_media_type = str(image, "imageManifestMediaType");
        result.images.push_back(std::move(i));
    }
    result.failures = parse_failures(*out);
    return result;
}

Result<PutImageResult> EcrClient::put_image(const std::string& repository, const std::string& manifest,
                                            const std::string& media_type, const std::string& tag,
                                            const std::string& digest) {
    json input = base(repository);
    input["imageManifest"] = manifest;
    if (!media_type.empty())
        input["imageManifestMediaType"] = media_type;
    if (!tag.empty())
        input["imageTag"] = tag;
    if (!digest.empty())
        input["imageDigest"] = digest;
    auto out = m_client->call("PutImage", input);
    if (out) {
        PutImageResult result;
        if (auto image = out->find("image"); image != out->end() && image->is_object())
            if (auto id = image->find("imageId"); id != image->end())
                result.id = parse_image_id(*id);
        return result;
    }
    Error e = out.error();
    const std::string where = repository + (tag.empty() ? "" : ":" + tag);
    if (e.registry_code == "ImageTagAlreadyExistsException") {
        e.kind = ErrorKind::tag_conflict;
        e.message = "ECR refused to move the immutable tag " + where + ": " + e.message;
        return std::unexpected(e);
    }
    if (e.registry_code == "ImageAlreadyExistsException" && !tag.empty()) {
        // Real ECR: the same manifest is already under this tag. Confirm by reading the tag back (moto raises
        // this exception for an immutable tag that points elsewhere, too).
        auto current = batch_get_image(repository, {{"", tag}});
        if (current && !current->images.empty() && current->images.front().manifest == manifest) {
            PutImageResult result;
            result.id = current->images.front().id;
            result.unchanged = true;
            return result;
        }
        e.kind = ErrorKind::tag_conflict;
        e.message = "ECR: the tag " + where + " already exists with another manifest: " + e.message;
        return std::unexpected(e);
    }
    if (e.registry_code == "LimitExceededException") {
        e.message = "ECR PutImage " + where +
                    ": a service quota was reached (images per repository L-03A36CE1, or tags per image): " +
                    e.message;
        return std::unexpected(e);
    }
    return std::unexpected(e);
}

Result<BatchDeleteImageResult> EcrClient::batch_delete_image(const std::string& repository,
                                                             const std::vector<EcrImageId>& ids) {
    json input = base(repository);
    input["imageIds"] = image_ids_json(ids);
    auto out = m_client->call("BatchDeleteImage", input);
    if (!out)
        return std::unexpected(out.error());
    BatchDeleteImageResult result;
    for (const auto& id : array_member(*out, "imageIds"))
        result.deleted.push_back(parse_image_id(id));
    result.failures = parse_failures(*out);
    return result;
}

Result<std::optional<EcrLifecyclePolicy>> EcrClient::get_lifecycle_policy(const std::string& repository) {
    auto out = m_client->call("GetLifecyclePolicy", base(repository));
    if (!out) {
        if (out.error().registry_code == "LifecyclePolicyNotFoundException")
            return std::optional<EcrLifecyclePolicy>();
        return std::unexpected(out.error());
    }
    EcrLifecyclePolicy policy;
    policy.registry_id = str(*out, "registryId");
    policy.text = str(*out, "lifecyclePolicyText");
    auto evaluated = optional_time(*out, "lastEvaluatedAt");
    if (!evaluated)
        return std::unexpected(evaluated.error());
    policy.last_evaluated_at = *evaluated;
    return std::optional<EcrLifecyclePolicy>(std::move(policy));
}

Result<std::string> EcrClient::start_lifecycle_policy_preview(const std::string& repository,
                                                              const std::string& policy_text) {
    json input = base(repository);
    if (!policy_text.empty())
        input["lifecyclePolicyText"] = policy_text;
    auto out = m_client->call("StartLifecyclePolicyPreview", input);
    if (!out)
        return std::unexpected(out.error());
    return str(*out, "status");
}

Result<LifecyclePreview> EcrClient::get_lifecycle_policy_preview(const std::string& repository,
                                                                 const std::vector<EcrImageId>& ids) {
    LifecyclePreview preview;
    json input = base(repository);
    if (!ids.empty())
        input["imageIds"] = image_ids_json(ids);
    else
        input["maxResults"] = 100;
    TW_TRY(for_each_page(*m_client, "GetLifecyclePolicyPreview", std::move(input), ids.empty(),
                         [&](const json& page) -> Status {
                             preview.status = str(page, "status");
                             preview.policy_text = str(page, "lifecyclePolicyText");
                             for (const auto& r : array_member(page, "previewResults")) {
                                 auto result = parse_preview_result(r);
                                 if (!result)
                                     return std::unexpected(result.error());
                                 preview.results.push_back(std::move(*result));
                             }
                             if (auto summary = page.find("summary"); summary != page.end() && summary->is_object())
                                 if (auto n = summary->find("expiringImageTotalCount");
                                     n != summary->end() && n->is_number_integer())
                                     preview.expiring_total = n->get<std::int64_t>();
                             return {};
                         }));
    return preview;
}

Result<LifecyclePreview> EcrClient::wait_lifecycle_policy_preview(const std::string& repository,
                                                                  const std::vector<EcrImageId>& ids,
                                                                  std::chrono::milliseconds timeout,
                                                                  std::chrono::milliseconds interval) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        auto preview = get_lifecycle_policy_preview(repository, ids);
        if (!preview || preview->status != "IN_PROGRESS")
            return preview;
        if (std::chrono::steady_clock::now() + interval > deadline)
            return fail(ErrorKind::registry, "ECR lifecycle policy preview of " + repository +
                                                 " still IN_PROGRESS after " +
                                                 std::to_string(timeout.count() / 1000) + " s");
        std::this_thread::sleep_for(interval);
    }
}

Result<std::unique_ptr<EcrClient>> make_ecr_client(const EcrRegistry& registry,
                                                   std::shared_ptr<CredentialChain> chain,
                                                   std::shared_ptr<http::Transport> transport) {
    std::string endpoint = chain->configured_endpoint(k_ecr).value_or(registry.api_endpoint());
    auto client = make_aws_client(k_ecr, std::move(chain), std::move(transport), registry.region, endpoint);
    if (!client)
        return std::unexpected(client.error());
    return std::make_unique<EcrClient>(std::shared_ptr<AwsJsonClient>(std::move(*client)),
                                       registry.account_id);
}

} // namespace tagwarden::aws
