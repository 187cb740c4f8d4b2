#include <tagwarden/source/compress.hpp>

#include <catch2/catch.hpp>
#include <zlib.h>
#include <zstd.h>

#include <random>
#include <string>

using namespace tagwarden;
using namespace tagwarden::source;

namespace {

std::string compress_all(Compression c, const std::string& input, std::size_t chunk, int level = 0) {
    std::string out;
    auto compressor = make_compressor(c, [&](const char* d, std::size_t n) -> Status {
        out.append(d, n);
        return {};
    }, level);
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

// Text-like: words from a small vocabulary, in random order (what levels trade speed against).
std::string words(std::size_t size, unsigned seed) {
    static const char* vocabulary[] = {"layer ", "image ", "digest ", "manifest ", "tag ", "registry ", "push ",
                                       "lifecycle ", "policy ", "quota ", "lock ", "blob ", "config\n", "sha256 "};
    std::mt19937 rng(seed);
    std::string s;
    while (s.size() < size)
        s += vocabulary[rng() % std::size(vocabulary)];
    s.resize(size);
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

TEST_CASE("a compression level changes the bytes, not the content; no level is the fixed default", "[source][compress]") {
    auto input = words(2 * 1024 * 1024 + 9, 5);
    auto fast = compress_all(Compression::gzip, input, 1000, 1);
    CHECK(fast == compress_all(Compression::gzip, input, 64 * 1024, 1));  // deterministic at a level too
    CHECK(gunzip(fast) == input);
    auto standard = compress_all(Compression::gzip, input, 1000);
    CHECK(standard == compress_all(Compression::gzip, input, 1000, k_default_gzip_level));
    CHECK(fast != standard);
    CHECK(fast.size() > standard.size());
    auto best = compress_all(Compression::gzip, input, 1000, 9);
    CHECK(gunzip(best) == input);
    CHECK(best.size() <= standard.size());

    // Level 1 beside stored (level 0) slices: the stream switches between them and still round-trips.
    std::mt19937_64 rng(11);
    std::string random(600 * 1024, '\0');
    for (auto& c : random)
        c = static_cast<char>(rng() & 0xff);
    auto mixed = random + input + random;
    CHECK(gunzip(compress_all(Compression::gzip, mixed, 4096, 1)) == mixed);

    auto z1 = compress_all(Compression::zstd, input, 4096, 1);
    auto z19 = compress_all(Compression::zstd, input, 4096, 19);
    CHECK(compress_all(Compression::zstd, input, 4096) == compress_all(Compression::zstd, input, 4096, 3));
    CHECK(unzstd(z1) == input);
    CHECK(unzstd(z19) == input);
    CHECK(z19.size() < z1.size());
    CHECK(effective_compression_level(Compression::gzip, 0) == 6);
    CHECK(effective_compression_level(Compression::zstd, 0) == 3);
    CHECK(effective_compression_level(Compression::zstd, 12) == 12);
    CHECK(effective_compression_level(Compression::none, 0) == 0);
}

TEST_CASE("compression levels outside the algorithm's range are refused with the range", "[source][compress]") {
    CHECK(check_compression_level(Compression::gzip, 0));
    CHECK(check_compression_level(Compression::gzip, 1));
    CHECK(check_compression_level(Compression::gzip, 9));
    CHECK(check_compression_level(Compression::zstd, 19));
    CHECK(check_compression_level(Compression::none, 0));
    auto gz = check_compression_level(Compression::gzip, 10);
    REQUIRE_FALSE(gz);
    CHECK(gz.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(gz.error().message, Catch::Contains("1 (fastest) to 9"));
    auto negative = check_compression_level(Compression::gzip, -1);
    REQUIRE_FALSE(negative);
    auto zs = check_compression_level(Compression::zstd, 20);
    REQUIRE_FALSE(zs);
    CHECK_THAT(zs.error().message, Catch::Contains("1 (fastest) to 19"));
    auto none = check_compression_level(Compression::none, 3);
    REQUIRE_FALSE(none);
    CHECK_THAT(none.error().message, Catch::Contains("--compress none"));
}

TEST_CASE("content sniffing", "[source][compress]") {
    std::string tar(512, '\0');
    tar.replace(257, 6, "ustar");
    CHECK(sniff_content(tar) == ContentKind::tar);
    CHECK(sniff_content("{\"a\":1}") == ContentKind::other);
    CHECK(sniff_content("") == ContentKind::other);
}
