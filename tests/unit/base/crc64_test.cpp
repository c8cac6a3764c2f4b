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

}  // namespace
}  // namespace vireo
