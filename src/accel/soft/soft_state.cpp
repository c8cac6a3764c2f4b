// Saving and restoring a soft vCPU (DESIGN.md §4): the interpreter's CpuState to and from the
// neutral VcpuState (accel/accel_state.h), the same form KVM's vCPUs save. CPL travels as SS.DPL,
// the halted flag as the run state, the STI/MOV SS shadow as an event, the x87/SSE registers in
// the XSAVE area's legacy region, the MSRs by number. Restore checks what the interpreter relies
// on (mode bits it does not implement are refused, not silently dropped).
#include <x86intrin.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "accel/soft/kvm_clock.h"
#include "accel/soft/soft_vcpu.h"

namespace vireo {

namespace soft {

namespace {

// The fixed-range MTRRs' slots in MsrFile::mtrr_fixed: 0x250, 0x258, 0x259, 0x268..0x26f.
int mtrr_fixed_slot(std::uint32_t index) {
    if (index == 0x250) {
        return 0;
    }
    if (index == 0x258 || index == 0x259) {
        return static_cast<int>(index - 0x258 + 1);
    }
    if (index >= 0x268 && index <= 0x26f) {
        return static_cast<int>(index - 0x268 + 3);
    }
    return -1;
}

}  // namespace

bool soft_get_msr(const CpuState& s, std::uint32_t index, std::uint64_t& v) {
    const MsrFile& m = s.msr;
    switch (index) {
        case 0x10:
            v = __rdtsc() + static_cast<std::uint64_t>(s.tsc_offset);
            return true;
        case 0x1b:
            v = m.apic_base;
            return true;
        case 0x174:
            v = m.sysenter_cs;
            return true;
        case 0x175:
            v = m.sysenter_esp;
            return true;
        case 0x176:
            v = m.sysenter_eip;
            return true;
        case 0x1a0:
            v = m.misc_enable;
            return true;
        case 0x277:
            v = m.pat;
            return true;
        case 0x2ff:
            v = m.mtrr_def_type;
            return true;
        case 0xc0000080:
            v = s.efer;
            return true;
        case 0xc0000081:
            v = m.star;
            return true;
        case 0xc0000082:
            v = m.lstar;
            return true;
        case 0xc0000083:
            v = m.cstar;
            return true;
        case 0xc0000084:
            v = m.sfmask;
            return true;
        case 0xc0000100:
            v = s.seg[kFs].base;
            return true;
        case 0xc0000101:
            v = s.seg[kGs].base;
            return true;
        case 0xc0000102:
            v = m.kernel_gs_base;
            return true;
        case 0xc0000103:
            v = m.tsc_aux;
            return true;
        case 0x17a:
            v = m.mcg_status;
            return true;
        case kMsrKvmSystemTimeNew:
            v = m.kvm_system_time;
            return true;
        case kMsrKvmWallClockNew:
            v = m.kvm_wall_clock;
            return true;
        default:
            if (index >= 0x200 && index <= 0x20f) {
                v = m.mtrr_var[index - 0x200];
                return true;
            }
            if (const int i = mtrr_fixed_slot(index); i >= 0) {
                v = m.mtrr_fixed[static_cast<std::size_t>(i)];
                return true;
            }
            return false;
    }
}

bool soft_set_msr(CpuState& s, std::uint32_t index, std::uint64_t v) {
    MsrFile& m = s.msr;
    switch (index) {
        case 0x10:
            s.tsc_offset = static_cast<std::int64_t>(v - __rdtsc());
            return true;
        case 0x1b:
            m.apic_base = v;
            return true;
        case 0x174:
            m.sysenter_cs = v;
            return true;
        case 0x175:
            m.sysenter_esp = v;
            return true;
        case 0x176:
            m.sysenter_eip = v;
            return true;
        case 0x1a0:
            m.misc_enable = v;
            return true;
        case 0x277:
            m.pat = v;
            return true;
        case 0x2ff:
            m.mtrr_def_type = v;
            return true;
        case 0xc0000080:
            s.efer = v & cr::kEferAllowed;
            return true;
        case 0xc0000081:
            m.star = v;
            return true;
        case 0xc0000082:
            m.lstar = v;
            return true;
        case 0xc0000083:
            m.cstar = v;
            return true;
        case 0xc0000084:
            m.sfmask = v;
            return true;
        case 0xc0000100:
            s.seg[kFs].base = v;
            return true;
        case 0xc0000101:
            s.seg[kGs].base = v;
            return true;
        case 0xc0000102:
            m.kernel_gs_base = v;
            return true;
        case 0xc0000103:
            m.tsc_aux = v;
            return true;
        case 0x17a:
            m.mcg_status = v;
            return true;
        case kMsrKvmSystemTimeNew:  // the structure follows at the next run (set_clock)
            m.kvm_system_time = v;
            return true;
        case kMsrKvmWallClockNew:
            m.kvm_wall_clock = v;
            return true;
        default:
            if (index >= 0x200 && index <= 0x20f) {
                m.mtrr_var[index - 0x200] = v;
                return true;
            }
            if (const int i = mtrr_fixed_slot(index); i >= 0) {
                m.mtrr_fixed[static_cast<std::size_t>(i)] = v;
                return true;
            }
            return false;
    }
}

const std::vector<std::uint32_t>& soft_saved_msrs() {
    static const std::vector<std::uint32_t> list = {
        0x10,       0x1b,       0x174,      0x175,      0x176,      0x17a,
        0x1a0,      0x277,      0x2ff,      0xc0000080, 0xc0000081, 0xc0000082,
        0xc0000083, 0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102, 0xc0000103};
    static const std::vector<std::uint32_t> all = [] {
        std::vector<std::uint32_t> v = list;
        for (std::uint32_t i = 0x200; i <= 0x20f; ++i) {
            v.push_back(i);
        }
        for (std::uint32_t i : {0x250U, 0x258U, 0x259U}) {
            v.push_back(i);
        }
        for (std::uint32_t i = 0x268; i <= 0x26f; ++i) {
            v.push_back(i);
        }
        v.push_back(kMsrKvmSystemTimeNew);
        v.push_back(kMsrKvmWallClockNew);
        return v;
    }();
    return all;
}

std::uint32_t host_tsc_khz() {
    // Calibrated once against CLOCK_MONOTONIC over 20 ms.
    static const std::uint32_t khz = [] {
        const auto t0 = std::chrono::steady_clock::now();
        const std::uint64_t c0 = __rdtsc();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        const std::uint64_t c1 = __rdtsc();
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - t0)
                            .count();
        return static_cast<std::uint32_t>((c1 - c0) * 1000000ULL / static_cast<std::uint64_t>(ns));
    }();
    return khz;
}

namespace {

// Segment order of CpuState::seg (ES, CS, SS, DS, FS, GS) and of Sregs.
Segment Sregs::*const kSregsSegment[kSegCount] = {&Sregs::es, &Sregs::cs, &Sregs::ss,
                                                  &Sregs::ds, &Sregs::fs, &Sregs::gs};

template <typename T>
void put(std::vector<std::uint8_t>& area, std::size_t offset, T v) {
    std::memcpy(area.data() + offset, &v, sizeof(T));
}

template <typename T>
T get(const std::vector<std::uint8_t>& area, std::size_t offset) {
    T v{};
    std::memcpy(&v, area.data() + offset, sizeof(T));
    return v;
}

}  // namespace

Result<VcpuState> SoftVcpu::save_state() {
    const CpuState& c = m_interp.state();
    VcpuState st;
    st.id = m_id;
    st.tsc_khz = host_tsc_khz();
    st.cpuid = m_cpuid;
    Regs& r = st.regs;
    r.rax = c.gpr[kRax];
    r.rcx = c.gpr[kRcx];
    r.rdx = c.gpr[kRdx];
    r.rbx = c.gpr[kRbx];
    r.rsp = c.gpr[kRsp];
    r.rbp = c.gpr[kRbp];
    r.rsi = c.gpr[kRsi];
    r.rdi = c.gpr[kRdi];
    r.r8 = c.gpr[kR8];
    r.r9 = c.gpr[kR9];
    r.r10 = c.gpr[kR10];
    r.r11 = c.gpr[kR11];
    r.r12 = c.gpr[kR12];
    r.r13 = c.gpr[kR13];
    r.r14 = c.gpr[kR14];
    r.r15 = c.gpr[kR15];
    r.rip = c.rip;
    r.rflags = c.rflags;
    Sregs& s = st.sregs;
    for (std::size_t i = 0; i < kSegCount; ++i) {
        s.*kSregsSegment[i] = c.seg[i];
    }
    s.ss.dpl = c.cpl;  // the neutral form's CPL
    s.tr = c.tr;
    s.ldt = c.ldt;
    s.gdt = c.gdt;
    s.idt = c.idt;
    s.cr0 = c.cr0;
    s.cr2 = c.cr2;
    s.cr3 = c.cr3;
    s.cr4 = c.cr4;
    s.cr8 = c.cr8;
    s.efer = c.efer;
    s.apic_base = c.msr.apic_base;
    // x87 and SSE in the XSAVE area's legacy region; XSTATE_BV says both hold values.
    st.xsave.assign(xsave::kMinSize, 0);
    put(st.xsave, xsave::kFcw, c.fcw);
    put(st.xsave, xsave::kFsw, c.fsw);
    put(st.xsave, xsave::kFtw, c.ftw);
    put(st.xsave, xsave::kFop, c.fop);
    put(st.xsave, xsave::kFip, c.fip);
    put(st.xsave, xsave::kFdp, c.fdp);
    put(st.xsave, xsave::kMxcsr, c.mxcsr);
    put(st.xsave, xsave::kMxcsrMask, std::uint32_t{0xffff});
    for (std::size_t i = 0; i < c.st.size(); ++i) {
        std::memcpy(st.xsave.data() + xsave::kSt0 + 16 * i, c.st[i].data(), 16);
    }
    for (std::size_t i = 0; i < c.xmm.size(); ++i) {
        std::memcpy(st.xsave.data() + xsave::kXmm0 + 16 * i, c.xmm[i].data(), 16);
    }
    put(st.xsave, xsave::kXstateBv, xsave::kX87 | xsave::kSse);
    st.xcr0 = xsave::kX87 | xsave::kSse;
    st.debug.dr = {c.dr[0], c.dr[1], c.dr[2], c.dr[3]};
    st.debug.dr6 = c.dr[6];
    st.debug.dr7 = c.dr[7];
    st.events.interrupt_shadow = c.int_shadow ? VcpuEvents::kShadowSti : 0;
    st.mp_state = (m_lapic && m_lapic->init_pending()) ? MpState::WaitForInit
                  : c.halted                           ? MpState::Halted
                                                       : MpState::Runnable;
    if (m_lapic) {
        st.has_lapic = true;
        st.lapic = m_lapic->state();
    }
    for (std::uint32_t index : soft_saved_msrs()) {
        std::uint64_t v = 0;
        if (soft_get_msr(c, index, v)) {
            st.msrs.push_back({index, v});
        }
    }
    return st;
}

Result<void> SoftVcpu::restore_state(const VcpuState& state) {
    // What the interpreter cannot continue from is refused by name, before anything changes.
    const VcpuEvents& ev = state.events;
    if (ev.exception_injected || ev.exception_pending || ev.interrupt_injected || ev.nmi_injected ||
        ev.nmi_pending || ev.smm || ev.smi_pending || ev.triple_fault_pending) {
        return Error(
            "soft: the saved vCPU is in the middle of delivering an exception, interrupt, "
            "NMI or SMI, which the soft CPU cannot resume");
    }
    if (state.mp_state == MpState::InitReceived || state.mp_state == MpState::SipiReceived) {
        return Error(
            "soft: the saved vCPU is between INIT and SIPI, which the soft CPU cannot "
            "resume");
    }
    if (state.xsave.size() < xsave::kMinSize) {
        return Error(fmt::format("soft: the saved XSAVE area is {} bytes; it has at least {}",
                                 state.xsave.size(), xsave::kMinSize));
    }
    const auto bv = get<std::uint64_t>(state.xsave, xsave::kXstateBv);
    if ((bv & ~(xsave::kX87 | xsave::kSse)) != 0) {
        return Error(
            fmt::format("soft: the saved vCPU holds XSAVE components {:#x}; the soft CPU "
                        "has x87 and SSE only",
                        bv));
    }
    if (state.has_lapic != (m_lapic != nullptr)) {
        return Error("soft: the saved vCPU and this one differ in having a LAPIC");
    }
    CpuState c = m_interp.state();
    const Regs& r = state.regs;
    c.gpr = {r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi,
             r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
    c.rip = r.rip;
    // Values the interpreter relies on staying in range, whatever the file says.
    c.rflags = (r.rflags & (fl::kWritable | fl::VM | fl::VIF | fl::VIP)) | fl::kFixed1;
    const Sregs& s = state.sregs;
    for (std::size_t i = 0; i < kSegCount; ++i) {
        c.seg[i] = s.*kSregsSegment[i];
    }
    c.cpl = (s.cr0 & cr::kCr0Pe) ? (s.ss.dpl & 3) : 0;
    c.tr = s.tr;
    c.ldt = s.ldt;
    c.gdt = s.gdt;
    c.idt = s.idt;
    c.cr0 = s.cr0;
    c.cr2 = s.cr2;
    c.cr3 = s.cr3;
    c.cr4 = s.cr4 & cr::kCr4Allowed;
    c.cr8 = s.cr8 & 0xf;
    c.efer = s.efer & cr::kEferAllowed;
    c.msr.apic_base = s.apic_base;
    c.fcw = 0x37f;
    c.fsw = c.fop = 0;
    c.ftw = 0;
    c.fip = c.fdp = 0;
    c.st = {};
    c.xmm = {};
    if (bv & xsave::kX87) {
        c.fcw = get<std::uint16_t>(state.xsave, xsave::kFcw);
        c.fsw = get<std::uint16_t>(state.xsave, xsave::kFsw);
        c.ftw = get<std::uint8_t>(state.xsave, xsave::kFtw);
        c.fop = get<std::uint16_t>(state.xsave, xsave::kFop);
        c.fip = get<std::uint64_t>(state.xsave, xsave::kFip);
        c.fdp = get<std::uint64_t>(state.xsave, xsave::kFdp);
        for (std::size_t i = 0; i < c.st.size(); ++i) {
            std::memcpy(c.st[i].data(), state.xsave.data() + xsave::kSt0 + 16 * i, 16);
        }
    }
    if (bv & xsave::kSse) {
        for (std::size_t i = 0; i < c.xmm.size(); ++i) {
            std::memcpy(c.xmm[i].data(), state.xsave.data() + xsave::kXmm0 + 16 * i, 16);
        }
    }
    // MXCSR's reserved bits would #GP on LDMXCSR/FXRSTOR: keep the defined ones (0..15).
    c.mxcsr = get<std::uint32_t>(state.xsave, xsave::kMxcsr) & 0xffff;
    c.dr = {state.debug.dr[0], state.debug.dr[1], state.debug.dr[2], state.debug.dr[3], 0, 0,
            state.debug.dr6,   state.debug.dr7};
    c.halted = state.mp_state == MpState::Halted;
    c.int_shadow = ev.interrupt_shadow != 0;
    for (const auto& m : state.msrs) {
        if (!soft_set_msr(c, m.index, m.data)) {
            return Error(
                fmt::format("soft: the saved vCPU sets MSR {:#x}, which the soft CPU does "
                            "not have",
                            m.index));
        }
    }
    c.efer &= cr::kEferAllowed;
    m_cpuid = state.cpuid.empty() ? m_cpuid : state.cpuid;
    m_interp.state() = c;
    if (m_lapic) {
        m_lapic->set_state(state.lapic);
        m_lapic->set_waiting_for_sipi(state.mp_state == MpState::WaitForInit);
    }
    m_interp.state_changed();
    return ok();
}

}  // namespace soft
}  // namespace vireo
