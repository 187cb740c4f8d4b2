#pragma once

#include <tagwarden/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tagwarden {

// A content digest "algorithm:hex". Only sha256 and sha512 are accepted (the OCI registered algorithms).
class Digest {
public:
    Digest() = default;

    // Returns the digest, or Error{invalid_input} naming what is wrong with `text`.
    static Result<Digest> parse(std::string_view text);
    // The sha256 digest of `bytes`.
    static Digest of(std::string_view bytes);

    [[nodiscard]] const std::string& str() const { return m_text; }
    [[nodiscard]] std::string_view algorithm() const;
    [[nodiscard]] std::string_view hex() const;
    [[nodiscard]] bool empty() const { return m_text.empty(); }
    // The first 12 hex digits, as logs show a digest.
    [[nodiscard]] std::string short_hex() const { return std::string(hex().substr(0, 12)); }

    friend bool operator==(const Digest&, const Digest&) = default;
    friend auto operator<=>(const Digest&, const Digest&) = default;

private:
    explicit Digest(std::string text) : m_text(std::move(text)) {}
    std::string m_text;
};

// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, std::size_t size);
    void update(std::string_view data) { update(data.data(), data.size()); }
    // Finishes the hash; the object must not be updated afterwards.
    Digest finish();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// The first 12 hex digits of "algorithm:hex" text (the text itself when it has no ':').
std::string short_digest(std::string_view digest);

std::string to_hex(const unsigned char* data, std::size_t size);

} // namespace tagwarden
