#include <tagwarden/config/config.hpp>
#include <tagwarden/core/strings.hpp>
#include <tagwarden/core/subprocess.hpp>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace tagwarden::config {

namespace {

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front())))
            item.erase(item.begin());
        while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back())))
            item.pop_back();
        if (!item.empty())
            out.push_back(item);
    }
    return out;
}

Status check_template(const std::string& tmpl, const std::string& origin) {
    if (tmpl.find("{version}") == std::string::npos || tmpl.find("{env}") == std::string::npos)
        return fail(ErrorKind::invalid_input, origin + ": tag_template '" + tmpl +
                                                  "' must contain both {version} and {env} (default '{version}-{env}')");
    return {};
}

// A YAML mapping written inline in tagwarden.yaml as JSON text (lifecycle policies are JSON).
std::string yaml_to_json(const YAML::Node& node);

void to_json_text(const YAML::Node& node, std::string& out) {
    switch (node.Type()) {
    case YAML::NodeType::Map: {
        out += '{';
        bool first = true;
        for (const auto& item : node) {
            if (!first)
                out += ',';
            first = false;
            out += nlohmann::json(item.first.as<std::string>()).dump() + ':';
            to_json_text(item.second, out);
        }
        out += '}';
        break;
    }
    case YAML::NodeType::Sequence: {
        out += '[';
        for (std::size_t i = 0; i < node.size(); ++i) {
            if (i)
                out += ',';
            to_json_text(node[i], out);
        }
        out += ']';
        break;
    }
    case YAML::NodeType::Scalar: {
        auto text = node.as<std::string>();
        // Plain scalars that read as numbers or booleans stay so; quoted ones stay strings.
        if (node.Tag() != "!") {
            try {
                std::size_t pos = 0;
                auto v = std::stoll(text, &pos);
                if (pos == text.size()) {
                    out += std::to_string(v);
                    break;
                }
            } catch (const std::exception&) {
            }
            if (text == "true" || text == "false") {
                out += text;
                break;
            }
        }
        out += nlohmann::json(text).dump();
        break;
    }
    default:
        out += "null";
    }
}

std::string yaml_to_json(const YAML::Node& node) {
    std::string out;
    to_json_text(node, out);
    return out;
}

// yaml-cpp keeps every entry of a mapping that names a key twice, and lookups then see only one of
// them: refuse the file instead, naming the key's path and both lines.
Status check_duplicate_keys(const YAML::Node& node, const std::string& path, const std::string& origin) {
    if (node.IsMap()) {
        std::map<std::string, int> seen;  // key -> 1-based line of its first occurrence
        for (const auto& item : node) {
            std::string key = item.first.IsScalar() ? item.first.Scalar() : std::string{};
            std::string key_path = path.empty() ? key : path + "." + key;
            int line = item.first.Mark().line + 1;
            if (item.first.IsScalar()) {
                auto [it, inserted] = seen.emplace(key, line);
                if (!inserted)
                    return fail(ErrorKind::invalid_input,
                                origin + ":" + std::to_string(line) + ": '" + key_path +
                                    "' is given twice (first on line " + std::to_string(it->second) +
                                    "): keep one of them");
            }
            TW_TRY(check_duplicate_keys(item.second, key_path, origin));
        }
    } else if (node.IsSequence()) {
        for (std::size_t i = 0; i < node.size(); ++i)
            TW_TRY(check_duplicate_keys(node[i], path + "[" + std::to_string(i) + "]", origin));
    }
    return {};
}

} // namespace

Result<std::chrono::seconds> parse_duration(const std::string& text, const std::string& what) {
    if (text.empty())
        return fail(ErrorKind::invalid_input, what + " is empty: use seconds, e.g. 60, 60s, 5m or 1h");
    std::size_t pos = 0;
    long long value = 0;
    try {
        value = std::stoll(text, &pos);
    } catch (const std::exception&) {
        return fail(ErrorKind::invalid_input, what + " '" + text + "' is not a duration: use 60, 60s, 5m or 1h");
    }
    auto unit = text.substr(pos);
    long long factor = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
    if (factor == 0 || value < 0)
        return fail(ErrorKind::invalid_input, what + " '" + text + "' is not a duration: use 60, 60s, 5m or 1h");
    return std::chrono::seconds(value * factor);
}

