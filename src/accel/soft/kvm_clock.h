// kvmclock for the soft CPU: the paravirtual clock KVM gives its guests (Linux
// Documentation/virt/kvm/x86/msr.rst, "MSR_KVM_SYSTEM_TIME_NEW" and "MSR_KVM_WALL_CLOCK_NEW"),
// so a guest learns the TSC frequency from the VMM instead of measuring it.
//
// Why the soft platform needs it: its ACPI is hardware-reduced, so Linux registers no PIT clock
// event and has no tick until the LAPIC timer runs. When its PIT calibration of the TSC fails
// (a preempted vCPU thread makes the timing loop look disturbed), Linux marks the TSC unstable,
// loses the TSC-deadline timer and then waits in calibrate_delay_converge() for a jiffy that
// never comes. With kvmclock Linux takes the TSC frequency (and the delay-loop value) from the
// time-info structure and never calibrates; KVM guests of vireo boot the same way.
//
// The guest clock is the VM's (SoftVm::get_clock: CLOCK_MONOTONIC plus an offset that pause and
// restore move). Every vCPU's time-info structure holds the same reference pair (a guest TSC
// value and the guest clock at that TSC), taken once, so every vCPU computes the same time from
// the same TSC: the PVCLOCK_TSC_STABLE_BIT promise. When the guest clock is set (resume, restore)
// the pair is taken again and each vCPU rewrites its structure before it runs guest code.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

namespace vireo::soft {

class PhysMemory;

// CPUID 0x40000001 EAX bits (Documentation/virt/kvm/x86/cpuid.rst).
inline constexpr std::uint32_t kKvmFeatureClocksource2 = 1U << 3;
inline constexpr std::uint32_t kKvmFeatureClocksourceStable = 1U << 24;
inline constexpr std::uint32_t kMsrKvmWallClockNew = 0x4b564d00;
inline constexpr std::uint32_t kMsrKvmSystemTimeNew = 0x4b564d01;

// tsc_to_system_mul and tsc_shift of struct pvclock_vcpu_time_info: nanoseconds =
// ((delta << shift, or >> -shift) * mul) >> 32.
struct PvclockScale {
    std::uint32_t mul = 0;
    std::int8_t shift = 0;
};
// The scale for a TSC of `tsc_hz` (> 0): the shift that brings it into (1 GHz, 2 GHz], and mul in
// [2^31, 2^32).
PvclockScale pvclock_scale(std::uint64_t tsc_hz);
// Nanoseconds for `delta` TSC ticks, as the guest computes them (pvclock_scale_delta).
std::uint64_t pvclock_ns(std::uint64_t delta, PvclockScale s);

class KvmClock {
public:
    // `clock_ns` reads the guest clock (SoftVm::get_clock).
    explicit KvmClock(std::function<std::uint64_t()> clock_ns) : m_clock_ns(std::move(clock_ns)) {}

    // The guest wrote MSR_KVM_SYSTEM_TIME_NEW: `msr` bit 0 enables, bits 63:1 (aligned down to 32
    // bytes, as Linux places it) give the time-info structure's address. Writes the structure for
    // a vCPU whose TSC reads `guest_tsc` now; false (nothing written) when the 32 bytes are not in
    // guest RAM, which a hostile guest may ask for.
    bool write_time_info(PhysMemory& mem, std::uint64_t msr, std::uint64_t guest_tsc,
                         std::uint32_t tsc_khz);
    // The guest wrote MSR_KVM_WALL_CLOCK_NEW: the wall-clock time at guest clock zero into the
    // 12-byte pvclock_wall_clock at `gpa`; false when it is not in guest RAM.
    bool write_wall_clock(PhysMemory& mem, std::uint64_t gpa);
    // The guest clock was set: the reference pair is taken again at the next write, and vCPUs
    // whose generation() differs from theirs rewrite their structure before they run.
    void clock_set();
    std::uint32_t generation() const { return m_generation.load(std::memory_order_acquire); }

private:
    std::function<std::uint64_t()> m_clock_ns;
    std::mutex m_mutex;
    struct Reference {
        std::uint64_t tsc;
        std::uint64_t ns;
    };
    std::optional<Reference> m_ref;
    std::atomic<std::uint32_t> m_generation{0};
};

}  // namespace vireo::soft
