// Real-mode (16-bit) code on the soft CPU: [BX+SI] addressing, PUSHA/POPA, XLAT and the BCD
// adjustments, which only exist outside 64-bit mode and so are out of the differential test's
// reach (expected values from the SDM Vol. 2 examples and definitions).
#include <gtest/gtest.h>

#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

using Bytes = std::vector<std::uint8_t>;

Regs run_real(const Bytes& code, const std::function<void(probe::ProbeGuest&)>& setup = {}) {
    auto g = soft_guest(probe::CpuMode::Real, code);
    EXPECT_TRUE(g);
    if (setup) {
        setup(*g);
    }
    probe::RecordingIo io;
    auto exit = soft_vcpu(*g).run(io);
    EXPECT_TRUE(exit.ok());
    EXPECT_EQ(exit->kind, VcpuExitKind::Halt) << exit->detail;
    return *soft_vcpu(*g).get_regs();
}

TEST(SoftRealMode, BxSiAddressingAndXlat) {
    // mov bx, 0x7000; mov si, 5; mov cl, [bx+si]; mov al, 3; xlat; hlt
    const Regs r = run_real(
        {0xbb, 0x00, 0x70, 0xbe, 0x05, 0x00, 0x8a, 0x08, 0xb0, 0x03, 0xd7, 0xf4},
        [](probe::ProbeGuest& g) {
            ASSERT_TRUE(g.memory()
                            .write(GuestAddress(0x7000), Bytes{0x10, 0x11, 0x12, 0x13, 0x14, 0x15})
                            .ok());
        });
    EXPECT_EQ(r.rcx & 0xff, 0x15U);
    EXPECT_EQ(r.rax & 0xff, 0x13U);
}

TEST(SoftRealMode, PushaPopaRoundTrip) {
    // mov ax, 0x1111; mov cx, 0x2222; mov bp, 0x3333; pusha; xor ax, ax; xor cx, cx;
    // xor bp, bp; popa; hlt
    const Regs r = run_real({0xb8, 0x11, 0x11, 0xb9, 0x22, 0x22, 0xbd, 0x33, 0x33, 0x60, 0x31, 0xc0,
                             0x31, 0xc9, 0x31, 0xed, 0x61, 0xf4});
    EXPECT_EQ(r.rax & 0xffff, 0x1111U);
    EXPECT_EQ(r.rcx & 0xffff, 0x2222U);
    EXPECT_EQ(r.rbp & 0xffff, 0x3333U);
    EXPECT_EQ(r.rsp, probe::kStackTop);
}

TEST(SoftRealMode, DecimalAdjustments) {
    // mov al, 0x79; add al, 0x35; daa -> AL=0x14, CF=1 (SDM Vol. 2, DAA example)
    Regs r = run_real({0xb0, 0x79, 0x04, 0x35, 0x27, 0xf4});
    EXPECT_EQ(r.rax & 0xff, 0x14U);
    EXPECT_NE(r.rflags & 1, 0U);
    // mov al, 0x35; sub al, 0x47; das -> AL=0x88, CF=1 (SDM Vol. 2, DAS example)
    r = run_real({0xb0, 0x35, 0x2c, 0x47, 0x2f, 0xf4});
    EXPECT_EQ(r.rax & 0xff, 0x88U);
    EXPECT_NE(r.rflags & 1, 0U);
    // mov ax, 0x0009; add al, 8; aaa -> AX=0x0107 (unpacked BCD 17)
    r = run_real({0xb8, 0x09, 0x00, 0x04, 0x08, 0x37, 0xf4});
    EXPECT_EQ(r.rax & 0xffff, 0x0107U);
    // mov ax, 0x004f; aam -> AX=0x0709; aad -> AX=0x004f
    r = run_real({0xb8, 0x4f, 0x00, 0xd4, 0x0a, 0x89, 0xc3, 0xd5, 0x0a, 0xf4});
    EXPECT_EQ(r.rbx & 0xffff, 0x0709U);
    EXPECT_EQ(r.rax & 0xffff, 0x004fU);
}

}  // namespace
}  // namespace vireo::soft::test