Result<Config> parse_config(const std::string& text, const std::string& origin) {
    Config c;
    c.loaded_from = origin;
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        return fail(ErrorKind::invalid_input, origin + ": not valid YAML: " + e.what());
    }
    if (root.IsNull())
        return c;
    TW_TRY(check_duplicate_keys(root, "", origin));
    if (!root.IsMap())
        return fail(ErrorKind::invalid_input, origin + ": the top level must be a mapping of settings");
    static const std::set<std::string> k_known = {
        "tag_template",    "environments",  "protected_environments", "lock",          "lock_ttl",
        "lock_timeout",    "state_dir",     "quota_threshold",        "quota",         "keep_releases",
        "protection_window", "repositories", "allow_no_lifecycle_policy", "guards_first"};
    try {
        for (const auto& item : root) {
            auto key = item.first.as<std::string>();
            if (!k_known.count(key)) {
                std::string known;
                for (const auto& k : k_known)
                    known += (known.empty() ? "" : ", ") + k;
                return fail(ErrorKind::invalid_input, origin + ": unknown setting '" + key + "' (known: " + known + ")");
            }
        }
        auto list = [&](const char* key, std::vector<std::string>& out) -> Status {
            auto n = root[key];
            if (!n)
                return {};
            if (!n.IsSequence())
                return fail(ErrorKind::invalid_input, origin + ": '" + key + "' must be a list, e.g. [dev, prod]");
            out.clear();
            for (const auto& e : n)
                out.push_back(e.as<std::string>());
            return {};
        };
        if (auto n = root["tag_template"])
            c.tag_template = n.as<std::string>();
        TW_TRY(check_template(c.tag_template, origin));
        TW_TRY(list("environments", c.environments));
        TW_TRY(list("protected_environments", c.protected_environments));
        if (auto n = root["lock"])
            c.lock_url = n.as<std::string>();
        if (auto n = root["lock_ttl"]) {
            auto d = parse_duration(n.as<std::string>(), origin + ": lock_ttl");
            if (!d)
                return std::unexpected(d.error());
            c.lock_ttl = *d;
        }
        if (auto n = root["lock_timeout"]) {
            auto d = parse_duration(n.as<std::string>(), origin + ": lock_timeout");
            if (!d)
                return std::unexpected(d.error());
            c.lock_timeout = *d;
        }
        if (auto n = root["state_dir"])
            c.state_dir = n.as<std::string>();
        if (auto n = root["quota_threshold"]) {
            c.quota_threshold = n.as<double>();
            if (c.quota_threshold <= 0 || c.quota_threshold > 1)
                return fail(ErrorKind::invalid_input, origin + ": quota_threshold must be in (0, 1], e.g. 0.9");
        }
        if (auto n = root["quota"]) {
            c.quota = n.as<std::int64_t>();
            if (*c.quota <= 0)
                return fail(ErrorKind::invalid_input, origin + ": quota must be a positive number of images, e.g. "
                                                               "10000 (leave it out when the registry says)");
        }
        if (auto n = root["keep_releases"])
            c.keep_releases = n.as<int>();
        if (auto n = root["protection_window"]) {
            auto text = n.as<std::string>();
            std::chrono::hours window{};
            if (text.ends_with("d"))
                window = std::chrono::hours(24 * std::stoll(text.substr(0, text.size() - 1)));
            else {
                auto d = parse_duration(text, origin + ": protection_window");
                if (!d)
                    return std::unexpected(d.error());
                window = std::chrono::duration_cast<std::chrono::hours>(*d);
            }
            c.protection_window = window;
        }
        if (auto n = root["allow_no_lifecycle_policy"])
            c.allow_no_lifecycle_policy = n.as<bool>();
        if (auto n = root["guards_first"])
            c.guards_first = n.as<bool>();
        if (auto n = root["repositories"]) {
            if (!n.IsMap())
                return fail(ErrorKind::invalid_input,
                            origin + ": 'repositories' maps REGISTRY/REPO to {lifecycle_policy: FILE, quota: N}");
            auto base = std::filesystem::path(origin).parent_path();
            for (const auto& item : n) {
                auto name = item.first.as<std::string>();
                Config::Repository repo;
                for (const auto& field : item.second) {
                    auto key = field.first.as<std::string>();
                    if (key == "quota") {
                        repo.quota = field.second.as<std::int64_t>();
                        if (*repo.quota <= 0)
                            return fail(ErrorKind::invalid_input, origin + ": repositories['" + name +
                                                                      "'].quota must be a positive number of images, "
                                                                      "e.g. 5000");
                    } else if (key == "lifecycle_policy") {
                        if (field.second.IsMap()) {
                            auto text = yaml_to_json(field.second);
                            repo.lifecycle_policy = text;
                        } else {
                            auto path = std::filesystem::path(field.second.as<std::string>());
                            if (path.is_relative())
                                path = base / path;
                            std::ifstream in(path);
                            if (!in)
                                return fail(ErrorKind::invalid_input, origin + ": repositories['" + name +
                                                                          "'].lifecycle_policy: cannot read " +
                                                                          path.string());
                            std::stringstream ss;
                            ss << in.rdbuf();
                            repo.lifecycle_policy = ss.str();
                        }
                    } else {
                        return fail(ErrorKind::invalid_input, origin + ": repositories['" + name +
                                                                  "']: unknown setting '" + key +
                                                                  "' (known: lifecycle_policy, quota)");
                    }
                }
                c.repositories[name] = repo;
            }
        }
    } catch (const YAML::Exception& e) {
        return fail(ErrorKind::invalid_input, origin + ": " + e.what());
    } catch (const std::exception& e) {
        return fail(ErrorKind::invalid_input, origin + ": bad value (" + std::string(e.what()) + ")");
    }
    if (c.lock_ttl < std::chrono::seconds(5))
        return fail(ErrorKind::invalid_input, origin + ": lock_ttl must be at least 5s");
    return c;
}

