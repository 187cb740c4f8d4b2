#include <tagwarden/push/promote.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>

namespace tagwarden::push {

namespace {

class RootOverride final : public image::ImageSource {
public:
    RootOverride(image::ImageSource& inner, image::Manifest root) : m_inner(inner), m_root(std::move(root)) {}
    [[nodiscard]] std::string describe() const override { return m_inner.describe(); }
    Result<image::Manifest> root() override { return m_root; }
    Result<image::Manifest> manifest(const image::Descriptor& d) override { return m_inner.manifest(d); }
    Status check_blob(const image::Descriptor& d) override { return m_inner.check_blob(d); }
    Result<std::unique_ptr<image::BlobReader>> open_blob(const image::Descriptor& d) override {
        return m_inner.open_blob(d);
    }

private:
    image::ImageSource& m_inner;
    image::Manifest m_root;
};

bool platform_matches(const image::Descriptor& d, const std::string& wanted) {
    if (!d.platform)
        return false;
    auto p = d.platform->str();
    if (p == wanted)
        return true;
    // "linux/arm64" also matches "linux/arm64/v8".
    return wanted.find('/') == wanted.rfind('/') && d.platform->os + "/" + d.platform->architecture == wanted;
}

} // namespace

Status parse_platform_filter(const std::string& platform) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        auto slash = platform.find('/', start);
        parts.push_back(platform.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
        if (slash == std::string::npos)
            break;
        start = slash + 1;
    }
    bool valid = parts.size() == 2 || parts.size() == 3;
    for (const auto& part : parts)
        if (part.empty() || part.find_first_of(" \t") != std::string::npos)
            valid = false;
    if (!valid)
        return fail(ErrorKind::invalid_input, "--platform '" + platform +
                                                  "' is not os/arch[/variant]: write e.g. linux/amd64 or linux/arm64/v8");
    return {};
}

Result<image::Manifest> select_platforms(image::ImageSource& source, const image::Manifest& root,
                                         const std::vector<std::string>& platforms) {
    for (const auto& wanted : platforms)
        TW_TRY(parse_platform_filter(wanted));
    if (!root.index)
        return fail(ErrorKind::invalid_input, "--platform needs an image index, but " + source.describe() +
                                                  " is a single-platform image");
    std::vector<image::Descriptor> chosen;
    for (const auto& wanted : platforms) {
        bool found = false;
        for (const auto& d : root.index->manifests) {
            if (platform_matches(d, wanted)) {
                found = true;
                if (std::find_if(chosen.begin(), chosen.end(), [&](const auto& c) { return c.digest == d.digest; }) ==
                    chosen.end())
                    chosen.push_back(d);
            }
        }
        if (!found) {
            std::string have;
            for (const auto& d : root.index->manifests)
                if (d.platform)
                    have += (have.empty() ? "" : ", ") + d.platform->str();
            return fail(ErrorKind::invalid_input, "platform '" + wanted + "' is not in " + source.describe() +
                                                      " (it has: " + have + ")");
        }
    }
    if (chosen.size() == 1)
        return source.manifest(chosen.front());
    auto doc = nlohmann::json::parse(root.bytes);
    nlohmann::json manifests = nlohmann::json::array();
    for (const auto& d : chosen)
        manifests.push_back(image::descriptor_to_json(d));
    doc["manifests"] = manifests;
    return image::parse_manifest(doc.dump(), root.media_type);
}

std::unique_ptr<image::ImageSource> with_root(image::ImageSource& source, image::Manifest root) {
    return std::make_unique<RootOverride>(source, std::move(root));
}

} // namespace tagwarden::push
