// Saving and restoring a soft vCPU (DESIGN.md §4). The neutral VcpuState fields carry what is
// neutral (CPUID, TSC rate, MSRs); `regs` holds the soft CPU's own encoding of CpuState, written
// with the project's StateArchive (versioned, every field named once below). `sregs`, `fpu`,
// `events`... stay empty. Restore accepts only a blob with the soft magic and version.
#include <x86intrin.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "accel/soft/soft_vcpu.h"
#include "base/state_archive.h"

namespace vireo {

template <typename Ar>
void persist(Ar& ar, Segment& s) {
    ar(s.base, s.limit, s.selector, s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl,
       s.unusable);
}

template <typename Ar>
void persist(Ar& ar, DescriptorTable& t) {
    ar(t.base, t.limit);
}

namespace soft {

template <typename Ar>
void persist(Ar& ar, MsrFile& m) {
    ar(m.star, m.lstar, m.cstar, m.sfmask, m.kernel_gs_base, m.sysenter_cs, m.sysenter_esp,
       m.sysenter_eip, m.pat, m.tsc_aux, m.misc_enable, m.mtrr_def_type, m.apic_base, m.mtrr_var,
       m.mtrr_fixed, m.mcg_status);
}

template <typename Ar>
void persist(Ar& ar, CpuState& s) {
    ar(s.gpr, s.rip, s.rflags, s.seg, s.tr, s.ldt, s.gdt, s.idt, s.cr0, s.cr2, s.cr3, s.cr4, s.cr8,
       s.efer, s.dr, s.msr, s.cpl, s.halted, s.int_shadow, s.fcw, s.fsw, s.fop, s.ftw, s.fip, s.fdp,
       s.mxcsr, s.st, s.xmm);
}

namespace {

constexpr std::uint32_t kMagic = 0x54464f53;  // "SOFT"
constexpr std::uint32_t kVersion = 2;         // 2: x87/SSE state

struct SavedCpu {
    std::uint32_t magic = kMagic;
    std::uint32_t version = kVersion;
    CpuState cpu;
};

template <typename Ar>
void persist(Ar& ar, SavedCpu& s) {
    ar(s.magic, s.version);
    if (s.magic != kMagic || s.version != kVersion) {
        ar.fail(fmt::format("not a soft vCPU state (magic {:#x}, version {})", s.magic, s.version));
        return;
    }
    ar(s.cpu);
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
        default:
            if (index >= 0x200 && index <= 0x20f) {
                v = m.mtrr_var[index - 0x200];
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
        default:
            if (index >= 0x200 && index <= 0x20f) {
                m.mtrr_var[index - 0x200] = v;
                return true;
            }
            return false;
    }
}

const std::vector<std::uint32_t>& soft_saved_msrs() {
    static const std::vector<std::uint32_t> list = {
        0x10,       0x1b,       0x174,      0x175,      0x176,      0x1a0,
        0x277,      0x2ff,      0xc0000080, 0xc0000081, 0xc0000082, 0xc0000083,
        0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102, 0xc0000103};
    return list;
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

Result<VcpuState> SoftVcpu::save_state() {
    VcpuState st;
    st.id = m_id;
    st.tsc_khz = host_tsc_khz();
    st.cpuid = m_cpuid;
    SavedCpu saved;
    saved.cpu = m_interp.state();
    st.regs = save_to_bytes(saved);
    st.fpu_is_xsave = false;
    // KVM's numbering: RUNNABLE 0, UNINITIALIZED 1 (waiting for INIT-SIPI), HALTED 3.
    st.mp_state = (m_lapic && m_lapic->init_pending()) ? 1 : m_interp.state().halted ? 3 : 0;
    if (m_lapic) {
        const LapicState l = m_lapic->state();
        st.lapic.assign(l.regs.begin(), l.regs.end());
    }
    for (std::uint32_t index : soft_saved_msrs()) {
        std::uint64_t v = 0;
        if (soft_get_msr(m_interp.state(), index, v)) {
            st.msrs.push_back({index, v});
        }
    }
    return st;
}

Result<void> SoftVcpu::restore_state(const VcpuState& state) {
    auto saved = load_from_bytes<SavedCpu>(state.regs);
    if (!saved) {
        return saved.error().wrap("soft vCPU state");
    }
    CpuState cpu = saved->cpu;
    // Values the interpreter relies on staying in range, whatever the file says.
    cpu.cpl &= 3;
    cpu.cr4 &= cr::kCr4Allowed;
    cpu.efer &= cr::kEferAllowed;
    cpu.rflags = (cpu.rflags & (fl::kWritable | fl::VM | fl::VIF | fl::VIP)) | fl::kFixed1;
    m_cpuid = state.cpuid.empty() ? m_cpuid : state.cpuid;
    m_interp.state() = cpu;
    // The TSC continues from its saved value (the MSR list carries it).
    for (const auto& m : state.msrs) {
        if (m.index == 0x10) {
            soft_set_msr(m_interp.state(), m.index, m.data);
        }
    }
    if (m_lapic && state.lapic.size() == sizeof(LapicState::regs)) {
        LapicState l;
        std::copy(state.lapic.begin(), state.lapic.end(), l.regs.begin());
        m_lapic->set_state(l);
    }
    if (m_lapic) {
        m_lapic->set_waiting_for_sipi(state.mp_state == 1);
    }
    m_interp.state_changed();
    return ok();
}

}  // namespace soft
}  // namespace vireo
