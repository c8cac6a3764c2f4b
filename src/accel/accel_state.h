// What a snapshot saves of the accelerator's side of a VM: each vCPU and the VM-wide platform
// state (interrupt controllers, timer, guest clock).
//
// A vCPU's state is accelerator-neutral: the architectural registers, the XSAVE area in its
// architectural (standard, non-compacted) layout, the LAPIC's register page, MSRs by number and
// the events in flight. Each accelerator converts it to and from its own form (KVM's uapi structs
// in accel/kvm/kvm_state_convert.cpp, the interpreter's CpuState in accel/soft/soft_state.cpp), so
// a section written by one can be read by another. The platform state is the accelerator's own
// encoding (KVM's in-kernel PIC/IOAPIC/PIT as bytes): `accelerator` names it and restore refuses
// any other.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "accel/regs.h"
#include "base/state_archive.h"

namespace vireo {

// Where a vCPU is in its run state (the numbering is KVM's KVM_MP_STATE_*, which QEMU and Cloud
// Hypervisor save too).
enum class MpState : std::uint32_t {
    Runnable = 0,
    WaitForInit = 1,   // an AP that has not been started: waits for INIT, then SIPI
    InitReceived = 2,  // INIT seen, waiting for SIPI
    Halted = 3,        // in HLT until an interrupt
    SipiReceived = 4,  // SIPI seen, starts at the vector's page
};
inline constexpr std::uint32_t kMaxMpState = 4;

// Events a vCPU is in the middle of (SDM Vol. 3 §6): an exception or interrupt being delivered,
// an NMI waiting or blocked, the one-instruction interrupt shadow, SMM.
struct VcpuEvents {
    // An exception: `injected` when its delivery has begun (it is re-delivered on resume),
    // `pending` when it is raised but not yet delivered.
    bool exception_injected = false;
    bool exception_pending = false;
    std::uint8_t exception_vector = 0;
    bool exception_has_error_code = false;
    std::uint32_t exception_error_code = 0;
    // A payload (CR2 for #PF, DR6 bits for #DB) not yet written, for a pending exception.
    bool exception_has_payload = false;
    std::uint64_t exception_payload = 0;
    // An external (or software INTn, `interrupt_soft`) interrupt whose delivery has begun.
    bool interrupt_injected = false;
    std::uint8_t interrupt_vector = 0;
    bool interrupt_soft = false;
    // Interrupts held off for one instruction after STI or MOV SS (SDM Vol. 3 §6.8.3).
    static constexpr std::uint8_t kShadowMovSs = 1, kShadowSti = 2;
    std::uint8_t interrupt_shadow = 0;
    bool nmi_injected = false;
    bool nmi_pending = false;
    bool nmi_masked = false;  // NMIs blocked (an NMI handler runs, until its IRET)
    std::uint32_t sipi_vector = 0;
    bool smm = false;  // in system-management mode
    bool smi_pending = false;
    bool smm_inside_nmi = false;
    bool smm_latched_init = false;
    bool triple_fault_pending = false;
};

struct DebugRegs {
    std::array<std::uint64_t, 4> dr{};  // DR0..DR3, breakpoint addresses
    std::uint64_t dr6 = 0xffff0ff0;     // reset values (SDM Vol. 3 §18.2)
    std::uint64_t dr7 = 0x400;
};

// The XSAVE area's fixed offsets (SDM Vol. 1 §13.4): the legacy region is FXSAVE's layout.
namespace xsave {
inline constexpr std::size_t kFcw = 0, kFsw = 2, kFtw = 4, kFop = 6, kFip = 8, kFdp = 16;
inline constexpr std::size_t kMxcsr = 24, kMxcsrMask = 28, kSt0 = 32, kXmm0 = 160;
inline constexpr std::size_t kLegacySize = 512;
inline constexpr std::size_t kXstateBv = 512;  // the header's XSTATE_BV
inline constexpr std::size_t kMinSize = 576;   // legacy region and header
inline constexpr std::uint64_t kX87 = 1, kSse = 2;
}  // namespace xsave

struct VcpuState {
    std::uint32_t id = 0;
    std::uint32_t tsc_khz = 0;      // the guest TSC rate the state was taken at
    std::vector<CpuidEntry> cpuid;  // what the guest saw; restore sets exactly this
    Regs regs;
    // CPL is sregs.ss.dpl (as VMX and SVM both report it). sregs.apic_base is IA32_APIC_BASE.
    Sregs sregs;
    // The XSAVE area in the standard format, offsets per CPUID leaf 0xD of the machine that saved
    // it: at least the 512-byte legacy region (x87, MXCSR, XMM) and the 64-byte header, whose
    // XSTATE_BV says which components hold values (a clear bit: that component is in its initial
    // state).
    std::vector<std::uint8_t> xsave;
    std::uint64_t xcr0 = 1;  // XCR0: the state components the guest enabled (x87 always)
    DebugRegs debug;
    bool has_lapic = false;  // a LAPIC the accelerator emulates: its register page is `lapic`
    LapicState lapic;
    VcpuEvents events;
    MpState mp_state = MpState::Runnable;
    std::vector<MsrEntry> msrs;  // every MSR the accelerator lists as saveable
};

struct VmPlatformState {
    std::string accelerator;  // "kvm", "soft"
    bool irqchip = false;
    std::vector<std::uint8_t> pic_master;  // kvm_irqchip, chip 0
    std::vector<std::uint8_t> pic_slave;   // chip 1
    std::vector<std::uint8_t> ioapic;      // chip 2 (the soft CPU's own encoding on "soft")
    std::vector<std::uint8_t> pit;         // kvm_pit_state2
    std::uint64_t clock_ns = 0;            // the guest clock at the moment the VM was paused
};

inline constexpr std::size_t kMaxSavedBlob = 64 * 1024;
inline constexpr std::size_t kMaxSavedMsrs = 4096;
inline constexpr std::size_t kMaxSavedCpuid = 1024;

// The encoding of section "vcpu.N" that VcpuState is (version 1 was KVM's structs as bytes: see
// accel/kvm/kvm_state_convert.h).
inline constexpr std::uint32_t kVcpuSectionVersion = 2;

template <typename Ar>
void persist(Ar& ar, CpuidEntry& e) {
    ar(e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx);
}

template <typename Ar>
void persist(Ar& ar, MsrEntry& e) {
    ar(e.index, e.data);
}

template <typename Ar>
void persist(Ar& ar, Regs& r) {
    ar(r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12,
       r.r13, r.r14, r.r15, r.rip, r.rflags);
}

template <typename Ar>
void persist(Ar& ar, Segment& s) {
    ar(s.base, s.limit, s.selector, s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl,
       s.unusable);
}

template <typename Ar>
void persist(Ar& ar, DescriptorTable& t) {
    ar(t.base, t.limit);
}

template <typename Ar>
void persist(Ar& ar, Sregs& s) {
    ar(s.cs, s.ds, s.es, s.fs, s.gs, s.ss, s.tr, s.ldt, s.gdt, s.idt);
    ar(s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer, s.apic_base);
}

template <typename Ar>
void persist(Ar& ar, VcpuEvents& e) {
    ar(e.exception_injected, e.exception_pending, e.exception_vector, e.exception_has_error_code,
       e.exception_error_code, e.exception_has_payload, e.exception_payload);
    ar(e.interrupt_injected, e.interrupt_vector, e.interrupt_soft, e.interrupt_shadow);
    ar(e.nmi_injected, e.nmi_pending, e.nmi_masked, e.sipi_vector);
    ar(e.smm, e.smi_pending, e.smm_inside_nmi, e.smm_latched_init, e.triple_fault_pending);
}

template <typename Ar>
void persist(Ar& ar, DebugRegs& d) {
    ar(d.dr, d.dr6, d.dr7);
}

template <typename Ar>
void persist(Ar& ar, LapicState& l) {
    ar(l.regs);
}

template <typename Ar>
void persist(Ar& ar, VcpuState& s) {
    ar(s.id, s.tsc_khz);
    ar.vec(s.cpuid, kMaxSavedCpuid);
    ar(s.regs, s.sregs);
    ar.vec(s.xsave, kMaxSavedBlob);
    ar(s.xcr0, s.debug, s.has_lapic, s.lapic, s.events, s.mp_state);
    ar.vec(s.msrs, kMaxSavedMsrs);
    if constexpr (Ar::kReading) {
        if (static_cast<std::uint32_t>(s.mp_state) > kMaxMpState) {
            ar.fail(fmt::format("unknown run state {}", static_cast<std::uint32_t>(s.mp_state)));
        } else if (!s.xsave.empty() && s.xsave.size() < xsave::kMinSize) {
            ar.fail(fmt::format("XSAVE area of {} bytes; it has at least {}", s.xsave.size(),
                                xsave::kMinSize));
        }
    }
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
