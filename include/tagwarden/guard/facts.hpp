#pragma once

#include <tagwarden/aws/aws_client.hpp>
#include <tagwarden/aws/ecr.hpp>
#include <tagwarden/aws/service_quotas.hpp>
#include <tagwarden/config/config.hpp>
#include <tagwarden/core/reference.hpp>
#include <tagwarden/guard/guard.hpp>
#include <tagwarden/registry/client.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tagwarden::guard {

// The AWS control-plane clients a guarded write to ECR uses; both null for other registries. Made once
// per command by the caller (they share one credential chain) and passed down as values.
struct AwsServices {
    std::shared_ptr<aws::EcrClient> ecr;
    std::shared_ptr<aws::AwsJsonClient> quotas;  // Service Quotas in the registry's region
    // The quotas this run has read, per account and region: shared by the copies of this value (a command
    // shares one across all the registries it talks to), so each quota is read at most once per run.
    std::shared_ptr<aws::QuotaCache> quota_cache = std::make_shared<aws::QuotaCache>();
    [[nodiscard]] bool is_ecr() const { return ecr != nullptr; }
};

// Whether gather_facts() reads the images now or leaves them to read_images().
enum class ImageRead { now, later };

// What the guards read of a repository: ECR GetLifecyclePolicy, DescribeImages (every image, tagged or
// not, every page at maxResults 1000) and Service Quotas (once per account and region per run: the
// quota_cache), read concurrently, each once; elsewhere the policy and quota declared in tagwarden.yaml and the distinct
// manifests of the tag list (a HEAD per tag, so only when a quota is declared or `quota_given`).
// With ImageRead::later the images (DescribeImages; the tag list and its HEADs) are not read: the facts
// say images_pending, and read_images() reads them. A repository that does not exist yet (CREATE_ON_PUSH)
// has no image to read either way.
Result<RepositoryFacts> gather_facts(const Reference& dest, registry::Client& client, const AwsServices& aws,
                                     const config::Config& cfg, bool quota_given, ImageRead images = ImageRead::now);

// The facts of an ECR repository (its policy, every image, the quota). Error{invalid_input} when `aws`
// holds no ECR client (the registry is not ECR).
Result<RepositoryFacts> read_ecr_facts(const Reference& dest, const AwsServices& aws);

// The images of the repository (and their count), keeping the policy and quota already read: their one
// read when gather_facts() left them pending, else read again. The guarded write runs it under the tag
// locks, beside the upload, before the first manifest write. On ECR: DescribeImages, every page
// (ceil(images / 1000) calls), and nothing else; elsewhere the tag list and a HEAD per tag, only when a
// quota is known. True when it read them; false when there was nothing to read (no quota to count against,
// off ECR; a CREATE_ON_PUSH repository the upload has not created yet).
Result<bool> read_images(RepositoryFacts& facts, const Reference& dest, registry::Client& client,
                         const AwsServices& aws, bool quota_given);

// For an ECR repository, the tag immutability it enforces (IMMUTABLE, *_WITH_EXCLUSION); null otherwise.
Result<std::function<bool(const std::string&)>> tag_immutability(const Reference& dest, const AwsServices& aws);

// ECR's lifecycle policy preview of the repository compared with the local simulation of the same images.
Finding compare_with_preview(aws::EcrClient& ecr, const Reference& dest, const RepositoryFacts& facts,
                             policy::TimePoint now);

// ECR: the CREATE_ON_PUSH repository creation template that will create `dest` when something is pushed to
// it (aws::find_creation_template over DescribeRepositoryCreationTemplates); nullopt when none applies.
Result<std::optional<aws::EcrCreationTemplate>> create_on_push_template(const Reference& dest, const AwsServices& aws);

// The facts of an ECR repository that does not exist yet and that `creation_template` will create on push:
// its lifecycle policy, no image, the quota from Service Quotas.
RepositoryFacts template_facts(const Reference& dest, const aws::EcrCreationTemplate& creation_template,
                               const AwsServices& aws);

// One digest per line of `path` (anything after it on the line is ignored): --protect FILE.
Result<std::vector<std::string>> read_protect_file(const std::string& path);

} // namespace tagwarden::guard
