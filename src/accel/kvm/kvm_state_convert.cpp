// KVM's vCPU structs to and from the neutral VcpuState (api.rst §4.13-4.16, 4.21, 4.31-4.32,
// 4.38-4.43 for the structs; SDM Vol. 1 §13.4 for the XSAVE area they carry).
#include "accel/kvm/kvm_state_convert.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "accel/kvm/kvm_regs.h"

namespace vireo::kvm {

namespace {

template <typename T>
void put(std::vector<std::uint8_t>& area, std::size_t offset, T v) {
    std::memcpy(area.data() + offset, &v, sizeof(T));
}

template <typename T>
T get(std::span<const std::uint8_t> area, std::size_t offset) {
    T v{};
    std::memcpy(&v, area.data() + offset, sizeof(T));
    return v;
}

// kvm_fpu (FXSAVE's fields, for a KVM without XSAVE) as an XSAVE area holding x87 and SSE.
std::vector<std::uint8_t> xsave_from_fpu(const kvm_fpu& f) {
    std::vector<std::uint8_t> a(xsave::kMinSize, 0);
    put(a, xsave::kFcw, f.fcw);
    put(a, xsave::kFsw, f.fsw);
    put(a, xsave::kFtw, f.ftwx);
    put(a, xsave::kFop, f.last_opcode);
    put(a, xsave::kFip, f.last_ip);
    put(a, xsave::kFdp, f.last_dp);
    put(a, xsave::kMxcsr, f.mxcsr);
    std::memcpy(a.data() + xsave::kSt0, f.fpr, sizeof(f.fpr));
    std::memcpy(a.data() + xsave::kXmm0, f.xmm, sizeof(f.xmm));
    put(a, xsave::kXstateBv, xsave::kX87 | xsave::kSse);
    return a;
}

// The reverse; a component XSTATE_BV marks as initial reads as its reset value (SDM Vol. 1
// §13.6: FCW 0x37f and the rest zero for x87, zero XMM registers for SSE; MXCSR is always taken).
kvm_fpu fpu_from_xsave(std::span<const std::uint8_t> a) {
    kvm_fpu f{};
    const auto bv = get<std::uint64_t>(a, xsave::kXstateBv);
    f.mxcsr = get<std::uint32_t>(a, xsave::kMxcsr);
    f.fcw = 0x37f;
    if (bv & xsave::kX87) {
        f.fcw = get<std::uint16_t>(a, xsave::kFcw);
        f.fsw = get<std::uint16_t>(a, xsave::kFsw);
        f.ftwx = get<std::uint8_t>(a, xsave::kFtw);
        f.last_opcode = get<std::uint16_t>(a, xsave::kFop);
        f.last_ip = get<std::uint64_t>(a, xsave::kFip);
        f.last_dp = get<std::uint64_t>(a, xsave::kFdp);
        std::memcpy(f.fpr, a.data() + xsave::kSt0, sizeof(f.fpr));
    }
    if (bv & xsave::kSse) {
        std::memcpy(f.xmm, a.data() + xsave::kXmm0, sizeof(f.xmm));
    }
    return f;
}

VcpuEvents events_from_kvm(const kvm_vcpu_events& k) {
    VcpuEvents e;
    e.exception_injected = k.exception.injected != 0;
    e.exception_pending = k.exception.pending != 0;
    e.exception_vector = k.exception.nr;
    e.exception_has_error_code = k.exception.has_error_code != 0;
    e.exception_error_code = k.exception.error_code;
    if (k.flags & KVM_VCPUEVENT_VALID_PAYLOAD) {
        e.exception_has_payload = k.exception_has_payload != 0;
        e.exception_payload = k.exception_payload;
    }
    e.interrupt_injected = k.interrupt.injected != 0;
    e.interrupt_vector = k.interrupt.nr;
    e.interrupt_soft = k.interrupt.soft != 0;
    // KVM's shadow bits are the neutral ones (KVM_X86_SHADOW_INT_MOV_SS 1, _STI 2).
    e.interrupt_shadow = k.interrupt.shadow & (VcpuEvents::kShadowMovSs | VcpuEvents::kShadowSti);
    e.nmi_injected = k.nmi.injected != 0;
    e.nmi_pending = k.nmi.pending != 0;
    e.nmi_masked = k.nmi.masked != 0;
    e.sipi_vector = k.sipi_vector;
    if (k.flags & KVM_VCPUEVENT_VALID_SMM) {
        e.smm = k.smi.smm != 0;
        e.smi_pending = k.smi.pending != 0;
        e.smm_inside_nmi = k.smi.smm_inside_nmi != 0;
        e.smm_latched_init = k.smi.latched_init != 0;
    }
    if (k.flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT) {
        e.triple_fault_pending = k.triple_fault.pending != 0;
    }
    return e;
}

Result<kvm_vcpu_events> events_to_kvm(const VcpuEvents& e) {
    if (e.exception_has_payload) {
        return Error(
            "the saved vCPU has an exception payload pending, which KVM takes only with "
            "KVM_CAP_EXCEPTION_PAYLOAD (vireo does not enable it)");
    }
    if (e.triple_fault_pending) {
        return Error(
            "the saved vCPU has a triple fault pending, which KVM takes only with "
            "KVM_CAP_X86_TRIPLE_FAULT_EVENT (vireo does not enable it)");
    }
    kvm_vcpu_events k{};
    // Without the payload capability KVM has no "raised, not yet delivered" exception: it starts
    // delivering at once, so a pending exception is handed over as one whose delivery began.
    k.exception.injected = (e.exception_injected || e.exception_pending) ? 1 : 0;
    k.exception.nr = e.exception_vector;
    k.exception.has_error_code = e.exception_has_error_code ? 1 : 0;
    k.exception.error_code = e.exception_error_code;
    k.interrupt.injected = e.interrupt_injected ? 1 : 0;
    k.interrupt.nr = e.interrupt_vector;
    k.interrupt.soft = e.interrupt_soft ? 1 : 0;
    k.interrupt.shadow = e.interrupt_shadow & (VcpuEvents::kShadowMovSs | VcpuEvents::kShadowSti);
    k.nmi.injected = e.nmi_injected ? 1 : 0;
    k.nmi.pending = e.nmi_pending ? 1 : 0;
    k.nmi.masked = e.nmi_masked ? 1 : 0;
    k.sipi_vector = e.sipi_vector;
    k.smi.smm = e.smm ? 1 : 0;
    k.smi.pending = e.smi_pending ? 1 : 0;
    k.smi.smm_inside_nmi = e.smm_inside_nmi ? 1 : 0;
    k.smi.latched_init = e.smm_latched_init ? 1 : 0;
    k.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
              KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
    return k;
}

// Version 1 of section "vcpu.N": the fields as they were, each KVM struct as its bytes.
struct VcpuSectionV1 {
    std::uint32_t id = 0;
    std::uint32_t tsc_khz = 0;
    std::vector<CpuidEntry> cpuid;
    std::vector<std::uint8_t> regs, sregs, fpu;
    bool fpu_is_xsave = true;
    std::vector<std::uint8_t> xcrs, debugregs, lapic, events;
    std::uint32_t mp_state = 0;
    std::vector<MsrEntry> msrs;
};

template <typename Ar>
void persist(Ar& ar, VcpuSectionV1& s) {
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

// A saved blob back into its struct; the size must match exactly (a blob of another layout is
// refused, not misread).
template <typename T>
Result<void> from_bytes(const std::vector<std::uint8_t>& bytes, T& out, const char* what) {
    if (bytes.size() != sizeof(T)) {
        return Error(
            fmt::format("saved {} is {} bytes, KVM's struct is {}", what, bytes.size(), sizeof(T)));
    }
    std::memcpy(&out, bytes.data(), sizeof(T));
    return ok();
}

}  // namespace

VcpuState to_neutral(const KvmVcpuState& k) {
    VcpuState s;
    s.mp_state = static_cast<MpState>(k.mp.mp_state);
    s.regs = from_kvm(k.regs);
    s.sregs = from_kvm(k.sregs);
    if (k.has_xsave) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(k.xsave.region);
        s.xsave.assign(p, p + sizeof(k.xsave.region));
    } else {
        s.xsave = xsave_from_fpu(k.fpu);
    }
    if (k.has_xcrs) {
        for (std::uint32_t i = 0; i < k.xcrs.nr_xcrs && i < KVM_MAX_XCRS; ++i) {
            if (k.xcrs.xcrs[i].xcr == 0) {
                s.xcr0 = k.xcrs.xcrs[i].value;
            }
        }
    }
    if (k.has_debugregs) {
        std::copy(std::begin(k.debugregs.db), std::end(k.debugregs.db), s.debug.dr.begin());
        s.debug.dr6 = k.debugregs.dr6;
        s.debug.dr7 = k.debugregs.dr7;
    }
    if (k.has_lapic) {
        s.has_lapic = true;
        static_assert(sizeof(k.lapic.regs) == sizeof(s.lapic.regs));
        std::memcpy(s.lapic.regs.data(), k.lapic.regs, sizeof(k.lapic.regs));
    }
    if (k.has_events) {
        s.events = events_from_kvm(k.events);
    }
    return s;
}

Result<KvmVcpuState> from_neutral(const VcpuState& s, bool host_xsave) {
    if (static_cast<std::uint32_t>(s.mp_state) > kMaxMpState) {
        return Error(
            fmt::format("unknown vCPU run state {}", static_cast<std::uint32_t>(s.mp_state)));
    }
    if (s.xsave.size() < xsave::kMinSize) {
        return Error(fmt::format("the saved XSAVE area is {} bytes; it has at least {}",
                                 s.xsave.size(), xsave::kMinSize));
    }
    KvmVcpuState k;
    k.mp.mp_state = static_cast<std::uint32_t>(s.mp_state);
    k.regs = to_kvm(s.regs);
    // The pending-interrupt bitmap stays empty: the events carry an interrupt being delivered.
    k.sregs = to_kvm(s.sregs, kvm_sregs{});
    if (host_xsave) {
        // KVM_SET_XSAVE takes 4 KiB; components beyond it (AMX tiles) would need KVM_SET_XSAVE2.
        constexpr std::size_t kRegion = sizeof(k.xsave.region);
        const bool beyond =
            s.xsave.size() > kRegion && std::any_of(s.xsave.begin() + kRegion, s.xsave.end(),
                                                    [](std::uint8_t b) { return b != 0; });
        if (beyond) {
            return Error(fmt::format(
                "the saved XSAVE area holds state beyond KVM_SET_XSAVE's {} bytes", kRegion));
        }
        k.has_xsave = true;
        std::memcpy(k.xsave.region, s.xsave.data(), std::min(kRegion, s.xsave.size()));
        k.has_xcrs = true;
        k.xcrs.nr_xcrs = 1;
        k.xcrs.xcrs[0].xcr = 0;
        k.xcrs.xcrs[0].value = s.xcr0;
    } else {
        const auto bv = get<std::uint64_t>(s.xsave, xsave::kXstateBv);
        if ((bv & ~(xsave::kX87 | xsave::kSse)) != 0 || (s.xcr0 & ~(xsave::kX87 | xsave::kSse))) {
            return Error(
                fmt::format("the saved vCPU uses XSAVE components {:#x} and this KVM has "
                            "no XSAVE",
                            bv | s.xcr0));
        }
        k.fpu = fpu_from_xsave(s.xsave);
    }
    k.has_debugregs = true;
    std::copy(s.debug.dr.begin(), s.debug.dr.end(), std::begin(k.debugregs.db));
    k.debugregs.dr6 = s.debug.dr6;
    k.debugregs.dr7 = s.debug.dr7;
    if (s.has_lapic) {
        k.has_lapic = true;
        std::memcpy(k.lapic.regs, s.lapic.regs.data(), sizeof(k.lapic.regs));
    }
    auto events = events_to_kvm(s.events);
    if (!events) {
        return events.error();
    }
    k.has_events = true;
    k.events = *events;
    return k;
}

Result<VcpuState> load_vcpu_section_v1(std::span<const std::uint8_t> bytes) {
    auto v1 = load_from_bytes<VcpuSectionV1>(bytes);
    if (!v1) {
        return v1.error();
    }
    KvmVcpuState k;
    k.mp.mp_state = v1->mp_state;
    if (v1->mp_state > kMaxMpState) {
        return Error(fmt::format("unknown vCPU run state {}", v1->mp_state));
    }
    if (auto r = from_bytes(v1->regs, k.regs, "registers"); !r) {
        return r.error();
    }
    if (auto r = from_bytes(v1->sregs, k.sregs, "special registers"); !r) {
        return r.error();
    }
    k.has_xsave = v1->fpu_is_xsave;
    if (auto r = k.has_xsave ? from_bytes(v1->fpu, k.xsave, "XSAVE area")
                             : from_bytes(v1->fpu, k.fpu, "FPU state");
        !r) {
        return r.error();
    }
    k.has_xcrs = !v1->xcrs.empty();
    if (k.has_xcrs) {
        if (auto r = from_bytes(v1->xcrs, k.xcrs, "XCRs"); !r) {
            return r.error();
        }
    }
    k.has_debugregs = !v1->debugregs.empty();
    if (k.has_debugregs) {
        if (auto r = from_bytes(v1->debugregs, k.debugregs, "debug registers"); !r) {
            return r.error();
        }
    }
    k.has_lapic = !v1->lapic.empty();
    if (k.has_lapic) {
        if (auto r = from_bytes(v1->lapic, k.lapic, "LAPIC"); !r) {
            return r.error();
        }
    }
    k.has_events = !v1->events.empty();
    if (k.has_events) {
        if (auto r = from_bytes(v1->events, k.events, "pending events"); !r) {
            return r.error();
        }
    }
    VcpuState s = to_neutral(k);
    s.id = v1->id;
    s.tsc_khz = v1->tsc_khz;
    s.cpuid = std::move(v1->cpuid);
    s.msrs = std::move(v1->msrs);
    return s;
}

}  // namespace vireo::kvm
