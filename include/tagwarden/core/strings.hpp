#pragma once

#include <string_view>

namespace tagwarden {

// `text` without leading and trailing whitespace.
std::string_view trim(std::string_view text);

} // namespace tagwarden
