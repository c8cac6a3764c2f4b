#include "machine/vcpu_report.h"

#include <fmt/format.h>

namespace vireo {

namespace {

// The highest vector set in the 256-bit LAPIC register at `base` (IRR 0x200, ISR 0x100; eight
// 32-bit words 16 bytes apart, SDM Vol. 3 §11.8.4), or -1.
int highest_vector(const LapicState& l, std::size_t base) {
    for (int word = 7; word >= 0; --word) {
        const std::uint32_t v = l.read(base + static_cast<std::size_t>(word) * 16);
        if (v != 0) {
            return word * 32 + 31 - __builtin_clz(v);
        }
    }
    return -1;
}

std::string vector_text(int v) {
    return v < 0 ? std::string("-") : fmt::format("{:#x}", v);
}

const char* mp_state_name(MpState m) {
    switch (m) {
        case MpState::Runnable:
            return "runnable";
        case MpState::WaitForInit:
            return "waiting for INIT";
        case MpState::InitReceived:
            return "INIT received";
        case MpState::Halted:
            return "halted";
        case MpState::SipiReceived:
            return "SIPI received";
    }
    return "unknown";
}

}  // namespace

std::string vcpu_state_report(const VcpuState& s) {
    std::string out = fmt::format("{}, rflags {:#x} (IF {})", mp_state_name(s.mp_state),
                                  s.regs.rflags, (s.regs.rflags >> 9) & 1);
    const VcpuEvents& e = s.events;
    if (e.interrupt_shadow != 0) {
        out += fmt::format(", interrupt shadow {}", e.interrupt_shadow);
    }
    if (e.exception_injected || e.exception_pending) {
        out += fmt::format(", exception {} {}", e.exception_vector,
                           e.exception_injected ? "injected" : "pending");
    }
    if (e.interrupt_injected) {
        out += fmt::format(", interrupt {:#x} injected", e.interrupt_vector);
    }
    if (e.nmi_injected || e.nmi_pending) {
        out += e.nmi_injected ? ", NMI injected" : ", NMI pending";
    }
    if (s.has_lapic) {
        const LapicState& l = s.lapic;
        // TPR 0x80, LVT timer 0x320, initial count 0x380, current count 0x390.
        out += fmt::format("; LAPIC tpr {:#x} lvtt {:#x} tmict {:#x} tmcct {:#x} irr {} isr {}",
                           l.read(0x80), l.read(0x320), l.read(0x380), l.read(0x390),
                           vector_text(highest_vector(l, 0x200)),
                           vector_text(highest_vector(l, 0x100)));
    }
    std::uint64_t tsc = 0, deadline = 0;
    bool have_tsc = false, have_deadline = false;
    for (const auto& m : s.msrs) {
        if (m.index == 0x10) {  // IA32_TIME_STAMP_COUNTER
            tsc = m.data;
            have_tsc = true;
        } else if (m.index == 0x6e0) {  // IA32_TSC_DEADLINE
            deadline = m.data;
            have_deadline = true;
        }
    }
    if (have_tsc) {
        out += fmt::format("; tsc {:#x}", tsc);
    }
    if (have_deadline) {
        if (deadline == 0) {
            out += ", tsc deadline unarmed";
        } else if (have_tsc && s.tsc_khz != 0) {
            const double ms = (static_cast<double>(deadline) - static_cast<double>(tsc)) /
                              static_cast<double>(s.tsc_khz);
            out += fmt::format(", tsc deadline {:#x} ({:+.3f} ms)", deadline, ms);
        } else {
            out += fmt::format(", tsc deadline {:#x}", deadline);
        }
    }
    return out;
}

}  // namespace vireo
