// libFuzzer target: the lifecycle policy parser (parse_policy, validate_policy, load_policy) and, for a
// valid policy, lint.
#include <tagwarden/policy/lifecycle_policy.hpp>
#include <tagwarden/policy/lint.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = tagwarden::policy::parse_policy(text);
    if (parsed)
        (void)tagwarden::policy::validate_policy(*parsed);
    (void)tagwarden::policy::check_policy(text);
    auto loaded = tagwarden::policy::load_policy(text);
    if (loaded)
        (void)tagwarden::policy::lint(*loaded);
    return 0;
}
