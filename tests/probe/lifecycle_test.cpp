// Lifecycle exits: HLT, triple fault, and user-mode code running at native speed.
#include <chrono>

#include "probe_fixture.h"

namespace vireo::probe {
namespace {

constexpr std::uint8_t kDonePort = 0xf4;

TEST_F(ProbeTest, HltInRealModeExitsWithHalt) {
    Asm a;
    a.code16(true).hlt();
    auto g = guest(CpuMode::Real, a);
    ASSERT_TRUE(g);
    RecordingIo io;
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    auto regs = g->vcpu().get_regs();
    ASSERT_TRUE(regs.ok());
    EXPECT_EQ(regs->rip, kCodeAddress + 1);  // RIP points after the HLT
    EXPECT_TRUE(io.accesses().empty());
}

TEST_F(ProbeTest, HltInLongModeExitsWithHalt) {
    Asm a;
    a.hlt();
    auto g = guest(CpuMode::Long64, a);
    ASSERT_TRUE(g);
    RecordingIo io;
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    auto sregs = g->vcpu().get_sregs();
    ASSERT_TRUE(sregs.ok());
    EXPECT_EQ(sregs->efer & x86::kEferLma, x86::kEferLma) << "guest was not in long mode";
}

TEST_F(ProbeTest, ExceptionWithoutIdtIsATripleFault) {
    // #UD with an empty IDT escalates to #DF and then to shutdown (SDM Vol. 3 §6.15, "Interrupt
    // 8"): the VMM must see it as a lifecycle exit, not hang or crash.
    Asm a;
    a.ud2();
    auto g = guest(CpuMode::Long64, a);
    ASSERT_TRUE(g);
    RecordingIo io;
    const auto exit = run(*g, io);
    EXPECT_EQ(exit.kind, VcpuExitKind::Shutdown) << to_string(exit.kind) << " " << exit.detail;
    EXPECT_EQ(g->vcpu().stats()[ExitReason::Shutdown], 1U);
}

TEST_F(ProbeTest, UserModeLoopRunsAtNativeSpeed) {
    // 10^8 iterations take ~50 ms natively; emulated at ~1 us per instruction they would take
    // minutes. The 10 s watchdog tells the two apart on a noisy machine.
    constexpr std::uint64_t kIterations = 100'000'000;
    Asm a;
    a.mov_rcx(kIterations);
    const auto loop = a.here();
    a.dec_rcx().jnz(loop).mov_al(1).out_imm8_al(kDonePort);
    a.jmp(a.here());  // spin: the VMM stops it after the OUT
    auto g = guest(CpuMode::User64, a);
    ASSERT_TRUE(g);
    RecordingIo io;
    io.on_access([&](const IoAccess& acc) {
        if (acc.address == kDonePort) {
            g->vcpu().request_exit();
        }
    });
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(run(*g, io, std::chrono::seconds(10)).kind, VcpuExitKind::Interrupted);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(io.accesses().size(), 1U);
    auto regs = g->vcpu().get_regs();
    ASSERT_TRUE(regs.ok());
    EXPECT_EQ(regs->rcx, 0U) << "loop did not complete";
    auto sregs = g->vcpu().get_sregs();
    ASSERT_TRUE(sregs.ok());
    EXPECT_EQ(sregs->cs.dpl, 3) << "loop did not run in user mode";
    std::printf("[ probe    ] 1e8 CPL3 iterations in %.3f s\n",
                std::chrono::duration<double>(elapsed).count());
}

}  // namespace
}  // namespace vireo::probe

#include "arch/x86_64/boot_cpu.h"

namespace vireo::probe {
namespace {

TEST_F(ProbeTest, ResetVectorStubWritesTheResetRegisterAndHalts) {
    // The stub vireo puts at F000:FFF0, run here from the probe's real-mode code address.
    auto g = guest(CpuMode::Real, Asm().hlt());
    ASSERT_TRUE(g);
    // install_reset_vector writes at 0xffff0, out of reach of the probe's CS=0: copy it to the
    // probe's entry point.
    std::uint8_t stub[16] = {};
    ASSERT_TRUE(x86::install_reset_vector(g->memory(), 0x602, 0x1).ok());
    ASSERT_TRUE(g->memory().read(GuestAddress(x86::kResetVectorAddress), stub).ok());
    ASSERT_TRUE(g->memory().write(GuestAddress(kCodeAddress), stub).ok());
    RecordingIo io;
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    const std::vector<IoAccess> expected = {{IoAccess::Kind::PioWrite, 0x602, 1, 0x1}};
    EXPECT_EQ(io.accesses(), expected);
}

}  // namespace
}  // namespace vireo::probe
