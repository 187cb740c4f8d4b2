#pragma once

#include <tagwarden/core/error.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

namespace tagwarden::source {

// How uncompressed layers are compressed for a push (--compress).
enum class Compression { gzip, zstd, none };

// "gzip", "zstd" or "none"; anything else is Error{invalid_input}.
Result<Compression> parse_compression(std::string_view text);
std::string_view to_string(Compression compression);

// Receives compressed output as it is produced.
using ByteSink = std::function<Status(const char* data, std::size_t size)>;

// A streaming compressor. Output is deterministic: the same input always yields the same bytes,
// however it is split into write() calls (gzip: level 6, or stored for 256 KiB slices whose byte
// entropy says they cannot shrink; header mtime 0, no file name, OS byte 255 "unknown"; zstd: level 3,
// one thread, no dictionary, checksum on). Compression::none passes the bytes through.
class Compressor {
public:
    virtual ~Compressor() = default;
    // Compresses `size` bytes, handing whatever output is ready to the sink.
    virtual Status write(const char* data, std::size_t size) = 0;
    // Flushes the rest and the trailer to the sink; write() must not be called afterwards.
    virtual Status finish() = 0;
};

std::unique_ptr<Compressor> make_compressor(Compression compression, ByteSink sink);

// What the first bytes of a blob say it is.
enum class ContentKind { gzip, zstd, tar, other };
// Needs up to the first 512 bytes (fewer when the blob is shorter).
ContentKind sniff_content(std::string_view head);

} // namespace tagwarden::source
