// Shared setup for probe tests: one KVM accelerator per test, with a clear failure (not a skip)
// when /dev/kvm is unusable, since the probe level is the point of these tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "accel/kvm/kvm_accelerator.h"
#include "probe/asm.h"
#include "probe/probe_guest.h"

namespace vireo::probe {

class ProbeTest : public ::testing::Test {
protected:
    void SetUp() override;

    // Builds a guest or fails the test with the accelerator's message.
    std::unique_ptr<ProbeGuest> guest(CpuMode mode, const Asm& code);
    // Runs to a lifecycle exit with a generous watchdog and expects no host error.
    VcpuExit run(ProbeGuest& g, IoHandler& io,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

    std::unique_ptr<KvmAccelerator> m_kvm;

public:
    KvmAccelerator* kvm() { return m_kvm.get(); }
};

}  // namespace vireo::probe
