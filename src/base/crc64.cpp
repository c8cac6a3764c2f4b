#include "base/crc64.h"

#include <array>

namespace vireo {

namespace {

// ECMA-182's polynomial 0x42F0E1EBA9EA3693, bit-reversed for the LSB-first form.
constexpr std::uint64_t kPolyReflected = 0xC96C5795D7870F42ULL;

constexpr std::array<std::uint64_t, 256> make_table() {
    std::array<std::uint64_t, 256> t{};
    for (std::uint64_t i = 0; i < 256; ++i) {
        std::uint64_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1) ? (c >> 1) ^ kPolyReflected : c >> 1;
        }
        t[i] = c;
    }
    return t;
}

constexpr auto kTable = make_table();

}  // namespace

void Crc64::update(std::span<const std::uint8_t> data) {
    std::uint64_t c = m_crc;
    for (std::uint8_t b : data) {
        c = kTable[(c ^ b) & 0xff] ^ (c >> 8);
    }
    m_crc = c;
}

}  // namespace vireo
