#include <tagwarden/core/digest.hpp>

#include <openssl/evp.h>

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
    EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
    m_impl->ctx = EVP_MD_CTX_new();
    if (!m_impl->ctx || EVP_DigestInit_ex(m_impl->ctx, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("OpenSSL: cannot initialise SHA-256");
}

Sha256::~Sha256() { EVP_MD_CTX_free(m_impl->ctx); }

void Sha256::update(const void* data, std::size_t size) {
    if (size)
        EVP_DigestUpdate(m_impl->ctx, data, size);
}

Digest Sha256::finish() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(m_impl->ctx, out, &len);
    return *Digest::parse("sha256:" + to_hex(out, len));
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
