// The x87's register format and status-word bits, shared by exec_x87.cpp (the instructions) and
// exec_x87_state.cpp (the register stack and the FNSTENV/FNSAVE environment).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

namespace vireo::soft::x87 {

using f80 = long double;
static_assert(sizeof(f80) == 16 && std::numeric_limits<f80>::digits == 64,
              "x87 emulation needs the host's 80-bit long double");

constexpr std::uint16_t kFswIe = 0x01, kFswZe = 0x04, kFswSf = 0x40, kFswEs = 0x80, kC0 = 0x100,
                        kC1 = 0x200, kC2 = 0x400, kC3 = 0x4000, kFswBusy = 0x8000;
constexpr std::uint16_t kCcMask = kC0 | kC1 | kC2 | kC3;
constexpr unsigned kTopShift = 11;

// The default QNaN ("real indefinite", SDM Vol. 1 §4.8.3.7): sign 1, exponent all ones,
// significand 0xC000000000000000.
inline f80 indefinite() {
    f80 v = 0;
    const std::uint64_t mant = 0xc000000000000000ULL;
    const std::uint16_t se = 0xffff;
    std::memcpy(&v, &mant, 8);
    std::memcpy(reinterpret_cast<std::uint8_t*>(&v) + 8, &se, 2);
    return v;
}

}  // namespace vireo::soft::x87
