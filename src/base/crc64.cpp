#include "base/crc64.h"

#include <array>
#include <cstring>

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

// Slicing-by-8: kSlices[k][i] is the CRC of byte i followed by k zero bytes, so eight bytes fold
// in with eight independent lookups instead of a chain of eight (a live migration checks every
// frame of guest RAM: several times the byte-wise speed).
constexpr std::array<std::array<std::uint64_t, 256>, 8> make_slices() {
    std::array<std::array<std::uint64_t, 256>, 8> t{};
    t[0] = kTable;
    for (std::size_t k = 1; k < 8; ++k) {
        for (std::size_t i = 0; i < 256; ++i) {
            t[k][i] = (t[k - 1][i] >> 8) ^ kTable[t[k - 1][i] & 0xff];
        }
    }
    return t;
}

constexpr auto kSlices = make_slices();

}  // namespace

void Crc64::update(std::span<const std::uint8_t> data) {
    std::uint64_t c = m_crc;
    const std::uint8_t* p = data.data();
    std::size_t n = data.size();
    while (n >= 8) {
        // Little-endian load (x86-64): byte 0 is the low byte, the first one the CRC takes.
        std::uint64_t w = 0;
        std::memcpy(&w, p, 8);
        c ^= w;
        c = kSlices[7][c & 0xff] ^ kSlices[6][(c >> 8) & 0xff] ^ kSlices[5][(c >> 16) & 0xff] ^
            kSlices[4][(c >> 24) & 0xff] ^ kSlices[3][(c >> 32) & 0xff] ^
            kSlices[2][(c >> 40) & 0xff] ^ kSlices[1][(c >> 48) & 0xff] ^ kSlices[0][c >> 56];
        p += 8;
        n -= 8;
    }
    for (; n > 0; --n, ++p) {
        c = kTable[(c ^ *p) & 0xff] ^ (c >> 8);
    }
    m_crc = c;
}

}  // namespace vireo
