// The exit summary's line of vCPU state (machine/vcpu_report.h).
#include "machine/vcpu_report.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

TEST(VcpuReport, HaltedWithAnInterruptHeldAndTheTimerInThePast) {
    VcpuState s;
    s.mp_state = MpState::Halted;
    s.regs.rflags = 0x246;
    s.has_lapic = true;
    s.lapic.write(0x80, 0xf0);                // TPR above the vector: held in the IRR
    s.lapic.write(0x320, 0x400ec);            // LVT timer: TSC-deadline mode, vector 0xec
    s.lapic.write(0x200 + 7 * 16, 1u << 12);  // IRR: vector 0xec
    s.lapic.write(0x100 + 1 * 16, 1u << 3);   // ISR: vector 0x23
    s.tsc_khz = 1'000'000;                    // 1 GHz: 1,000,000 ticks a millisecond
    s.msrs = {{0x10, 5'000'000}, {0x6e0, 3'000'000}};
    s.events.interrupt_injected = true;
    s.events.interrupt_vector = 0x30;
    const std::string r = vcpu_state_report(s);
    EXPECT_NE(r.find("halted, rflags 0x246 (IF 1)"), std::string::npos) << r;
    EXPECT_NE(r.find("interrupt 0x30 injected"), std::string::npos) << r;
    EXPECT_NE(r.find("tpr 0xf0 lvtt 0x400ec"), std::string::npos) << r;
    EXPECT_NE(r.find("irr 0xec isr 0x23"), std::string::npos) << r;
    EXPECT_NE(r.find("tsc deadline 0x2dc6c0 (-2.000 ms)"), std::string::npos) << r;
}

TEST(VcpuReport, RunnableWithNothingInFlight) {
    VcpuState s;
    s.regs.rflags = 0x2;
    s.msrs = {{0x6e0, 0}};
    const std::string r = vcpu_state_report(s);
    EXPECT_EQ(r, "runnable, rflags 0x2 (IF 0), tsc deadline unarmed");
}

}  // namespace
}  // namespace vireo
