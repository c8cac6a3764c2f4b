#include "probe/asm.h"

#include <vector>

#include <gtest/gtest.h>

namespace vireo::probe {
namespace {

std::vector<std::uint8_t> bytes(const Asm& a) {
    return {a.code().begin(), a.code().end()};
}

// Expected encodings from the SDM Vol. 2 opcode tables.
TEST(Asm, EncodesPortIo) {
    Asm a;
    a.mov_al(0x41).out_imm8_al(0x80).mov_dx(0x3f8).out_dx_al().in_al_dx().in_al_imm8(0x60);
    EXPECT_EQ(bytes(a), (std::vector<std::uint8_t>{0xb0, 0x41, 0xe6, 0x80, 0x66, 0xba, 0xf8, 0x03,
                                                   0xee, 0xec, 0xe4, 0x60}));
}

TEST(Asm, SixteenBitCodeSwapsOperandSizePrefixes) {
    Asm a;
    a.code16(true).mov_dx(0x3f8).mov_eax(0x12345678).out_dx_eax();
    EXPECT_EQ(bytes(a), (std::vector<std::uint8_t>{0xba, 0xf8, 0x03, 0x66, 0xb8, 0x78, 0x56, 0x34,
                                                   0x12, 0x66, 0xef}));
}

TEST(Asm, LoopWithBackwardBranch) {
    Asm a;
    a.mov_rcx(3);
    const auto top = a.here();
    a.dec_rcx().jnz(top).hlt();
    EXPECT_EQ(bytes(a), (std::vector<std::uint8_t>{0x48, 0xb9, 3, 0, 0, 0, 0, 0, 0, 0, 0x48, 0xff,
                                                   0xc9, 0x75, 0xfb, 0xf4}));
}

TEST(Asm, SpinIsJumpToSelf) {
    Asm a;
    a.jmp(a.here());
    EXPECT_EQ(bytes(a), (std::vector<std::uint8_t>{0xeb, 0xfe}));
}

}  // namespace
}  // namespace vireo::probe
