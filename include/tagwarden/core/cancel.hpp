#pragma once

#include <tagwarden/core/error.hpp>

#include <chrono>

// Cancellation of the whole process by SIGINT/SIGTERM (CI cancels a job that way: GitHub Actions sends
// SIGINT, then SIGTERM, then SIGKILL a few seconds later; CodeBuild SIGTERM on timeout).
// The first signal only raises a flag: transfers stop at their next progress callback, waits end, and
// the operation undoes its own writes inside a Shield. A second signal ends the process at once with
// 128 + signal (the journal stays for `push --resume`).
namespace tagwarden::cancel {

// Installs the SIGINT/SIGTERM handlers (once; later calls do nothing).
void install_signal_handlers();

// True once a cancelling signal arrived (or request() was called). Ignores shields.
[[nodiscard]] bool requested();
// The signal that cancelled the run (SIGINT, SIGTERM), or 0.
[[nodiscard]] int signal_number();
// Cancels as if `signal` had arrived once (tests, and code that must stop the run).
void request(int signal);
// Forgets a cancellation (tests only).
void reset_for_tests();

// True when the calling thread should stop now: cancellation was requested and the thread is not
// inside a Shield.
[[nodiscard]] bool should_stop();

// Whether the calling thread is inside a Shield (parallel_for hands it on to its workers).
[[nodiscard]] bool shielded();

// Error{cancelled} naming the signal, e.g. "cancelled by SIGTERM".
[[nodiscard]] Error cancelled_error(const std::string& what = {});

// While alive, the calling thread ignores cancellation (should_stop() is false): undo and lock release
// run inside one so they can finish after the first signal.
class Shield {
public:
    Shield();
    ~Shield();
    Shield(const Shield&) = delete;
    Shield& operator=(const Shield&) = delete;

private:
    bool m_previous;
};

// Sleeps for `duration` unless the thread should stop first. Returns false when it stopped early.
bool sleep_for(std::chrono::milliseconds duration);

} // namespace tagwarden::cancel
