#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/error.hpp>

#include <csignal>

namespace tagwarden {

int exit_code(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::internal: return 1;
    case ErrorKind::invalid_input: return 2;
    case ErrorKind::guard_refused: return 3;
    case ErrorKind::tag_conflict: return 4;
    case ErrorKind::lock_unavailable: return 5;
    case ErrorKind::verification: return 6;
    case ErrorKind::auth: return 7;
    case ErrorKind::registry:
    case ErrorKind::not_found: return 8;
    case ErrorKind::cancelled: return 128 + (cancel::signal_number() ? cancel::signal_number() : SIGTERM);
    }
    return 1;
}

const char* kind_name(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::internal: return "internal";
    case ErrorKind::invalid_input: return "invalid_input";
    case ErrorKind::guard_refused: return "guard_refused";
    case ErrorKind::tag_conflict: return "tag_conflict";
    case ErrorKind::lock_unavailable: return "lock_unavailable";
    case ErrorKind::verification: return "verification_failed";
    case ErrorKind::auth: return "auth_failed";
    case ErrorKind::registry: return "registry_error";
    case ErrorKind::not_found: return "not_found";
    case ErrorKind::cancelled: return "cancelled";
    }
    return "internal";
}

} // namespace tagwarden
