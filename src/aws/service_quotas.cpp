#include <tagwarden/aws/service_quotas.hpp>

#include <tagwarden/core/log.hpp>

#include <nlohmann/json.hpp>

namespace tagwarden::aws {

namespace {

Result<double> quota_value(const nlohmann::json& answer, std::string_view operation) {
    auto quota = answer.find("Quota");
    if (quota == answer.end() || !quota->is_object())
        return fail(ErrorKind::registry,
                    "Service Quotas " + std::string(operation) + ": no Quota in the answer");
    auto value = quota->find("Value");
    if (value == quota->end() || !value->is_number())
        return fail(ErrorKind::registry, "Service Quotas " + std::string(operation) + ": no Quota.Value");
    return value->get<double>();
}

} // namespace

std::string_view to_string(QuotaSource source) {
    switch (source) {
    case QuotaSource::applied:
        return "applied";
    case QuotaSource::aws_default:
        return "aws_default";
    case QuotaSource::documented_default:
        return "documented_default";
    }
    return "applied";
}

QuotaValue get_quota(AwsJsonClient& quotas, std::string_view service_code, std::string_view quota_code,
                     double documented_default) {
    const nlohmann::json input = {{"ServiceCode", service_code}, {"QuotaCode", quota_code}};
    auto applied = quotas.call("GetServiceQuota", input);
    Result<double> value =
        applied ? quota_value(*applied, "GetServiceQuota") : std::unexpected(applied.error());
    if (value)
        return {*value, QuotaSource::applied, {}};
    std::string note = value.error().message;
    auto aws_default = quotas.call("GetAWSDefaultServiceQuota", input);
    Result<double> fallback = aws_default ? quota_value(*aws_default, "GetAWSDefaultServiceQuota")
                                          : std::unexpected(aws_default.error());
    if (fallback)
        return {*fallback, QuotaSource::aws_default, note};
    note += "; " + fallback.error().message;
    log::warn("cannot read the " + std::string(service_code) + " quota " + std::string(quota_code) + " (" +
              note + "); using the documented default " +
              std::to_string(static_cast<long long>(documented_default)));
    return {documented_default, QuotaSource::documented_default, note};
}

QuotaValue get_images_per_repository_quota(AwsJsonClient& quotas) {
    return get_quota(quotas, k_ecr_service_code, k_images_per_repository_quota,
                     k_documented_images_per_repository);
}

QuotaValue QuotaCache::get(std::string_view account_id, AwsJsonClient& quotas, std::string_view service_code,
                           std::string_view quota_code, double documented_default) {
    std::string key = std::string(account_id) + "/" + quotas.region() + "/" + std::string(service_code) + "/" +
                      std::string(quota_code);
    // Held across the read: a second caller for the same run waits for the first read instead of repeating it.
    std::lock_guard lock(m_mutex);
    if (auto it = m_values.find(key); it != m_values.end())
        return it->second;
    auto value = get_quota(quotas, service_code, quota_code, documented_default);
    m_values.emplace(std::move(key), value);
    return value;
}

std::size_t QuotaCache::size() const {
    std::lock_guard lock(m_mutex);
    return m_values.size();
}

QuotaValue get_images_per_repository_quota(AwsJsonClient& quotas, QuotaCache& cache, std::string_view account_id) {
    return cache.get(account_id, quotas, k_ecr_service_code, k_images_per_repository_quota,
                     k_documented_images_per_repository);
}

} // namespace tagwarden::aws
