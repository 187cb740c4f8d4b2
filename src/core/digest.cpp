#include <tagwarden/core/digest.hpp>

// The low-level SHA-256 interface (deprecated in OpenSSL 3, not removed): the same assembly as EVP's, but
// without the provider machinery that EVP_DigestInit fetches on first use. A push hashes every blob, so
// EVP pulled about 2 MiB of libcrypto into the resident set of every run (bench/RESULTS.md).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <stdexcept>

namespace tagwarden {

namespace {

bool is_lower_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

} // namespace

Result<Digest> Digest::parse(std::string_view text) {
    auto colon = text.find(':');
    if (colon == std::string_view::npos)
        return fail(ErrorKind::invalid_input,
                    "invalid digest '" + std::string(text) + "': expected 'sha256:<64 hex digits>'");
    auto algo = text.substr(0, colon);
    auto hex = text.substr(colon + 1);
    std::size_t want = 0;
    if (algo == "sha256")
        want = 64;
    else if (algo == "sha512")
        want = 128;
    else
        return fail(ErrorKind::invalid_input, "unsupported digest algorithm '" + std::string(algo) + "' in '" +
                                                  std::string(text) + "': use sha256 or sha512");
    if (hex.size() != want || !is_lower_hex(hex))
        return fail(ErrorKind::invalid_input, "invalid digest '" + std::string(text) + "': " + std::string(algo) +
                                                  " needs " + std::to_string(want) + " lowercase hex digits");
    return Digest(std::string(text));
}

Digest Digest::of(std::string_view bytes) {
    Sha256 h;
    h.update(bytes);
    return h.finish();
}

std::string_view Digest::algorithm() const {
    std::string_view v = m_text;
    return v.substr(0, v.find(':'));
}

std::string_view Digest::hex() const {
    std::string_view v = m_text;
    auto colon = v.find(':');
    return colon == std::string_view::npos ? std::string_view{} : v.substr(colon + 1);
}

struct Sha256::Impl {
    SHA256_CTX ctx{};
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
    if (SHA256_Init(&m_impl->ctx) != 1)
        throw std::runtime_error("OpenSSL: cannot initialise SHA-256");
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t size) {
    if (size)
        SHA256_Update(&m_impl->ctx, data, size);
}

Digest Sha256::finish() {
    unsigned char out[SHA256_DIGEST_LENGTH];
    SHA256_Final(out, &m_impl->ctx);
    return *Digest::parse("sha256:" + to_hex(out, sizeof out));
}

std::string to_hex(const unsigned char* data, std::size_t size) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out.push_back(k_digits[data[i] >> 4]);
        out.push_back(k_digits[data[i] & 0xf]);
    }
    return out;
}

} // namespace tagwarden

namespace tagwarden {

std::string short_digest(std::string_view digest) {
    auto colon = digest.find(':');
    auto hex = colon == std::string_view::npos ? digest : digest.substr(colon + 1);
    return std::string(hex.substr(0, 12));
}

} // namespace tagwarden
