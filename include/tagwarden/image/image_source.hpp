#pragma once

#include <tagwarden/core/digest.hpp>
#include <tagwarden/core/error.hpp>
#include <tagwarden/image/manifest.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tagwarden::image {

// A stream of blob bytes.
class BlobReader {
public:
    virtual ~BlobReader() = default;
    // Reads up to `size` bytes into `buffer`. Returns the count read, 0 at the end, or an error.
    virtual Result<std::size_t> read(char* buffer, std::size_t size) = 0;
};

// Wraps a reader and checks the bytes against a descriptor's digest and size while they pass.
// A read that would exceed the size, or an end with a different size or digest, returns
// Error{invalid_input} naming the blob: the caller aborts before anything refers to it.
class VerifyingReader final : public BlobReader {
public:
    VerifyingReader(std::unique_ptr<BlobReader> inner, Descriptor expected, std::string origin);
    Result<std::size_t> read(char* buffer, std::size_t size) override;

private:
    std::unique_ptr<BlobReader> m_inner;
    Descriptor m_expected;
    std::string m_origin;
    Sha256 m_hash;
    std::uint64_t m_seen = 0;
    bool m_done = false;
};

// Where an image comes from (an OCI layout, an archive, another registry). Every transport yields this.
class ImageSource {
public:
    virtual ~ImageSource() = default;
    // Human-readable origin, e.g. "oci:/path/layout:1.0".
    [[nodiscard]] virtual std::string describe() const = 0;
    // The top-level manifest (an image manifest or an index), digest-checked.
    virtual Result<Manifest> root() = 0;
    // A manifest referenced by `descriptor` (an index child), digest- and size-checked.
    virtual Result<Manifest> manifest(const Descriptor& descriptor) = 0;
    // Returns ok when the blob is present with the descriptor's size; cheap, reads no content.
    virtual Status check_blob(const Descriptor& descriptor) = 0;
    // Opens a blob for streaming; the reader verifies digest and size as the bytes are read.
    virtual Result<std::unique_ptr<BlobReader>> open_blob(const Descriptor& descriptor) = 0;
};

} // namespace tagwarden::image
