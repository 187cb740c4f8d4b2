#include <tagwarden/core/log.hpp>
#include <tagwarden/core/progress.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace tagwarden {

std::string human_bytes(std::uint64_t bytes) {
    char buffer[32];
    if (bytes >= 1024ULL * 1024 * 1024)
        std::snprintf(buffer, sizeof buffer, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024ULL * 1024)
        std::snprintf(buffer, sizeof buffer, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024));
    else if (bytes >= 1024)
        std::snprintf(buffer, sizeof buffer, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
    else
        std::snprintf(buffer, sizeof buffer, "%llu B", static_cast<unsigned long long>(bytes));
    return buffer;
}

Progress::Progress(std::string verb, std::uint64_t total_bytes, int total_items)
    : m_verb(std::move(verb)), m_total(total_bytes), m_total_items(total_items) {
    const char* ci = std::getenv("CI");
    m_enabled = isatty(STDERR_FILENO) && !(ci && *ci) && total_items > 0;
    log::set_status_line(m_enabled);
    if (m_enabled)
        m_thread = std::thread([this] {
            while (!m_stop) {
                render(false);
                for (int i = 0; i < 5 && !m_stop; ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        });
}

Progress::~Progress() {
    m_stop = true;
    if (m_thread.joinable()) {
        m_thread.join();
        render(true);
        log::set_status_line(false);
    }
}

void Progress::render(bool final) {
    if (final) {
        std::fputs("\r\033[K", stderr);
        std::fflush(stderr);
        return;
    }
    auto bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, m_bytes.load()));
    int percent = m_total ? static_cast<int>(bytes * 100 / m_total) : 100;
    std::string line = "\r\033[K" + m_verb + " " + std::to_string(m_items.load()) + " of " +
                       std::to_string(m_total_items) + " blobs: " + human_bytes(bytes) + " of " + human_bytes(m_total) +
                       " (" + std::to_string(percent) + "%)";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
}

} // namespace tagwarden
