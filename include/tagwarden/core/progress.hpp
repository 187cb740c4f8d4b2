#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace tagwarden {

// A single updating line on stderr ("uploading 3 of 8 blobs: 412.0 MiB of 1.0 GiB") while bytes move.
// Shown only when stderr is a terminal and the CI variable is unset; in CI the per-blob log lines are the
// progress. Thread-safe: workers call add() from any thread.
class Progress {
public:
    Progress(std::string verb, std::uint64_t total_bytes, int total_items);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void add(std::int64_t bytes) { m_bytes += bytes; }
    void item_done() { ++m_items; }
    [[nodiscard]] bool enabled() const { return m_enabled; }

private:
    void render(bool final);

    std::string m_verb;
    std::uint64_t m_total;
    int m_total_items;
    std::atomic<std::int64_t> m_bytes{0};
    std::atomic<int> m_items{0};
    std::atomic<bool> m_stop{false};
    bool m_enabled;
    std::thread m_thread;
};

std::string human_bytes(std::uint64_t bytes);

} // namespace tagwarden
