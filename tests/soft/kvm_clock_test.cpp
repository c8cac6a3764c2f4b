// kvmclock on the soft CPU (accel/soft/kvm_clock.h): the KVM leaves a guest finds, the scale it
// turns TSC ticks into nanoseconds with, the structures its MSR writes make the VMM write, what a
// set guest clock does to them, and addresses a hostile guest may name.
#include <gtest/gtest.h>

#include <ctime>

#include "accel/soft/kvm_clock.h"
#include "soft_guest.h"

namespace vireo::soft::test {
namespace {

using probe::CpuMode;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t kTimeInfo = 0x10000;
constexpr std::uint64_t kWallClock = 0x10040;

struct TimeInfo {
    std::uint32_t version, pad0;
    std::uint64_t tsc_timestamp, system_time;
    std::uint32_t mul;
    std::int8_t shift;
    std::uint8_t flags, pad[2];
};
static_assert(sizeof(TimeInfo) == 32);

// The frequency the guest derives from a scale (Linux's pvclock_tsc_khz), in Hz.
std::uint64_t guest_hz(PvclockScale s) {
    std::uint64_t hz = (1'000'000'000ULL << 32) / s.mul;
    return s.shift < 0 ? hz << -s.shift : hz >> s.shift;
}

TEST(SoftKvmClock, ScaleTurnsOneSecondOfTicksIntoOneSecond) {
    for (const std::uint64_t hz : {1'000'000ULL, 499'999'999ULL, 1'000'000'000ULL, 1'000'000'001ULL,
                                   2'095'953'000ULL, 4'500'000'000ULL, 100'000'000'000ULL}) {
        const PvclockScale s = pvclock_scale(hz);
        EXPECT_GE(s.mul, 1U << 31) << hz << " Hz: mul keeps 31 bits of precision";
        const std::uint64_t ns = pvclock_ns(hz, s);
        EXPECT_NEAR(static_cast<double>(ns), 1e9, 2.0) << hz << " Hz";
        // An hour of ticks, within 2^-31 of an hour (no overflow in the 64x32 product).
        EXPECT_NEAR(static_cast<double>(pvclock_ns(hz * 3600, s)), 3600e9, 1.7e3) << hz << " Hz";
        EXPECT_NEAR(static_cast<double>(guest_hz(s)), static_cast<double>(hz), hz * 1e-6 + 1)
            << hz << " Hz";
    }
}

// mov eax, 0x40000000; cpuid; mov r8, rbx; mov r9, rcx; mov r10, rdx; mov r11, rax;
// mov eax, 0x40000001; cpuid; mov r12, rax;
// wrmsr(MSR_KVM_SYSTEM_TIME_NEW, kTimeInfo | 1); wrmsr(MSR_KVM_WALL_CLOCK_NEW, kWallClock);
// hlt; hlt
const Bytes kRegisterClock = {
    0xb8, 0x00, 0x00, 0x00, 0x40, 0x0f, 0xa2, 0x49, 0x89, 0xd8, 0x49, 0x89, 0xc9, 0x49, 0x89,
    0xd2, 0x49, 0x89, 0xc3, 0xb8, 0x01, 0x00, 0x00, 0x40, 0x0f, 0xa2, 0x49, 0x89, 0xc4, 0xb9,
    0x01, 0x4d, 0x56, 0x4b, 0xb8, 0x01, 0x00, 0x01, 0x00, 0x31, 0xd2, 0x0f, 0x30, 0xb9, 0x00,
    0x4d, 0x56, 0x4b, 0xb8, 0x40, 0x00, 0x01, 0x00, 0x0f, 0x30, 0xf4, 0xf4};

std::uint64_t guest_tsc(SoftVcpu& v) {
    std::array<MsrEntry, 1> m{};
    m[0].index = 0x10;
    EXPECT_TRUE(v.get_msrs(m).ok());
    return m[0].data;
}

TEST(SoftKvmClock, GuestFindsKvmAndReadsTheVmsClock) {
    auto g = soft_guest(CpuMode::Long64, kRegisterClock);
    ASSERT_TRUE(g);
    probe::RecordingIo io;
    ASSERT_EQ(soft_vcpu(*g).run(io)->kind, VcpuExitKind::Halt);
    const Regs r = *soft_vcpu(*g).get_regs();
    char sig[13] = {};
    std::memcpy(sig, &r.r8, 4);
    std::memcpy(sig + 4, &r.r9, 4);
    std::memcpy(sig + 8, &r.r10, 4);
    EXPECT_STREQ(sig, "KVMKVMKVM");
    EXPECT_GE(r.r11 & 0xffffffff, 0x40000001U) << "highest hypervisor leaf";
    EXPECT_EQ(r.r12 & 0xffffffff, kKvmFeatureClocksource2 | kKvmFeatureClocksourceStable);

    const auto t = g->memory().read_obj<TimeInfo>(GuestAddress(kTimeInfo));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->version % 2, 0U) << "not left mid-update";
    EXPECT_NE(t->version, 0U);
    EXPECT_EQ(t->flags, 1U) << "PVCLOCK_TSC_STABLE_BIT";
    const PvclockScale s = pvclock_scale(std::uint64_t{*soft_vcpu(*g).tsc_khz()} * 1000);
    EXPECT_EQ(t->mul, s.mul);
    EXPECT_EQ(t->shift, s.shift);
    // What the guest computes from its TSC now is the VM's clock now.
    const std::uint64_t tsc = guest_tsc(soft_vcpu(*g));
    ASSERT_GE(tsc, t->tsc_timestamp);
    const std::uint64_t guest_ns = t->system_time + pvclock_ns(tsc - t->tsc_timestamp, s);
    const std::uint64_t vm_ns = *soft_vm(*g).get_clock();
    EXPECT_NEAR(static_cast<double>(guest_ns), static_cast<double>(vm_ns), 20e6);

    // The wall clock at guest clock zero, plus the guest clock, is the time of day.
    const auto wall_sec = g->memory().read_obj<std::uint32_t>(GuestAddress(kWallClock + 4));
    const auto wall_nsec = g->memory().read_obj<std::uint32_t>(GuestAddress(kWallClock + 8));
    ASSERT_TRUE(wall_sec.ok() && wall_nsec.ok());
    EXPECT_LT(*wall_nsec, 1'000'000'000U);
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const double guest_wall = *wall_sec + *wall_nsec / 1e9 + static_cast<double>(vm_ns) / 1e9;
    EXPECT_NEAR(guest_wall, static_cast<double>(now.tv_sec), 2.0);
}

TEST(SoftKvmClock, SettingTheClockRewritesTheStructureBeforeTheGuestRuns) {
    auto g = soft_guest(CpuMode::Long64, kRegisterClock);
    ASSERT_TRUE(g);
    probe::RecordingIo io;
    ASSERT_EQ(soft_vcpu(*g).run(io)->kind, VcpuExitKind::Halt);
    const auto before = *g->memory().read_obj<TimeInfo>(GuestAddress(kTimeInfo));
    // As a resume or restore does: the guest clock goes on from 10^15 ns.
    constexpr std::uint64_t kSet = 1'000'000'000'000'000ULL;
    ASSERT_TRUE(soft_vm(*g).set_clock(kSet).ok());
    ASSERT_EQ(soft_vcpu(*g).run(io)->kind, VcpuExitKind::Halt);  // the second HLT
    const auto after = *g->memory().read_obj<TimeInfo>(GuestAddress(kTimeInfo));
    EXPECT_EQ(after.version, before.version + 2);
    EXPECT_GE(after.system_time, kSet);
    EXPECT_LT(after.system_time, kSet + 1'000'000'000ULL);
    EXPECT_GE(after.tsc_timestamp, before.tsc_timestamp);
}

TEST(SoftKvmClock, AddressesOutsideRamAreKeptButNeverWritten) {
    // wrmsr(SYSTEM_TIME_NEW, 0x7fffffff'fffff001) (far outside RAM); rdmsr into r8/r9;
    // wrmsr(WALL_CLOCK_NEW, 0x1ffff8) (12 bytes over the end of the 2 MiB of RAM);
    // wrmsr(WALL_CLOCK_NEW, 0x20001) (misaligned); hlt; hlt
    const Bytes c = {0xb9, 0x01, 0x4d, 0x56, 0x4b, 0xb8, 0x01, 0xf0, 0xff, 0xff, 0xba, 0xff,
                     0xff, 0xff, 0x7f, 0x0f, 0x30, 0x0f, 0x32, 0x49, 0x89, 0xc0, 0x49, 0x89,
                     0xd1, 0xb9, 0x00, 0x4d, 0x56, 0x4b, 0xb8, 0xf8, 0xff, 0x1f, 0x00, 0x31,
                     0xd2, 0x0f, 0x30, 0xb8, 0x01, 0x00, 0x02, 0x00, 0x0f, 0x30, 0xf4, 0xf4};
    auto g = soft_guest(CpuMode::Long64, c);
    ASSERT_TRUE(g);
    const Bytes marks(16, 0xee);
    ASSERT_TRUE(g->memory().write(GuestAddress(0x1ffff0), marks).ok());
    ASSERT_TRUE(g->memory().write(GuestAddress(0x20000), marks).ok());
    probe::RecordingIo io;
    ASSERT_EQ(soft_vcpu(*g).run(io)->kind, VcpuExitKind::Halt) << "no #GP, no crash";
    const Regs r = *soft_vcpu(*g).get_regs();
    EXPECT_EQ(r.r8 & 0xffffffff, 0xfffff001U) << "the value reads back as written";
    EXPECT_EQ(r.r9 & 0xffffffff, 0x7fffffffU);
    Bytes bytes(16);
    ASSERT_TRUE(g->memory().read(GuestAddress(0x1ffff0), bytes).ok());
    EXPECT_EQ(bytes, marks) << "the wall clock over the end of RAM wrote nothing";
    ASSERT_TRUE(g->memory().read(GuestAddress(0x20000), bytes).ok());
    EXPECT_EQ(bytes, marks) << "the misaligned wall clock wrote nothing";
    // A set clock makes the vCPU refresh its structure: still nowhere, still no crash.
    ASSERT_TRUE(soft_vm(*g).set_clock(5).ok());
    EXPECT_EQ(soft_vcpu(*g).run(io)->kind, VcpuExitKind::Halt);
}

}  // namespace
}  // namespace vireo::soft::test
