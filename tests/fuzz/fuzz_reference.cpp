// libFuzzer target: Reference::parse on arbitrary text. A parsed reference's canonical form parses back
// to the same reference.
#include <tagwarden/core/reference.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto ref = tagwarden::Reference::parse(text);
    if (!ref)
        return 0;
    (void)ref->api_host();
    (void)ref->manifest_ref();
    auto again = tagwarden::Reference::parse(ref->str());
    if (!again || again->str() != ref->str())
        std::abort();
    return 0;
}
