#pragma once

#include <string>

namespace tagwarden::aws {

// AWS credentials as the signer needs them. The secret access key and the session token are secrets:
// nothing in tagwarden prints, logs or puts them in an error message.
struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token; // empty for long-term (IAM user) keys

    [[nodiscard]] bool has_session_token() const { return !session_token.empty(); }
};

} // namespace tagwarden::aws
