// libFuzzer target: the docker config.json text, parsed (registry::parse_docker_config) and looked up
// (registry::lookup_docker_config) for a few registries, with a credential helper runner that runs nothing.
#include <tagwarden/registry/auth.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {
constexpr std::array<std::string_view, 4> k_registries = {"docker.io", "registry.example.com",
                                                          "127.0.0.1:5000", "index.docker.io"};

tagwarden::Result<std::optional<tagwarden::registry::Credential>> fake_helper(const std::string& helper,
                                                                              const std::string& server) {
    if (helper.empty() || server.empty())
        return std::optional<tagwarden::registry::Credential>{};
    return std::optional<tagwarden::registry::Credential>(tagwarden::registry::Credential{"user", "", "", ""});
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto config = tagwarden::registry::parse_docker_config(text, "fuzz/config.json");
    if (!config)
        return 0;
    for (auto registry : k_registries)
        (void)tagwarden::registry::lookup_docker_config(*config, registry, &fake_helper);
    if (config->is_object())
        if (auto auths = config->find("auths"); auths != config->end() && auths->is_object())
            for (const auto& item : auths->items())
                (void)tagwarden::registry::lookup_docker_config(*config, item.key(), &fake_helper);
    return 0;
}
