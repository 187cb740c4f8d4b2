#pragma once

#include <tagwarden/core/error.hpp>

#include <string>
#include <string_view>

namespace tagwarden {

// Base64, standard alphabet, padded (Basic auth, docker config "auth", etcd keys). Decoding also
// accepts the URL-safe alphabet and missing padding.
std::string base64_encode(std::string_view data);
Result<std::string> base64_decode(std::string_view text);

} // namespace tagwarden
