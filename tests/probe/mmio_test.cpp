// Accesses to guest-physical addresses with no memory slot come back as MMIO exits.
#include "probe_fixture.h"

namespace vireo::probe {
namespace {

using Kind = IoAccess::Kind;

TEST_F(ProbeTest, MmioWriteAndReadOnUnmappedAddress) {
    Asm b;
    b.mov_rax(kUnmappedAddress).mov_mem_rax_imm32(0x600dcafe);
    b.mov_eax_mem_rax();  // mov eax, [rax]
    b.mov_ebx_eax();      // keep it in ebx
    b.hlt();
    auto g = guest(CpuMode::Long64, b);
    ASSERT_TRUE(g);
    RecordingIo io;
    io.set_read_value(kUnmappedAddress, 0x12345678);
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    const std::vector<IoAccess> expected = {
        {Kind::MmioWrite, kUnmappedAddress, 4, 0x600dcafe},
        {Kind::MmioRead, kUnmappedAddress, 4, 0x12345678},
    };
    EXPECT_EQ(io.accesses(), expected);
    auto regs = g->vcpu().get_regs();
    ASSERT_TRUE(regs.ok());
    EXPECT_EQ(regs->rbx, 0x12345678U);
    EXPECT_EQ(g->vcpu().stats()[ExitReason::MmioWrite], 1U);
    EXPECT_EQ(g->vcpu().stats()[ExitReason::MmioRead], 1U);
}

TEST_F(ProbeTest, UnclaimedMmioReadsAllOnes) {
    Asm a;
    a.mov_rax(kUnmappedAddress + 0x1000).mov_eax_mem_rax().mov_ebx_eax().hlt();
    auto g = guest(CpuMode::Long64, a);
    ASSERT_TRUE(g);
    RecordingIo io;
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    auto regs = g->vcpu().get_regs();
    ASSERT_TRUE(regs.ok());
    EXPECT_EQ(regs->rbx, 0xffffffffU);
}

}  // namespace
}  // namespace vireo::probe