Result<Config> load_config(const std::string& given) {
    Config c;
    std::string path = given.empty() ? env_or_empty("TAGWARDEN_CONFIG") : given;
    bool explicit_path = !path.empty();
    if (!explicit_path)
        path = "tagwarden.yaml";
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        auto parsed = parse_config(ss.str(), path);
        if (!parsed)
            return parsed;
        c = *parsed;
    } else if (explicit_path) {
        return fail(ErrorKind::invalid_input, "configuration file " + path + " does not exist");
    }
    // Checked here so a bad value is refused before any request, not when a helper first runs.
    if (auto t = credential_program_timeout(); !t)
        return std::unexpected(t.error());
    if (auto v = env_or_empty("TAGWARDEN_TAG_TEMPLATE"); !v.empty()) {
        TW_TRY(check_template(v, "TAGWARDEN_TAG_TEMPLATE"));
        c.tag_template = v;
    }
    if (auto v = env_or_empty("TAGWARDEN_PROTECTED_ENVIRONMENTS"); !v.empty())
        c.protected_environments = split_list(v);
    if (auto v = env_or_empty("TAGWARDEN_LOCK"); !v.empty())
        c.lock_url = v;
    if (auto v = env_or_empty("TAGWARDEN_LOCK_TTL"); !v.empty()) {
        auto d = parse_duration(v, "TAGWARDEN_LOCK_TTL");
        if (!d)
            return std::unexpected(d.error());
        if (*d < std::chrono::seconds(5))
            return fail(ErrorKind::invalid_input, "TAGWARDEN_LOCK_TTL must be at least 5s");
        c.lock_ttl = *d;
    }
    if (auto v = env_or_empty("TAGWARDEN_LOCK_TIMEOUT"); !v.empty()) {
        auto d = parse_duration(v, "TAGWARDEN_LOCK_TIMEOUT");
        if (!d)
            return std::unexpected(d.error());
        c.lock_timeout = *d;
    }
    if (auto v = env_or_empty("TAGWARDEN_STATE_DIR"); !v.empty())
        c.state_dir = v;
    if (auto v = env_or_empty("TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY"); !v.empty())
        c.allow_no_lifecycle_policy = v == "1" || v == "true" || v == "yes";
    if (auto v = env_or_empty("TAGWARDEN_GUARDS_FIRST"); !v.empty())
        c.guards_first = v == "1" || v == "true" || v == "yes";
    if (auto v = env_or_empty("TAGWARDEN_QUOTA_THRESHOLD"); !v.empty()) {
        double value = 0;
        auto [end, parsed] = std::from_chars(v.data(), v.data() + v.size(), value);
        if (parsed != std::errc{} || end != v.data() + v.size())
            return fail(ErrorKind::invalid_input, "TAGWARDEN_QUOTA_THRESHOLD '" + v + "' is not a number like 0.9");
        c.quota_threshold = value;
        if (!(c.quota_threshold > 0 && c.quota_threshold <= 1))
            return fail(ErrorKind::invalid_input, "TAGWARDEN_QUOTA_THRESHOLD must be in (0, 1], e.g. 0.9");
    }
    return c;
}

std::string state_directory(const Config& config) {
    if (!config.state_dir.empty())
        return config.state_dir;
    if (auto x = env_or_empty("XDG_STATE_HOME"); !x.empty())
        return x + "/tagwarden";
    auto home = env_or_empty("HOME");
    return (home.empty() ? std::string("/tmp") : home) + "/.local/state/tagwarden";
}

} // namespace tagwarden::config
