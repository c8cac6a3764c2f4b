// Pausing and stopping: request_exit() must get a spinning vCPU out of the guest promptly, from
// another thread, whether it spins in user or kernel mode, and the guest must resume where it was.
#include <chrono>
#include <future>
#include <thread>

#include "probe_fixture.h"

namespace vireo::probe {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Starts the guest on its own thread, lets it spin for a while, requests an exit and returns how
// long the vCPU took to come back.
Clock::duration stop_latency(ProbeGuest& g, VcpuExit& exit_out) {
    RecordingIo io;
    std::promise<Clock::time_point> returned;
    std::thread vcpu_thread([&] {
        auto r = g.vcpu().run(io);
        returned.set_value(Clock::now());
        exit_out = r.ok() ? *r : VcpuExit{VcpuExitKind::InternalError, r.error().message()};
    });
    std::this_thread::sleep_for(50ms);
    const auto requested = Clock::now();
    g.vcpu().request_exit();
    auto fut = returned.get_future();
    if (fut.wait_for(5s) != std::future_status::ready) {
        ADD_FAILURE() << "vCPU did not stop within 5 s; aborting";
        std::abort();  // the thread cannot be joined; a hang here must not look like a pass
    }
    const auto latency = fut.get() - requested;
    vcpu_thread.join();
    return latency;
}

// A guest spinning in `jmp $` in `mode` must come out within 100 ms of request_exit().
void expect_spin_stops(ProbeTest& t, CpuMode mode) {
    Asm a;
    a.jmp(a.here());
    auto g = ProbeGuest::create(*t.accel(), mode, a.code());
    ASSERT_TRUE(g.ok()) << g.error().message();
    VcpuExit exit{};
    const auto latency = stop_latency(**g, exit);
    EXPECT_EQ(exit.kind, VcpuExitKind::Interrupted);
    EXPECT_LT(latency, 100ms) << std::chrono::duration<double, std::milli>(latency).count()
                              << " ms";
}

TEST_F(ProbeTest, SpinningUserModeVcpuStopsWithin100ms) {
    expect_spin_stops(*this, CpuMode::User64);
}

TEST_F(ProbeTest, SpinningKernelModeVcpuStopsWithin100ms) {
    expect_spin_stops(*this, CpuMode::Long64);
}

TEST_F(ProbeTest, ExitRequestedBeforeRunReturnsAtOnce) {
    Asm a;
    a.mov_al(1).out_imm8_al(0x80).hlt();
    auto g = guest(CpuMode::Long64, a);
    ASSERT_TRUE(g);
    g->vcpu().request_exit();
    RecordingIo io;
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Interrupted);
    EXPECT_TRUE(io.accesses().empty()) << "guest ran although an exit was pending";
    // The request is consumed: the next run executes the guest.
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    EXPECT_EQ(io.accesses().size(), 1U);
}

TEST_F(ProbeTest, PausedGuestResumesWhereItStopped) {
    // A long CPL3 countdown, paused part-way: RCX must have moved, and resuming finishes the loop.
    // The soft CPU interprets (~10^8 instructions/s, not native speed): a shorter loop still
    // outlasts the 50 ms before the pause by far.
    const std::uint64_t kIterations = probe_on_soft() ? 200'000'000 : 2'000'000'000;
    Asm a;
    a.mov_rcx(kIterations);
    const auto loop = a.here();
    a.dec_rcx().jnz(loop).mov_al(1).out_imm8_al(0xf4);
    a.jmp(a.here());
    auto g = guest(CpuMode::User64, a);
    ASSERT_TRUE(g);
    VcpuExit exit{};
    static_cast<void>(stop_latency(*g, exit));
    ASSERT_EQ(exit.kind, VcpuExitKind::Interrupted);
    auto paused = g->vcpu().get_regs();
    ASSERT_TRUE(paused.ok());
    EXPECT_LT(paused->rcx, kIterations) << "guest made no progress before the pause";
    EXPECT_GT(paused->rcx, 0U) << "loop finished before the pause; make it longer";

    RecordingIo io;
    io.on_access([&](const IoAccess&) { g->vcpu().request_exit(); });
    EXPECT_EQ(run(*g, io, 30s).kind, VcpuExitKind::Interrupted);
    ASSERT_EQ(io.accesses().size(), 1U) << "resumed guest did not reach the end of its loop";
    auto done = g->vcpu().get_regs();
    ASSERT_TRUE(done.ok());
    EXPECT_EQ(done->rcx, 0U);
}

}  // namespace
}  // namespace vireo::probe
