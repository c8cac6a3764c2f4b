#include "probe_fixture.h"

namespace vireo::probe {

void ProbeTest::SetUp() {
    auto kvm = KvmAccelerator::open();
    ASSERT_TRUE(kvm.ok()) << "probe tests need a working /dev/kvm: " << kvm.error().message();
    m_kvm = std::move(kvm).value();
}

std::unique_ptr<ProbeGuest> ProbeTest::guest(CpuMode mode, const Asm& code) {
    auto g = ProbeGuest::create(*m_kvm, mode, code.code());
    EXPECT_TRUE(g.ok()) << g.error().message();
    return g.ok() ? std::move(g).value() : nullptr;
}

VcpuExit ProbeTest::run(ProbeGuest& g, IoHandler& io, std::chrono::milliseconds timeout) {
    auto exit = g.run(io, timeout);
    EXPECT_TRUE(exit.ok()) << exit.error().message();
    EXPECT_FALSE(g.timed_out()) << "guest did not reach its exit within " << timeout.count()
                                << " ms";
    return exit.ok() ? std::move(exit).value()
                     : VcpuExit{VcpuExitKind::InternalError, "run failed"};
}

}  // namespace vireo::probe
