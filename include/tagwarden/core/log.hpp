#pragma once

#include <string>
#include <string_view>

namespace tagwarden::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, quiet = 4 };

void set_level(Level level);
Level level();

// Registers a secret (password, token, key) so that it is masked in every log line and error message.
// Empty and very short strings are ignored (masking them would mangle ordinary text).
void add_secret(std::string_view secret);
// Returns `text` with every registered secret, Authorization/X-Amz-Security-Token header value and
// token-like query parameter replaced by "***".
std::string redact(std::string_view text);

// While a terminal status line (core/progress) is shown, log lines first erase it.
void set_status_line(bool active);

// Lines go to stderr, redacted, one write per line (safe from several threads).
void debug(std::string_view message);
void info(std::string_view message);
void warn(std::string_view message);
void error(std::string_view message);

} // namespace tagwarden::log
