#include <tagwarden/source/compress.hpp>

#include <zlib.h>
#include <zstd.h>

#include <array>
#include <string>
#include <vector>

namespace tagwarden::source {

namespace {

constexpr std::size_t k_out_chunk = 128 * 1024;
// Fixed so that a rerun of the same archive gives the same bytes (and the re-push is "unchanged").
constexpr int k_gzip_level = 6;
constexpr int k_zstd_level = 3;

class GzipCompressor final : public Compressor {
public:
    explicit GzipCompressor(ByteSink sink) : m_sink(std::move(sink)), m_out(k_out_chunk) {
        m_ok = deflateInit2(&m_stream, k_gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
        if (m_ok) {
            m_header.time = 0;
            m_header.os = 255;
            m_ok = deflateSetHeader(&m_stream, &m_header) == Z_OK;
        }
    }
    ~GzipCompressor() override { deflateEnd(&m_stream); }
    GzipCompressor(const GzipCompressor&) = delete;
    GzipCompressor& operator=(const GzipCompressor&) = delete;

    Status write(const char* data, std::size_t size) override { return run(data, size, Z_NO_FLUSH); }
    Status finish() override { return run(nullptr, 0, Z_FINISH); }

private:
    Status run(const char* data, std::size_t size, int flush) {
        if (!m_ok)
            return fail(ErrorKind::internal, "zlib could not start a gzip stream");
        // avail_in is 32-bit: feed large buffers in slices.
        do {
            auto slice = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
            m_stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
            m_stream.avail_in = slice;
            data = data ? data + slice : data;
            size -= slice;
            int mode = size == 0 ? flush : Z_NO_FLUSH;
            while (true) {
                m_stream.next_out = reinterpret_cast<Bytef*>(m_out.data());
                m_stream.avail_out = static_cast<uInt>(m_out.size());
                int rc = deflate(&m_stream, mode);
                if (rc == Z_STREAM_ERROR)
                    return fail(ErrorKind::internal, "zlib deflate failed");
                auto produced = m_out.size() - m_stream.avail_out;
                if (produced > 0)
                    TW_TRY(m_sink(m_out.data(), produced));
                if (mode == Z_FINISH ? rc == Z_STREAM_END : (m_stream.avail_in == 0 && m_stream.avail_out != 0))
                    break;
            }
        } while (size > 0);
        return {};
    }

    ByteSink m_sink;
    std::vector<char> m_out;
    z_stream m_stream{};
    gz_header m_header{};
    bool m_ok = false;
};

class ZstdCompressor final : public Compressor {
public:
    explicit ZstdCompressor(ByteSink sink) : m_sink(std::move(sink)), m_out(k_out_chunk), m_ctx(ZSTD_createCCtx()) {
        m_ok = m_ctx && !ZSTD_isError(ZSTD_CCtx_setParameter(m_ctx, ZSTD_c_compressionLevel, k_zstd_level)) &&
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

std::unique_ptr<Compressor> make_compressor(Compression compression, ByteSink sink) {
    switch (compression) {
    case Compression::gzip:
        return std::make_unique<GzipCompressor>(std::move(sink));
    case Compression::zstd:
        return std::make_unique<ZstdCompressor>(std::move(sink));
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
