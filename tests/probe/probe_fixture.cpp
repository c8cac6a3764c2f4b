#include "probe_fixture.h"

#ifdef VIREO_PROBE_SOFT
#include "accel/soft/soft_accelerator.h"
#else
#include "accel/kvm/kvm_accelerator.h"
#endif

namespace vireo::probe {

Result<std::unique_ptr<Accelerator>> open_probe_accelerator() {
#ifdef VIREO_PROBE_SOFT
    return std::unique_ptr<Accelerator>(std::make_unique<SoftAccelerator>());
#else
    auto kvm = KvmAccelerator::open();
    if (!kvm) {
        return kvm.error();
    }
    return std::unique_ptr<Accelerator>(std::move(kvm).value());
#endif
}

bool probe_on_soft() {
#ifdef VIREO_PROBE_SOFT
    return true;
#else
    return false;
#endif
}

void ProbeTest::SetUp() {
    auto accel = open_probe_accelerator();
    ASSERT_TRUE(accel.ok()) << "probe tests need their accelerator: " << accel.error().message();
    m_accel = std::move(accel).value();
}

std::unique_ptr<ProbeGuest> ProbeTest::guest(CpuMode mode, const Asm& code) {
    auto g = ProbeGuest::create(*m_accel, mode, code.code());
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
