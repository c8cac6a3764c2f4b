// What a snapshot saves of the accelerator's side of a VM: each vCPU and the VM-wide platform
// state (interrupt controllers, timer, guest clock). The CPUID a guest was given is neutral; the
// rest is the accelerator's own encoding (for KVM, its uapi structs as bytes), which only the same
// accelerator can put back: `accelerator` names it and restore refuses any other.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "accel/regs.h"
#include "base/state_archive.h"

namespace vireo {

struct VcpuState {
    std::uint32_t id = 0;
    std::uint32_t tsc_khz = 0;        // the guest TSC rate the state was taken at
    std::vector<CpuidEntry> cpuid;    // what the guest saw; restore sets exactly this
    std::vector<std::uint8_t> regs;   // kvm_regs
    std::vector<std::uint8_t> sregs;  // kvm_sregs
    std::vector<std::uint8_t> fpu;    // kvm_xsave, or kvm_fpu where XSAVE is absent
    bool fpu_is_xsave = true;
    std::vector<std::uint8_t> xcrs;       // kvm_xcrs (empty without XCRs)
    std::vector<std::uint8_t> debugregs;  // kvm_debugregs
    std::vector<std::uint8_t> lapic;      // kvm_lapic_state (empty without in-kernel LAPIC)
    std::vector<std::uint8_t> events;     // kvm_vcpu_events: pending exceptions, NMI, interrupt
    std::uint32_t mp_state = 0;           // KVM_MP_STATE_*
    std::vector<MsrEntry> msrs;           // every MSR the accelerator lists as saveable
};

struct VmPlatformState {
    std::string accelerator;  // "kvm"
    bool irqchip = false;
    std::vector<std::uint8_t> pic_master;  // kvm_irqchip, chip 0
    std::vector<std::uint8_t> pic_slave;   // chip 1
    std::vector<std::uint8_t> ioapic;      // chip 2
    std::vector<std::uint8_t> pit;         // kvm_pit_state2
    std::uint64_t clock_ns = 0;            // kvmclock at the moment the VM was paused
};

inline constexpr std::size_t kMaxSavedBlob = 64 * 1024;
inline constexpr std::size_t kMaxSavedMsrs = 4096;
inline constexpr std::size_t kMaxSavedCpuid = 1024;

template <typename Ar>
void persist(Ar& ar, CpuidEntry& e) {
    ar(e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx);
}

template <typename Ar>
void persist(Ar& ar, MsrEntry& e) {
    ar(e.index, e.data);
}

template <typename Ar>
void persist(Ar& ar, VcpuState& s) {
    ar(s.id, s.tsc_khz);
    ar.vec(s.cpuid, kMaxSavedCpuid);
    ar.vec(s.regs, kMaxSavedBlob);
    ar.vec(s.sregs, kMaxSavedBlob);
    ar.vec(s.fpu, kMaxSavedBlob);
    ar(s.fpu_is_xsave);
    ar.vec(s.xcrs, kMaxSavedBlob);
    ar.vec(s.debugregs, kMaxSavedBlob);
    ar.vec(s.lapic, kMaxSavedBlob);
    ar.vec(s.events, kMaxSavedBlob);
    ar(s.mp_state);
    ar.vec(s.msrs, kMaxSavedMsrs);
}

template <typename Ar>
void persist(Ar& ar, VmPlatformState& s) {
    ar.str(s.accelerator, 32);
    ar(s.irqchip);
    ar.vec(s.pic_master, kMaxSavedBlob);
    ar.vec(s.pic_slave, kMaxSavedBlob);
    ar.vec(s.ioapic, kMaxSavedBlob);
    ar.vec(s.pit, kMaxSavedBlob);
    ar(s.clock_ns);
}

}  // namespace vireo
