// A virtual CPU of some accelerator (DESIGN.md §2).
#pragma once

#include <cstdint>
#include <span>

#include "accel/accel_state.h"
#include "accel/io_handler.h"
#include "accel/regs.h"
#include "accel/vcpu_exit.h"
#include "base/result.h"

namespace vireo {

class Vcpu {
public:
    virtual ~Vcpu() = default;

    virtual std::uint32_t id() const = 0;

    // Runs the guest on the calling thread until a lifecycle event. Port I/O and MMIO are
    // dispatched to `io` and never returned. An Error means the host side failed (an ioctl),
    // not the guest.
    virtual Result<VcpuExit> run(IoHandler& io) = 0;

    // Thread-safe and async-signal-safe in effect: makes the current or the next run() return
    // Interrupted promptly, even if the guest spins without exiting.
    virtual void request_exit() = 0;

    virtual Result<Regs> get_regs() = 0;
    virtual Result<void> set_regs(const Regs& regs) = 0;
    virtual Result<Sregs> get_sregs() = 0;
    virtual Result<void> set_sregs(const Sregs& sregs) = 0;
    virtual Result<void> set_cpuid(std::span<const CpuidEntry> entries) = 0;
    virtual Result<void> set_msrs(std::span<const MsrEntry> msrs) = 0;
    // Fills `msrs[i].data` for each index.
    virtual Result<void> get_msrs(std::span<MsrEntry> msrs) = 0;
    virtual Result<void> set_fpu(const FpuState& fpu) = 0;
    virtual Result<LapicState> get_lapic() = 0;
    virtual Result<void> set_lapic(const LapicState& lapic) = 0;
    // The guest TSC frequency in kHz.
    virtual Result<std::uint32_t> tsc_khz() = 0;

    // Everything the vCPU holds, for a snapshot. Only while the vCPU is outside run() and its
    // last run() returned Interrupted (so pending port I/O and MMIO have been completed: KVM
    // finishes them on the next KVM_RUN, which immediate_exit makes return at once).
    virtual Result<VcpuState> save_state() = 0;
    // Puts a saved state back, in the order the accelerator needs (CPUID first, LAPIC before the
    // MSRs that depend on it, pending events last). Before the vCPU first runs.
    virtual Result<void> restore_state(const VcpuState& state) = 0;

    // Counters of every exit this vCPU took, by cause. Read on the vCPU's thread or after it
    // stopped.
    virtual const ExitStats& stats() const = 0;
};

}  // namespace vireo
