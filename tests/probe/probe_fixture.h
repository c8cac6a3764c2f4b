// Shared setup for probe tests: one accelerator per test, with a clear failure (not a skip) when
// it cannot be opened, since the probe level is the point of these tests.
//
// The same test sources are built twice: vireo_probe_tests on /dev/kvm ("probe.*") and
// vireo_soft_probe_tests on the soft CPU ("soft_probe.*", VIREO_PROBE_SOFT defined), so every
// probe guest runs unchanged on both accelerators.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "accel/vm.h"
#include "probe/asm.h"
#include "probe/probe_guest.h"

namespace vireo::probe {

// The accelerator this build of the probe tests runs on.
Result<std::unique_ptr<Accelerator>> open_probe_accelerator();
// True in the soft build: for the few timings that differ (an interpreter is not native speed).
bool probe_on_soft();

class ProbeTest : public ::testing::Test {
protected:
    void SetUp() override;

    // Builds a guest or fails the test with the accelerator's message.
    std::unique_ptr<ProbeGuest> guest(CpuMode mode, const Asm& code);
    // Runs to a lifecycle exit with a generous watchdog and expects no host error.
    VcpuExit run(ProbeGuest& g, IoHandler& io,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

    std::unique_ptr<Accelerator> m_accel;

public:
    Accelerator* accel() { return m_accel.get(); }
};

}  // namespace vireo::probe
