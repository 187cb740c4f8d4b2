#include <tagwarden/core/strings.hpp>
#include <tagwarden/aws/config.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace tagwarden::aws {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::size_t indent_of(std::string_view line) {
    std::size_t n = 0;
    while (n < line.size() && (line[n] == ' ' || line[n] == '\t'))
        ++n;
    return n;
}

// The profile a config-file section names, or nullopt when the section is not a profile.
std::optional<std::string> config_section_profile(std::string_view section) {
    if (section == "default")
        return std::string("default");
    if (section.starts_with("profile") && section.size() > 7 &&
        std::isspace(static_cast<unsigned char>(section[7]))) {
        auto name = trim(section.substr(7));
        if (!name.empty())
            return std::string(name);
    }
    return std::nullopt;
}

std::string expand_home(std::string path, const Environment& env) {
    if (path == "~" || path.starts_with("~/")) {
        auto home = env_value(env, "HOME");
        if (home)
            path = *home + path.substr(1);
    }
    return path;
}

// Reads `path`; nullopt when it does not exist.
Result<std::optional<std::string>> read_optional_file(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return std::optional<std::string>();
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fail(ErrorKind::invalid_input,
                    "cannot read AWS shared file " + path + ": " + std::strerror(errno));
    std::ostringstream out;
    out << in.rdbuf();
    return std::optional<std::string>(out.str());
}

} // namespace

Environment process_environment() {
    Environment env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view entry(*e);
        auto eq = entry.find('=');
        if (eq == std::string_view::npos || eq == 0)
            continue;
        env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return env;
}

std::optional<std::string> env_value(const Environment& env, std::string_view name) {
    auto it = env.find(name);
    if (it == env.end() || it->second.empty())
        return std::nullopt;
    return it->second;
}

bool env_true(const Environment& env, std::string_view name) {
    auto v = env_value(env, name);
    return v && lower(trim(*v)) == "true";
}

std::optional<std::string> Profile::get(std::string_view key) const {
    auto it = values.find(key);
    if (it == values.end() || it->second.empty())
        return std::nullopt;
    return it->second;
}

ProfileMap parse_profile_file(std::string_view text, ProfileFileKind kind) {
    ProfileMap profiles;
    if (text.starts_with("\xEF\xBB\xBF"))
        text.remove_prefix(3);
    Profile* current = nullptr; // null: outside a profile section (or in a skipped one)
    bool in_section = false;
    std::string last_key;
    std::size_t last_indent = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        auto content = trim(line);
        if (content.empty() || content.front() == '#' || content.front() == ';')
            continue;
        if (in_section && !last_key.empty() && indent_of(line) > last_indent) {
            // Continuation of the previous value (configparser semantics).
            if (current != nullptr) {
                auto& value = current->values[last_key];
                value += value.empty() ? "" : "\n";
                value += content;
            }
            continue;
        }
        if (content.front() == '[') {
            auto close = content.find(']');
            if (close == std::string_view::npos) {
                current = nullptr;
                in_section = false;
                continue;
            }
            auto section = trim(content.substr(1, close - 1));
            std::optional<std::string> name;
            if (kind == ProfileFileKind::config)
                name = config_section_profile(section);
            else if (!section.empty())
                name = std::string(section);
            in_section = true;
            last_key.clear();
            if (!name) {
                current = nullptr;
                continue;
            }
            auto& profile = profiles[*name];
            profile.name = *name;
            current = &profile;
            continue;
        }
        if (!in_section)
            continue;
        auto sep = content.find_first_of("=:");
        if (sep == std::string_view::npos || sep == 0) {
            last_key.clear();
            continue;
        }
        last_key = lower(trim(content.substr(0, sep)));
        last_indent = indent_of(line);
        if (current != nullptr)
            current->values[last_key] = std::string(trim(content.substr(sep + 1)));
    }
    return profiles;
}

const Profile* SharedConfig::find(std::string_view name) const {
    auto it = profiles.find(name);
    return it == profiles.end() ? nullptr : &it->second;
}

