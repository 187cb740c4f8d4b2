#pragma once

#include <tagwarden/core/error.hpp>

#include <atomic>
#include <chrono>

// Cancellation of the whole process by SIGINT/SIGTERM (CI cancels a job that way: GitHub Actions sends
// SIGINT, then SIGTERM, then SIGKILL a few seconds later; CodeBuild SIGTERM on timeout).
// The first signal only raises a flag: transfers stop at their next progress callback, waits end, and
// the operation undoes its own writes inside a Shield. A second signal ends the process at once with
// 128 + signal (the journal stays for `push --resume`).
namespace tagwarden::cancel {

// Installs the SIGINT/SIGTERM handlers (once; later calls do nothing).
void install_signal_handlers();

// The overall deadline of the command (--timeout, TAGWARDEN_TIMEOUT): once it passes, the run stops as if
// cancelled — transfers end, waits end, the run undoes its tags inside a Shield and releases its locks —
// and cancelled_error() is Error{registry} ("--timeout ... passed", exit 8) instead of Error{cancelled}.
void set_deadline(std::chrono::steady_clock::time_point deadline, std::string description);
// Time left before the deadline (duration::max() without one; zero once passed).
[[nodiscard]] std::chrono::milliseconds remaining();
[[nodiscard]] bool deadline_passed();

// True once a cancelling signal arrived (or request() was called) or the deadline passed. Ignores shields.
[[nodiscard]] bool requested();
// The signal that cancelled the run (SIGINT, SIGTERM), or 0.
[[nodiscard]] int signal_number();
// Cancels as if `signal` had arrived once (tests, and code that must stop the run).
void request(int signal);
// Forgets a cancellation and the deadline (tests only).
void reset_for_tests();

// True when the calling thread should stop now: cancellation was requested (or the thread's StopScope
// flag is set) and the thread is not inside a Shield.
[[nodiscard]] bool should_stop();

// Whether the calling thread is inside a Shield (parallel_for hands it on to its workers).
[[nodiscard]] bool shielded();

// Error{cancelled} naming the signal, e.g. "cancelled by SIGTERM"; after the deadline Error{registry}.
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

// While alive, the calling thread also stops (should_stop() is true, so transfers end at their next
// progress callback and waits end) once `flag` is set: one part of an operation stops another running
// beside it (a guard refusal stops the blob uploads) without cancelling the process. parallel_for hands
// it on to its workers, like a Shield. The error the stopped work returns is cancelled_error(); the
// caller that set the flag knows why and reports its own error instead.
class StopScope {
public:
    explicit StopScope(const std::atomic<bool>& flag);
    ~StopScope();
    StopScope(const StopScope&) = delete;
    StopScope& operator=(const StopScope&) = delete;

private:
    const std::atomic<bool>* m_previous;
};

// The flag of the calling thread's innermost StopScope, or null (parallel_for hands it on).
[[nodiscard]] const std::atomic<bool>* stop_flag();

// Sleeps for `duration` unless the thread should stop first. Returns false when it stopped early.
bool sleep_for(std::chrono::milliseconds duration);

} // namespace tagwarden::cancel
