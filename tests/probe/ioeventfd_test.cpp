// KVM_IOEVENTFD through Vm::add_ioevent: a guest write to a registered address signals the
// eventfd inside the kernel (no MMIO exit reaches the VMM), with and without a data match; after
// remove_ioevent the same write is an ordinary MMIO exit again. This is the virtqueue notify path.
#include "base/event_fd.h"
#include "probe_fixture.h"

namespace vireo::probe {
namespace {

using Kind = IoAccess::Kind;

TEST_F(ProbeTest, IoeventfdTakesTheWriteWithoutAnExit) {
    Asm b;
    b.mov_rax(kUnmappedAddress).mov_mem_rax_imm32(7);      // matches: signalled in the kernel
    b.mov_rax(kUnmappedAddress + 8).mov_mem_rax_imm32(1);  // no ioeventfd: an MMIO exit
    b.hlt();
    auto g = guest(CpuMode::Long64, b);
    ASSERT_TRUE(g);
    auto fd = EventFd::create();
    ASSERT_TRUE(fd);
    const IoEventAddress where{true, kUnmappedAddress, 4, {}};
    ASSERT_TRUE(g->vm().add_ioevent(where, fd->fd())) << "KVM_IOEVENTFD";
    RecordingIo io;
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    EXPECT_EQ(fd->consume(), 1U);
    const std::vector<IoAccess> expected = {{Kind::MmioWrite, kUnmappedAddress + 8, 4, 1}};
    EXPECT_EQ(io.accesses(), expected);
    EXPECT_EQ(g->vcpu().stats()[ExitReason::MmioWrite], 1U);
    EXPECT_TRUE(g->vm().remove_ioevent(where, fd->fd()));
}

TEST_F(ProbeTest, IoeventfdDatamatchAndRemoval) {
    Asm b;
    b.mov_rax(kUnmappedAddress).mov_mem_rax_imm32(3);  // no match: exits
    b.mov_rax(kUnmappedAddress).mov_mem_rax_imm32(5);  // match: signalled
    b.hlt();
    auto g = guest(CpuMode::Long64, b);
    ASSERT_TRUE(g);
    auto fd = EventFd::create();
    ASSERT_TRUE(fd);
    const IoEventAddress where{true, kUnmappedAddress, 4, 5};
    ASSERT_TRUE(g->vm().add_ioevent(where, fd->fd()));
    RecordingIo io;
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    EXPECT_EQ(fd->consume(), 1U);
    const std::vector<IoAccess> expected = {{Kind::MmioWrite, kUnmappedAddress, 4, 3}};
    EXPECT_EQ(io.accesses(), expected);
    ASSERT_TRUE(g->vm().remove_ioevent(where, fd->fd()));
    EXPECT_FALSE(g->vm().remove_ioevent(where, fd->fd()));  // not registered any more
    EXPECT_FALSE(g->vm().add_ioevent({true, kUnmappedAddress, 3, {}}, fd->fd()));  // bad length
}

}  // namespace
}  // namespace vireo::probe
