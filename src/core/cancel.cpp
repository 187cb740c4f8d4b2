#include <tagwarden/core/cancel.hpp>

#include <atomic>
#include <csignal>
#include <cstring>
#include <thread>
#include <unistd.h>

namespace tagwarden::cancel {

namespace {

std::atomic<int> g_signal{0};
// steady_clock ticks of the deadline; max() for none.
std::atomic<std::chrono::steady_clock::rep> g_deadline{std::chrono::steady_clock::time_point::max().time_since_epoch().count()};
std::string g_deadline_description;  // written once before any thread reads it
std::atomic<bool> g_installed{false};
thread_local bool t_shielded = false;
thread_local const std::atomic<bool>* t_stop_flag = nullptr;

void write_stderr(const char* text) {
    auto ignored = ::write(STDERR_FILENO, text, std::strlen(text));
    (void)ignored;
}

extern "C" void on_signal(int signal) {
    int expected = 0;
    if (g_signal.compare_exchange_strong(expected, signal)) {
        write_stderr(signal == SIGINT ? "tagwarden: SIGINT: stopping; undoing this run's tags (a second signal exits at once)\n"
                                      : "tagwarden: SIGTERM: stopping; undoing this run's tags (a second signal exits at once)\n");
        return;
    }
    write_stderr("tagwarden: second signal: exiting now; finish or undo later with `tagwarden push --resume`\n");
    ::_exit(128 + signal);
}

} // namespace

void install_signal_handlers() {
    if (g_installed.exchange(true))
        return;
    struct sigaction action {};
    action.sa_handler = &on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: a blocking wait returns early
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

void set_deadline(std::chrono::steady_clock::time_point deadline, std::string description) {
    g_deadline_description = std::move(description);
    g_deadline = deadline.time_since_epoch().count();
}

bool deadline_passed() {
    return std::chrono::steady_clock::now().time_since_epoch().count() >= g_deadline.load();
}

std::chrono::milliseconds remaining() {
    auto deadline = g_deadline.load();
    if (deadline == std::chrono::steady_clock::time_point::max().time_since_epoch().count())
        return std::chrono::milliseconds::max();
    auto left = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(deadline)) -
                std::chrono::steady_clock::now();
    return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(left));
}

bool requested() { return g_signal.load() != 0 || deadline_passed(); }
int signal_number() { return g_signal.load(); }
void request(int signal) {
    int expected = 0;
    g_signal.compare_exchange_strong(expected, signal);
}
void reset_for_tests() {
    g_signal = 0;
    g_deadline = std::chrono::steady_clock::time_point::max().time_since_epoch().count();
}

bool shielded() { return t_shielded; }

bool should_stop() { return !t_shielded && ((t_stop_flag && t_stop_flag->load()) || requested()); }

Error cancelled_error(const std::string& what) {
    int s = signal_number();
    if (s == 0 && deadline_passed()) {
        Error e(ErrorKind::registry, (what.empty() ? std::string() : what + ": ") + "stopped: " + g_deadline_description +
                                         " passed (raise --timeout or TAGWARDEN_TIMEOUT)");
        return e;
    }
    std::string name = s == SIGINT ? "SIGINT" : s == SIGTERM ? "SIGTERM" : "a signal";
    Error e(ErrorKind::cancelled, (what.empty() ? std::string() : what + ": ") + "cancelled by " + name);
    return e;
}

StopScope::StopScope(const std::atomic<bool>& flag) : m_previous(t_stop_flag) { t_stop_flag = &flag; }
StopScope::~StopScope() { t_stop_flag = m_previous; }
const std::atomic<bool>* stop_flag() { return t_stop_flag; }

Shield::Shield() : m_previous(t_shielded) { t_shielded = true; }
Shield::~Shield() { t_shielded = m_previous; }

bool sleep_for(std::chrono::milliseconds duration) {
    auto until = std::chrono::steady_clock::now() + duration;
    while (true) {
        if (should_stop())
            return false;
        auto now = std::chrono::steady_clock::now();
        if (now >= until)
            return true;
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50)));
    }
}

} // namespace tagwarden::cancel
