#include <tagwarden/source/compress.hpp>

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

namespace tagwarden::source {

namespace {

constexpr std::size_t k_out_chunk = 128 * 1024;
constexpr std::size_t k_gzip_slice = 256 * 1024;
// Bits per byte above which a slice is stored: random bytes measure 7.99+, already compressed files
// 7.95+, executables and text well under 7.
constexpr double k_stored_entropy = 7.9;

// Input is cut into fixed slices (whatever the callers' write sizes, so the output depends on the bytes
// alone). A slice whose byte entropy says deflate cannot shrink it (random data, already compressed
// files) is stored (level 0) instead of searched at the chosen level: zlib's level 6 runs at a few tens of MB/s
// on such data and gains nothing. The choice is a function of the slice, so the output stays deterministic.
class GzipCompressor final : public Compressor {
public:
    GzipCompressor(ByteSink sink, int level)
        : m_sink(std::move(sink)), m_out(k_out_chunk), m_slice(k_gzip_slice), m_chosen(level), m_level(level) {
        m_ok = deflateInit2(&m_stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
        if (m_ok) {
            m_header.time = 0;
            m_header.os = 255;
            m_ok = deflateSetHeader(&m_stream, &m_header) == Z_OK;
        }
    }
    ~GzipCompressor() override { deflateEnd(&m_stream); }
    GzipCompressor(const GzipCompressor&) = delete;
    GzipCompressor& operator=(const GzipCompressor&) = delete;

    Status write(const char* data, std::size_t size) override {
        if (!m_ok)
            return fail(ErrorKind::internal, "zlib could not start a gzip stream");
        while (size > 0) {
            auto n = std::min(size, m_slice.size() - m_filled);
            std::copy_n(data, n, m_slice.data() + m_filled);
            m_filled += n;
            data += n;
            size -= n;
            if (m_filled == m_slice.size()) {
                TW_TRY(compress_slice(Z_NO_FLUSH));
                m_filled = 0;
            }
        }
        return {};
    }
    Status finish() override {
        if (!m_ok)
            return fail(ErrorKind::internal, "zlib could not start a gzip stream");
        TW_TRY(compress_slice(Z_FINISH));
        m_filled = 0;
        return {};
    }

private:
    static bool incompressible(const char* data, std::size_t size) {
        if (size < 4096)
            return false;
        std::array<std::size_t, 256> counts{};
        for (std::size_t i = 0; i < size; ++i)
            ++counts[static_cast<unsigned char>(data[i])];
        double entropy = 0;
        for (auto c : counts)
            if (c) {
                double p = static_cast<double>(c) / static_cast<double>(size);
                entropy -= p * std::log2(p);
            }
        return entropy > k_stored_entropy;
    }

    Status set_level(int level) {
        if (level == m_level)
            return {};
        m_stream.avail_in = 0;
        // deflateParams flushes what was fed at the old level first; it answers Z_BUF_ERROR until that fits.
        for (int attempt = 0; attempt < 1'000'000; ++attempt) {
            m_stream.next_out = reinterpret_cast<Bytef*>(m_out.data());
            m_stream.avail_out = static_cast<uInt>(m_out.size());
            int rc = deflateParams(&m_stream, level, Z_DEFAULT_STRATEGY);
            auto produced = m_out.size() - m_stream.avail_out;
            if (produced > 0)
                TW_TRY(m_sink(m_out.data(), produced));
            if (rc == Z_OK) {
                m_level = level;
                return {};
            }
            if (rc != Z_BUF_ERROR)
                return fail(ErrorKind::internal, "zlib could not change the compression level");
        }
        return fail(ErrorKind::internal, "zlib did not finish a block");
    }

    Status compress_slice(int flush) {
        if (m_filled > 0)
            TW_TRY(set_level(incompressible(m_slice.data(), m_filled) ? 0 : m_chosen));
        m_stream.next_in = reinterpret_cast<Bytef*>(m_slice.data());
        m_stream.avail_in = static_cast<uInt>(m_filled);
        while (true) {
            m_stream.next_out = reinterpret_cast<Bytef*>(m_out.data());
            m_stream.avail_out = static_cast<uInt>(m_out.size());
            int rc = deflate(&m_stream, flush);
            if (rc == Z_STREAM_ERROR)
                return fail(ErrorKind::internal, "zlib deflate failed");
            auto produced = m_out.size() - m_stream.avail_out;
            if (produced > 0)
                TW_TRY(m_sink(m_out.data(), produced));
            if (flush == Z_FINISH ? rc == Z_STREAM_END : (m_stream.avail_in == 0 && m_stream.avail_out != 0))
                break;
        }
        return {};
    }

    ByteSink m_sink;
    std::vector<char> m_out;
    std::vector<char> m_slice;
    std::size_t m_filled = 0;
    int m_chosen;  // the level compressible slices get
    int m_level;   // the level the stream is at now
    z_stream m_stream{};
    gz_header m_header{};
    bool m_ok = false;
};

class ZstdCompressor final : public Compressor {
public:
    ZstdCompressor(ByteSink sink, int level) : m_sink(std::move(sink)), m_out(k_out_chunk), m_ctx(ZSTD_createCCtx()) {
        m_ok = m_ctx && !ZSTD_isError(ZSTD_CCtx_setParameter(m_ctx, ZSTD_c_compressionLevel, level)) &&
               !ZSTD_isError(ZSTD_CCtx_setParameter(m_ctx, ZSTD_c_checksumFlag, 1));
    }
    ~ZstdCompressor() override { ZSTD_freeCCtx(m_ctx); }
    ZstdCompressor(const ZstdCompressor&) = delete;
    ZstdCompressor& operator=(const ZstdCompressor&) = delete;

