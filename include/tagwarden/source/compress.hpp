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

// --compress-level: 0 means the algorithm's default, which is fixed so that the same archive always gives
// the same bytes (gzip 6, zstd 3). gzip takes 1-9, zstd 1-19; a level with Compression::none, or outside
// the range, is Error{invalid_input} naming the range.
constexpr int k_default_gzip_level = 6;
constexpr int k_default_zstd_level = 3;
constexpr int k_max_zstd_level = 19;
Status check_compression_level(Compression compression, int level);
// The level `level` stands for (the default for 0); 0 for Compression::none.
int effective_compression_level(Compression compression, int level);

// Receives compressed output as it is produced.
using ByteSink = std::function<Status(const char* data, std::size_t size)>;

// A streaming compressor. Output is deterministic: the same input always yields the same bytes,
// however it is split into write() calls, for a given level (gzip: level 6 unless given, or stored for
// 256 KiB slices whose byte entropy says they cannot shrink; header mtime 0, no file name, OS byte 255
// "unknown"; zstd: level 3 unless given, one thread, no dictionary, checksum on). Compression::none passes
// the bytes through.
class Compressor {
public:
    virtual ~Compressor() = default;
    // Compresses `size` bytes, handing whatever output is ready to the sink.
    virtual Status write(const char* data, std::size_t size) = 0;
    // Flushes the rest and the trailer to the sink; write() must not be called afterwards.
    virtual Status finish() = 0;
};

// `level` as for check_compression_level (0: the default); it must have passed that check.
std::unique_ptr<Compressor> make_compressor(Compression compression, ByteSink sink, int level = 0);

// What the first bytes of a blob say it is.
enum class ContentKind { gzip, zstd, tar, other };
// Needs up to the first 512 bytes (fewer when the blob is shorter).
ContentKind sniff_content(std::string_view head);

} // namespace tagwarden::source
