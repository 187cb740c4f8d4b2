#include <tagwarden/source/compress.hpp>

#include <catch2/catch.hpp>
#include <zlib.h>
#include <zstd.h>

#include <random>
#include <string>

using namespace tagwarden;
using namespace tagwarden::source;

namespace {

std::string compress_all(Compression c, const std::string& input, std::size_t chunk) {
    std::string out;
    auto compressor = make_compressor(c, [&](const char* d, std::size_t n) -> Status {
        out.append(d, n);
        return {};
    });
    for (std::size_t i = 0; i < input.size(); i += chunk)
        REQUIRE(compressor->write(input.data() + i, std::min(chunk, input.size() - i)));
    REQUIRE(compressor->finish());
    return out;
}

std::string gunzip(const std::string& in) {
    z_stream s{};
    REQUIRE(inflateInit2(&s, 15 + 16) == Z_OK);
    std::string out;
    char buf[65536];
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    s.avail_in = static_cast<uInt>(in.size());
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        s.next_out = reinterpret_cast<Bytef*>(buf);
        s.avail_out = sizeof buf;
        rc = inflate(&s, Z_NO_FLUSH);
        REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
        out.append(buf, sizeof buf - s.avail_out);
    }
    CHECK(s.avail_in == 0);
    inflateEnd(&s);
    return out;
}

std::string unzstd(const std::string& in) {
    auto* d = ZSTD_createDStream();
    std::string out;
    char buf[65536];
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    std::size_t rc = 1;
    while (input.pos < input.size || rc != 0) {
        ZSTD_outBuffer output{buf, sizeof buf, 0};
        rc = ZSTD_decompressStream(d, &output, &input);
        REQUIRE_FALSE(ZSTD_isError(rc));
        out.append(buf, output.pos);
        if (input.pos == input.size && output.pos == 0 && rc != 0)
            FAIL("zstd stream ended early");
    }
    ZSTD_freeDStream(d);
    return out;
}

std::string sample(std::size_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        s[i] = static_cast<char>(i % 7 == 0 ? rng() & 0xff : 'a' + (i % 13));
    return s;
}

} // namespace

TEST_CASE("gzip output is deterministic, round-trips, and has a fixed header", "[source][compress]") {
    auto input = sample(3 * 1024 * 1024 + 17, 1);
    auto a = compress_all(Compression::gzip, input, 1000);
    auto b = compress_all(Compression::gzip, input, 256 * 1024);  // other write sizes, same bytes
    CHECK(a == b);
    CHECK(a.size() < input.size());
    CHECK(gunzip(a) == input);
    REQUIRE(a.size() > 10);
    CHECK(static_cast<unsigned char>(a[0]) == 0x1f);
    CHECK(static_cast<unsigned char>(a[1]) == 0x8b);
    CHECK(a[3] == 0);                     // no FNAME, FCOMMENT, FEXTRA
    CHECK(a.substr(4, 4) == std::string(4, '\0'));  // mtime 0
    CHECK(static_cast<unsigned char>(a[9]) == 255);  // OS: unknown, whatever the build machine
    CHECK(sniff_content(a) == ContentKind::gzip);
}

TEST_CASE("gzip stores incompressible slices, deterministically, and still compresses the rest", "[source][compress]") {
    std::mt19937_64 rng(7);
    std::string random(2 * 1024 * 1024 + 333, '\0');
    for (auto& c : random)
        c = static_cast<char>(rng() & 0xff);
    // Random, then compressible, then random again: the level changes twice inside one stream.
    auto input = random.substr(0, 1024 * 1024) + sample(1024 * 1024, 4) + random.substr(1024 * 1024);
    auto a = compress_all(Compression::gzip, input, 777);
    auto b = compress_all(Compression::gzip, input, 3 * 1024 * 1024);
    CHECK(a == b);
    CHECK(gunzip(a) == input);
    // Stored random bytes cost a few bytes per 64 KiB block; the compressible MiB shrinks.
    CHECK(a.size() < random.size() + 1024 * 1024 / 2);
    auto r = compress_all(Compression::gzip, random, 65536);
    CHECK(gunzip(r) == random);
    CHECK(r.size() < random.size() + random.size() / 1000);
}

TEST_CASE("zstd output is deterministic and round-trips", "[source][compress]") {
    auto input = sample(2 * 1024 * 1024 + 5, 2);
    auto a = compress_all(Compression::zstd, input, 4096);
    auto b = compress_all(Compression::zstd, input, 1024 * 1024);
    CHECK(a == b);
    CHECK(a.size() < input.size());
    CHECK(unzstd(a) == input);
    CHECK(sniff_content(a) == ContentKind::zstd);
}

TEST_CASE("none passes bytes through; empty input still makes a valid stream", "[source][compress]") {
    auto input = sample(100000, 3);
    CHECK(compress_all(Compression::none, input, 333) == input);
    CHECK(gunzip(compress_all(Compression::gzip, "", 1)).empty());
    CHECK(unzstd(compress_all(Compression::zstd, "", 1)).empty());
}

TEST_CASE("compression names parse both ways", "[source][compress]") {
    for (auto c : {Compression::gzip, Compression::zstd, Compression::none})
        CHECK(*parse_compression(to_string(c)) == c);
    auto bad = parse_compression("xz");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == ErrorKind::invalid_input);
}

TEST_CASE("content sniffing", "[source][compress]") {
    std::string tar(512, '\0');
    tar.replace(257, 6, "ustar");
    CHECK(sniff_content(tar) == ContentKind::tar);
    CHECK(sniff_content("{\"a\":1}") == ContentKind::other);
    CHECK(sniff_content("") == ContentKind::other);
}
