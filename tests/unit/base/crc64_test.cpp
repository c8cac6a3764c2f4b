#include "base/crc64.h"

#include <cstdint>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace vireo {
namespace {

std::span<const std::uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

TEST(Crc64, CheckValueOfCrc64Xz) {
    EXPECT_EQ(Crc64::of(bytes_of("123456789")), 0x995dc9bbdf1939faULL);
    EXPECT_EQ(Crc64::of({}), 0U);
}

TEST(Crc64, IncrementalUpdatesMatchOneShot) {
    const std::string_view text = "the quick brown fox jumps over the lazy dog";
    for (std::size_t split = 0; split <= text.size(); ++split) {
        Crc64 c;
        c.update(bytes_of(text.substr(0, split)));
        c.update(bytes_of(text.substr(split)));
        EXPECT_EQ(c.value(), Crc64::of(bytes_of(text))) << split;
    }
}

TEST(Crc64, EverySingleBitFlipChangesIt) {
    std::vector<std::uint8_t> data(64);
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<std::uint8_t>(i * 37);
    }
    const auto good = Crc64::of(data);
    for (std::size_t bit = 0; bit < data.size() * 8; ++bit) {
        data[bit / 8] ^= static_cast<std::uint8_t>(1U << (bit % 8));
        EXPECT_NE(Crc64::of(data), good) << bit;
        data[bit / 8] ^= static_cast<std::uint8_t>(1U << (bit % 8));
    }
}

// The eight-bytes-at-a-time path against a bit-by-bit reference, for every length up to 80 at
// every alignment (the tail, the middle and a start off an 8-byte boundary all take part).
TEST(Crc64, SlicedMatchesBitwiseReference) {
    std::vector<std::uint8_t> data(96);
    std::uint32_t x = 12345;
    for (auto& b : data) {
        x = x * 1103515245 + 12345;
        b = static_cast<std::uint8_t>(x >> 16);
    }
    const auto reference = [](std::span<const std::uint8_t> in) {
        std::uint64_t c = ~0ULL;
        for (std::uint8_t b : in) {
            c ^= b;
            for (int k = 0; k < 8; ++k) {
                c = (c & 1) ? (c >> 1) ^ 0xC96C5795D7870F42ULL : c >> 1;
            }
        }
        return ~c;
    };
    for (std::size_t start = 0; start < 8; ++start) {
        for (std::size_t len = 0; start + len <= 88; ++len) {
            const auto part = std::span<const std::uint8_t>(data).subspan(start, len);
            ASSERT_EQ(Crc64::of(part), reference(part)) << "start " << start << " length " << len;
        }
    }
}

}  // namespace
}  // namespace vireo
