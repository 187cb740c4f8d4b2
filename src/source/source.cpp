#include <tagwarden/source/source.hpp>

#include <string>

namespace tagwarden::source {

Result<std::unique_ptr<image::ImageSource>> open_source(std::string_view spec) {
    auto colon = spec.find(':');
    auto transport = colon == std::string_view::npos ? std::string_view{} : spec.substr(0, colon);
    if (transport == "oci") {
        auto rest = spec.substr(colon + 1);
        auto ref_colon = rest.find(':');
        auto dir = rest.substr(0, ref_colon);
        auto ref = ref_colon == std::string_view::npos ? std::string_view{} : rest.substr(ref_colon + 1);
        if (dir.empty())
            return fail(ErrorKind::invalid_input, "source '" + std::string(spec) + "' names no directory: use oci:DIR[:REF]");
        return open_oci_layout(dir, ref);
    }
    return fail(ErrorKind::invalid_input,
                "unsupported source '" + std::string(spec) +
                    "': name the transport, e.g. oci:./layout or oci:./layout:1.0 (an OCI image layout directory)");
}

} // namespace tagwarden::source
