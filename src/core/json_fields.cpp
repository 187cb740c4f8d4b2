#include <tagwarden/core/json_fields.hpp>

namespace tagwarden {

namespace {

const nlohmann::json* member(const nlohmann::json& o, std::string_view key) {
    if (!o.is_object())
        return nullptr;
    auto it = o.find(key);
    return it == o.end() ? nullptr : &*it;
}

} // namespace

std::optional<std::string> string_field(const nlohmann::json& o, std::string_view key, std::string fallback) {
    const auto* v = member(o, key);
    if (!v)
        return fallback;
    if (!v->is_string())
        return std::nullopt;
    return v->get<std::string>();
}

std::optional<std::int64_t> int_field(const nlohmann::json& o, std::string_view key, std::int64_t fallback) {
    const auto* v = member(o, key);
    if (!v)
        return fallback;
    if (v->is_number_integer())
        return v->get<std::int64_t>();
    return std::nullopt;
}

std::optional<bool> bool_field(const nlohmann::json& o, std::string_view key, bool fallback) {
    const auto* v = member(o, key);
    if (!v)
        return fallback;
    if (!v->is_boolean())
        return std::nullopt;
    return v->get<bool>();
}

const nlohmann::json* array_field(const nlohmann::json& o, std::string_view key) {
    const auto* v = member(o, key);
    return v && v->is_array() ? v : nullptr;
}

} // namespace tagwarden
