#include <tagwarden/core/log.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace tagwarden::log {

namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<bool> g_status_line{false};
std::mutex g_mutex;
std::set<std::string>& secrets() {
    static std::set<std::string> s;
    return s;
}

bool iequals_prefix(std::string_view text, std::size_t pos, std::string_view word) {
    if (pos + word.size() > text.size())
        return false;
    for (std::size_t i = 0; i < word.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(text[pos + i])) != std::tolower(static_cast<unsigned char>(word[i])))
            return false;
    return true;
}

// Masks the value after "<name>" up to the end of the line for header-like secrets.
void mask_after(std::string& s, std::string_view name, std::string_view stop_chars) {
    std::size_t pos = 0;
    while (pos < s.size()) {
        std::size_t found = std::string::npos;
        for (std::size_t i = pos; i + name.size() <= s.size(); ++i)
            if (iequals_prefix(s, i, name)) {
                found = i;
                break;
            }
        if (found == std::string::npos)
            return;
        std::size_t start = found + name.size();
        std::size_t end = s.find_first_of(stop_chars, start);
        if (end == std::string::npos)
            end = s.size();
        if (end > start)
            s.replace(start, end - start, "***");
        pos = start + 3;
    }
}

void write_line(std::string_view prefix, std::string_view message) {
    std::string line = g_status_line ? "\r\033[Ktagwarden: " : "tagwarden: ";
    line += prefix;
    line += redact(message);
    line += '\n';
    std::lock_guard lock(g_mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

} // namespace

void set_level(Level l) { g_level = l; }
void set_status_line(bool active) { g_status_line = active; }
Level level() { return g_level; }

void add_secret(std::string_view secret) {
    if (secret.size() < 4)
        return;
    std::lock_guard lock(g_mutex);
    secrets().insert(std::string(secret));
}

std::string redact(std::string_view text) {
    std::string s(text);
    {
        std::lock_guard lock(g_mutex);
        std::vector<std::string> ordered(secrets().begin(), secrets().end());
        std::sort(ordered.begin(), ordered.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
        for (const auto& secret : ordered) {
            std::size_t pos = 0;
            while ((pos = s.find(secret, pos)) != std::string::npos) {
                s.replace(pos, secret.size(), "***");
                pos += 3;
            }
        }
    }
    mask_after(s, "authorization: ", "\r\n");
    mask_after(s, "x-amz-security-token: ", "\r\n");
    mask_after(s, "access_token=", "&\r\n \"'");
    mask_after(s, "refresh_token=", "&\r\n \"'");
    mask_after(s, "password=", "&\r\n \"'");
    mask_after(s, "x-amz-signature=", "&\r\n \"'");
    mask_after(s, "x-amz-credential=", "&\r\n \"'");
    return s;
}

void debug(std::string_view m) {
    if (g_level <= Level::debug)
        write_line("debug: ", m);
}
void info(std::string_view m) {
    if (g_level <= Level::info)
        write_line("", m);
}
void warn(std::string_view m) {
    if (g_level <= Level::warn)
        write_line("warning: ", m);
}
void error(std::string_view m) {
    if (g_level <= Level::error)
        write_line("error: ", m);
}

} // namespace tagwarden::log