SharedConfig merge_shared_config(const ProfileMap& config, const ProfileMap& credentials) {
    SharedConfig merged;
    merged.profiles = config;
    for (const auto& [name, profile] : credentials) {
        auto& target = merged.profiles[name];
        target.name = name;
        for (const auto& [key, value] : profile.values)
            target.values[key] = value;
    }
    return merged;
}

Result<SharedConfig> load_shared_config(const Environment& env) {
    std::string config_path = expand_home(env_value(env, "AWS_CONFIG_FILE").value_or("~/.aws/config"), env);
    std::string credentials_path =
        expand_home(env_value(env, "AWS_SHARED_CREDENTIALS_FILE").value_or("~/.aws/credentials"), env);
    auto config_text = read_optional_file(config_path);
    if (!config_text)
        return std::unexpected(config_text.error());
    auto credentials_text = read_optional_file(credentials_path);
    if (!credentials_text)
        return std::unexpected(credentials_text.error());
    auto merged =
        merge_shared_config(parse_profile_file(config_text->value_or(""), ProfileFileKind::config),
                            parse_profile_file(credentials_text->value_or(""), ProfileFileKind::credentials));
    merged.config_path = config_path;
    merged.credentials_path = credentials_path;
    if (auto p = env_value(env, "AWS_PROFILE")) {
        merged.profile_name = *p;
        merged.profile_from_environment = true;
    } else if (auto dp = env_value(env, "AWS_DEFAULT_PROFILE")) {
        merged.profile_name = *dp;
        merged.profile_from_environment = true;
    }
    return merged;
}

std::optional<std::string> resolve_region(const Environment& env, const SharedConfig* config) {
    if (auto r = env_value(env, "AWS_REGION"))
        return r;
    if (auto r = env_value(env, "AWS_DEFAULT_REGION"))
        return r;
    if (config != nullptr)
        if (const auto* p = config->selected())
            return p->get("region");
    return std::nullopt;
}

std::string dns_suffix_for_region(std::string_view region) {
    if (region.starts_with("cn-"))
        return "amazonaws.com.cn";
    if (region.starts_with("us-isob-"))
        return "sc2s.sgov.gov";
    if (region.starts_with("us-isof-"))
        return "csp.hci.ic.gov";
    if (region.starts_with("us-iso-"))
        return "c2s.ic.gov";
    if (region.starts_with("eu-isoe-"))
        return "cloud.adc-e.uk";
    if (region.starts_with("eusc-"))
        return "amazonaws.eu";
    return "amazonaws.com";
}

std::string default_endpoint(const ServiceInfo& service, std::string_view region, bool fips) {
    std::string prefix(service.endpoint_prefix);
    if (fips)
        prefix += "-fips";
    if (region.empty()) {
        if (service.signing_name == "sts" && !fips)
            return "https://sts.amazonaws.com";
        region = "us-east-1";
    }
    return "https://" + prefix + "." + std::string(region) + "." + dns_suffix_for_region(region);
}

std::optional<std::string> configured_endpoint(const ServiceInfo& service, const Environment& env,
                                               const SharedConfig* config) {
    auto strip = [](std::string url) {
        while (url.size() > 1 && url.back() == '/')
            url.pop_back();
        return url;
    };
    if (env_true(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"))
        return std::nullopt;
    if (auto v = env_value(env, "AWS_ENDPOINT_URL_" + std::string(service.env_id)))
        return strip(*v);
    if (auto v = env_value(env, "AWS_ENDPOINT_URL"))
        return strip(*v);
    if (config != nullptr)
        if (const auto* p = config->selected())
            if (auto v = p->get("endpoint_url"))
                return strip(*v);
    return std::nullopt;
}

std::string resolve_endpoint(const ServiceInfo& service, std::string_view region, const Environment& env,
                             const SharedConfig* config) {
    if (auto configured = configured_endpoint(service, env, config))
        return *configured;
    bool fips = env_true(env, "AWS_USE_FIPS_ENDPOINT");
    if (!fips && config != nullptr)
        if (const auto* p = config->selected())
            fips = lower(p->get("use_fips_endpoint").value_or("")) == "true";
    return default_endpoint(service, region, fips);
}

} // namespace tagwarden::aws
