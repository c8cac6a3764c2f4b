// Port I/O exits reach the IoHandler with the right port, width, direction and data, and values
// returned by the handler land in the guest's registers.
#include "probe_fixture.h"

namespace vireo::probe {
namespace {

using Kind = IoAccess::Kind;

TEST_F(ProbeTest, RealModeOutReachesHandlerInOrder) {
    Asm a;
    a.code16(true).mov_al(0x5a).out_imm8_al(0x80).mov_dx(0x3f8).mov_al('v').out_dx_al();
    a.mov_eax(0xdeadbeef).mov_dx(0xcfc).out_dx_eax().hlt();
    auto g = guest(CpuMode::Real, a);
    ASSERT_TRUE(g);
    RecordingIo io;
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    const std::vector<IoAccess> expected = {
        {Kind::PioWrite, 0x80, 1, 0x5a},
        {Kind::PioWrite, 0x3f8, 1, 'v'},
        {Kind::PioWrite, 0xcfc, 4, 0xdeadbeef},
    };
    EXPECT_EQ(io.accesses(), expected);
    EXPECT_EQ(g->vcpu().stats()[ExitReason::PioWrite], 3U);
    EXPECT_EQ(g->vcpu().stats()[ExitReason::Halt], 1U);
}

TEST_F(ProbeTest, InReturnsHandlerValueAndUnclaimedPortsReadAllOnes) {
    // in al, 0x60 (handler answers 0x21); add al, 1; out 0x80, al; in al, 0x61 (unclaimed); out.
    Asm a;
    a.code16(true).in_al_imm8(0x60).add_al_imm8(1).out_imm8_al(0x80);
    a.in_al_imm8(0x61).out_imm8_al(0x81).hlt();
    auto g = guest(CpuMode::Real, a);
    ASSERT_TRUE(g);
    RecordingIo io;
    io.set_read_value(0x60, 0x21);
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    const std::vector<IoAccess> expected = {
        {Kind::PioRead, 0x60, 1, 0x21},
        {Kind::PioWrite, 0x80, 1, 0x22},
        {Kind::PioRead, 0x61, 1, 0xff},
        {Kind::PioWrite, 0x81, 1, 0xff},
    };
    EXPECT_EQ(io.accesses(), expected);
}

TEST_F(ProbeTest, LongModeKernelPortIo) {
    Asm a;
    a.mov_dx(0x402).mov_al(0x7e).out_dx_al().in_al_dx().out_imm8_al(0x80).hlt();
    auto g = guest(CpuMode::Long64, a);
    ASSERT_TRUE(g);
    RecordingIo io;
    io.set_read_value(0x402, 0x33);
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    const std::vector<IoAccess> expected = {
        {Kind::PioWrite, 0x402, 1, 0x7e},
        {Kind::PioRead, 0x402, 1, 0x33},
        {Kind::PioWrite, 0x80, 1, 0x33},
    };
    EXPECT_EQ(io.accesses(), expected);
    auto regs = g->vcpu().get_regs();
    ASSERT_TRUE(regs.ok());
    EXPECT_EQ(regs->rax & 0xff, 0x33U);
}

}  // namespace
}  // namespace vireo::probe