    Status write(const char* data, std::size_t size) override { return run(data, size, ZSTD_e_continue); }
    Status finish() override { return run(nullptr, 0, ZSTD_e_end); }

private:
    Status run(const char* data, std::size_t size, ZSTD_EndDirective mode) {
        if (!m_ok)
            return fail(ErrorKind::internal, "libzstd could not start a compression stream");
        ZSTD_inBuffer in{data, size, 0};
        while (true) {
            ZSTD_outBuffer out{m_out.data(), m_out.size(), 0};
            auto left = ZSTD_compressStream2(m_ctx, &out, &in, mode);
            if (ZSTD_isError(left))
                return fail(ErrorKind::internal, std::string("zstd compression failed: ") + ZSTD_getErrorName(left));
            if (out.pos > 0)
                TW_TRY(m_sink(m_out.data(), out.pos));
            if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
                break;
        }
        return {};
    }

    ByteSink m_sink;
    std::vector<char> m_out;
    ZSTD_CCtx* m_ctx;
    bool m_ok = false;
};

class PassThrough final : public Compressor {
public:
    explicit PassThrough(ByteSink sink) : m_sink(std::move(sink)) {}
    Status write(const char* data, std::size_t size) override { return size ? m_sink(data, size) : Status{}; }
    Status finish() override { return {}; }

private:
    ByteSink m_sink;
};

} // namespace

Result<Compression> parse_compression(std::string_view text) {
    if (text == "gzip")
        return Compression::gzip;
    if (text == "zstd")
        return Compression::zstd;
    if (text == "none")
        return Compression::none;
    return fail(ErrorKind::invalid_input, "--compress must be gzip, zstd or none, not '" + std::string(text) + "'");
}

std::string_view to_string(Compression compression) {
    switch (compression) {
    case Compression::gzip:
        return "gzip";
    case Compression::zstd:
        return "zstd";
    case Compression::none:
        return "none";
    }
    return "none";
}

Status check_compression_level(Compression compression, int level) {
    if (level == 0)
        return {};
    switch (compression) {
    case Compression::gzip:
        if (level >= 1 && level <= 9)
            return {};
        return fail(ErrorKind::invalid_input, "--compress-level " + std::to_string(level) +
                                                  " is not a gzip level: give 1 (fastest) to 9 (smallest); the "
                                                  "default is " + std::to_string(k_default_gzip_level));
    case Compression::zstd:
        if (level >= 1 && level <= k_max_zstd_level)
            return {};
        return fail(ErrorKind::invalid_input, "--compress-level " + std::to_string(level) +
                                                  " is not a zstd level: give 1 (fastest) to " +
                                                  std::to_string(k_max_zstd_level) + " (smallest); the default is " +
                                                  std::to_string(k_default_zstd_level));
    case Compression::none:
        break;
    }
    return fail(ErrorKind::invalid_input, "--compress-level needs --compress gzip or zstd: with --compress none "
                                          "the layers are not compressed (drop --compress-level)");
}

int effective_compression_level(Compression compression, int level) {
    switch (compression) {
    case Compression::gzip:
        return level ? level : k_default_gzip_level;
    case Compression::zstd:
        return level ? level : k_default_zstd_level;
    case Compression::none:
        break;
    }
    return 0;
}

std::unique_ptr<Compressor> make_compressor(Compression compression, ByteSink sink, int level) {
    switch (compression) {
    case Compression::gzip:
        return std::make_unique<GzipCompressor>(std::move(sink), effective_compression_level(compression, level));
    case Compression::zstd:
        return std::make_unique<ZstdCompressor>(std::move(sink), effective_compression_level(compression, level));
    case Compression::none:
        break;
    }
    return std::make_unique<PassThrough>(std::move(sink));
}

ContentKind sniff_content(std::string_view head) {
    if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f && static_cast<unsigned char>(head[1]) == 0x8b)
        return ContentKind::gzip;
    if (head.size() >= 4 && head.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4))
        return ContentKind::zstd;
    // POSIX ustar and GNU tar both put "ustar" at offset 257.
    if (head.size() >= 262 && head.substr(257, 5) == "ustar")
        return ContentKind::tar;
    return ContentKind::other;
}

} // namespace tagwarden::source
