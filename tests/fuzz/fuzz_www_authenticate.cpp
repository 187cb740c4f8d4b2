// libFuzzer target: registry::parse_www_authenticate on arbitrary header values.
#include <tagwarden/registry/auth.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view header(reinterpret_cast<const char*>(data), size);
    auto challenges = tagwarden::registry::parse_www_authenticate(header);
    if (!challenges)
        return 0;
    for (const auto& challenge : *challenges)
        (void)challenge.param("realm");
    return 0;
}
