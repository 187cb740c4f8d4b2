#pragma once

#include <tagwarden/aws/aws_client.hpp>
#include <tagwarden/core/error.hpp>

#include <map>
#include <mutex>
#include <string>
#include <string_view>

// Service Quotas (AWS JSON 1.1, target ServiceQuotasV20190624, signing name "servicequotas"), for ECR's
// images-per-repository quota.
namespace tagwarden::aws {

inline constexpr std::string_view k_ecr_service_code = "ecr";
inline constexpr std::string_view k_images_per_repository_quota = "L-03A36CE1";
// The documented default of "Images per repository" (ECR service-quotas page, 2026: "Each supported
// Region: 100,000"; it was 10,000 from 2019 and 20,000 in most Regions in 2025 — see ecr-api.md §3.2).
inline constexpr double k_documented_images_per_repository = 100000;

enum class QuotaSource {
    applied,           // GetServiceQuota: the value in force for the account (adjusted or default)
    aws_default,       // GetAWSDefaultServiceQuota, when the applied value could not be read
    documented_default // k_documented_images_per_repository, when neither call answered
};
std::string_view to_string(QuotaSource source);

struct QuotaValue {
    double value = 0;
    QuotaSource source = QuotaSource::applied;
    std::string note; // why a fallback applied (the error of the call that failed)
};

// Reads `quota_code` of `service_code`: GetServiceQuota, falling back to GetAWSDefaultServiceQuota when it
// is denied or absent (NoSuchResourceException), then to `documented_default`. Errors never escape: a
// failure of both calls returns the documented default with a note (and logs a warning).
QuotaValue get_quota(AwsJsonClient& quotas, std::string_view service_code, std::string_view quota_code,
                     double documented_default);

// ECR's images-per-repository quota (L-03A36CE1).
QuotaValue get_images_per_repository_quota(AwsJsonClient& quotas);

// The quotas read during one run, per account, region (the Service Quotas client's), service and quota
// code: each is read once, fallbacks included, and then answered from here (concurrent callers wait for
// the first read). A run holds one in the AWS services it passes down (guard::AwsServices); it is never a
// process-wide cache, so a new run reads the quota afresh.
class QuotaCache {
  public:
    QuotaValue get(std::string_view account_id, AwsJsonClient& quotas, std::string_view service_code,
                   std::string_view quota_code, double documented_default);
    // How many quotas were read (for tests).
    [[nodiscard]] std::size_t size() const;

  private:
    mutable std::mutex m_mutex;
    std::map<std::string, QuotaValue> m_values;
};

// ECR's images-per-repository quota of `account_id` in the region of `quotas`, read once per `cache`.
QuotaValue get_images_per_repository_quota(AwsJsonClient& quotas, QuotaCache& cache, std::string_view account_id);

} // namespace tagwarden::aws
