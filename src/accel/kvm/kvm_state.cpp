// Saving and restoring a KVM vCPU and the VM-wide irqchip/PIT (api.rst §4: KVM_GET/SET_* per piece
// of state). The order of the SET calls matters and follows what KVM requires:
//   CPUID first (it decides which MSRs and XSAVE components exist), then MP state, general and
//   special registers (SREGS carries APIC_BASE, which enables the LAPIC), FPU/XSAVE, XCRs, debug
//   registers, the LAPIC (before MSRs such as TSC_DEADLINE that act on it), the MSRs (TSC,
//   kvmclock, SYSENTER/SYSCALL, PAT, ...), and the pending events last (they may refer to state
//   set above, like an interrupt injected into an already-configured LAPIC).
#include <sys/ioctl.h>

#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "accel/kvm/kvm_state_convert.h"
#include "accel/kvm/kvm_uapi.h"
#include "accel/kvm/kvm_vcpu.h"
#include "accel/kvm/kvm_vm.h"

namespace vireo {

using kvm::from_neutral;
using kvm::KvmVcpuState;
using kvm::to_neutral;

namespace {

template <typename T>
std::vector<std::uint8_t> to_bytes(const T& v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    return {p, p + sizeof(T)};
}

// A saved blob back into its struct; the size must match exactly (a snapshot from a build with
// another layout is refused, not misread).
template <typename T>
Result<T> from_bytes(const std::vector<std::uint8_t>& bytes, const char* what) {
    if (bytes.size() != sizeof(T)) {
        return Error(
            fmt::format("saved {} is {} bytes, KVM's struct is {}", what, bytes.size(), sizeof(T)));
    }
    T v{};
    std::memcpy(&v, bytes.data(), sizeof(T));
    return v;
}

}  // namespace

Result<std::vector<MsrEntry>> KvmVcpu::read_saveable_msrs() {
    if (m_msr_list.empty()) {
        m_msr_list = m_caps->msrs;
    }
    // KVM_GET_MSRS stops at the first MSR it cannot read and returns how many it did: drop that
    // one and go on. The filtered list is kept, so later saves take one call.
    for (;;) {
        std::vector<MsrEntry> msrs(m_msr_list.size());
        for (std::size_t i = 0; i < msrs.size(); ++i) {
            msrs[i].index = m_msr_list[i];
        }
        std::vector<std::uint8_t> buf(sizeof(kvm_msrs) + msrs.size() * sizeof(kvm_msr_entry));
        auto* k = reinterpret_cast<kvm_msrs*>(buf.data());
        k->nmsrs = static_cast<std::uint32_t>(msrs.size());
        for (std::size_t i = 0; i < msrs.size(); ++i) {
            k->entries[i].index = msrs[i].index;
        }
        const int n = ::ioctl(m_fd.get(), KVM_GET_MSRS, buf.data());
        if (n < 0) {
            return Error::from_errno(fmt::format("vCPU {}: KVM_GET_MSRS", m_id));
        }
        if (static_cast<std::size_t>(n) == msrs.size()) {
            for (std::size_t i = 0; i < msrs.size(); ++i) {
                msrs[i].data = k->entries[i].data;
            }
            return msrs;
        }
        m_msr_list.erase(m_msr_list.begin() + n);
    }
}

Result<void> KvmVcpu::restore_msrs(std::span<const MsrEntry> saved) {
    std::vector<MsrEntry> todo(saved.begin(), saved.end());
    while (!todo.empty()) {
        auto buf =
            std::vector<std::uint8_t>(sizeof(kvm_msrs) + todo.size() * sizeof(kvm_msr_entry));
        auto* k = reinterpret_cast<kvm_msrs*>(buf.data());
        k->nmsrs = static_cast<std::uint32_t>(todo.size());
        for (std::size_t i = 0; i < todo.size(); ++i) {
            k->entries[i].index = todo[i].index;
            k->entries[i].data = todo[i].data;
        }
        // KVM_SET_MSRS sets entries in order and stops at the first it refuses.
        const int n = ::ioctl(m_fd.get(), KVM_SET_MSRS, buf.data());
        if (n < 0) {
            return Error::from_errno(fmt::format("vCPU {}: KVM_SET_MSRS", m_id));
        }
        if (static_cast<std::size_t>(n) == todo.size()) {
            return ok();
        }
        // Some MSRs accept only guest writes or only certain values (KVM's paravirtual poll
        // control, for one). One that already holds the saved value needs no restoring; any
        // other refusal means the state cannot be reproduced.
        const MsrEntry refused = todo[static_cast<std::size_t>(n)];
        MsrEntry now{refused.index, 0};
        if (!get_msrs(std::span(&now, 1)) || now.data != refused.data) {
            return Error(fmt::format("vCPU {}: KVM refuses MSR {:#x} = {:#x} (it holds {:#x})",
                                     m_id, refused.index, refused.data, now.data));
        }
        todo.erase(todo.begin(), todo.begin() + n + 1);
    }
    return ok();
}

Result<VcpuState> KvmVcpu::save_state() {
    KvmVcpuState k;
    if (::ioctl(m_fd.get(), KVM_GET_MP_STATE, &k.mp) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_MP_STATE", m_id));
    }
    if (::ioctl(m_fd.get(), KVM_GET_REGS, &k.regs) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_REGS", m_id));
    }
    if (::ioctl(m_fd.get(), KVM_GET_SREGS, &k.sregs) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_SREGS", m_id));
    }
    k.has_xsave = m_caps->xsave;
    if (k.has_xsave) {
        if (::ioctl(m_fd.get(), KVM_GET_XSAVE, &k.xsave) < 0) {
            return Error::from_errno(fmt::format("vCPU {}: KVM_GET_XSAVE", m_id));
        }
    } else if (::ioctl(m_fd.get(), KVM_GET_FPU, &k.fpu) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_FPU", m_id));
    }
    k.has_xcrs = m_caps->xcrs;
    if (k.has_xcrs && ::ioctl(m_fd.get(), KVM_GET_XCRS, &k.xcrs) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_XCRS", m_id));
    }
    k.has_debugregs = m_caps->debugregs;
    if (k.has_debugregs && ::ioctl(m_fd.get(), KVM_GET_DEBUGREGS, &k.debugregs) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_DEBUGREGS", m_id));
    }
    if (::ioctl(m_fd.get(), KVM_GET_LAPIC, &k.lapic) == 0) {
        k.has_lapic = true;
    } else if (errno != ENXIO && errno != EINVAL) {  // no in-kernel LAPIC: nothing to save
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_LAPIC", m_id));
    }
    k.has_events = m_caps->vcpu_events;
    if (k.has_events && ::ioctl(m_fd.get(), KVM_GET_VCPU_EVENTS, &k.events) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_VCPU_EVENTS", m_id));
    }
    VcpuState s = to_neutral(k);
    s.id = m_id;
    s.cpuid = m_cpuid;
    const int khz = ::ioctl(m_fd.get(), KVM_GET_TSC_KHZ, 0);
    s.tsc_khz = khz > 0 ? static_cast<std::uint32_t>(khz) : 0;
    auto msrs = read_saveable_msrs();
    if (!msrs) {
        return msrs.error();
    }
    s.msrs = std::move(msrs).value();
    return s;
}

Result<void> KvmVcpu::restore_state(const VcpuState& s) {
    auto converted = from_neutral(s, m_caps->xsave);
    if (!converted) {
        return converted.error().wrap(fmt::format("vCPU {}", m_id));
    }
    // 4 KiB of XSAVE area and more: on the heap, not the vCPU thread's stack.
    const auto k = std::make_unique<KvmVcpuState>(std::move(converted).value());
    if (auto r = set_cpuid(s.cpuid); !r) {
        return r;
    }
    if (s.tsc_khz != 0) {
        const int now = ::ioctl(m_fd.get(), KVM_GET_TSC_KHZ, 0);
        if (now > 0 && static_cast<std::uint32_t>(now) != s.tsc_khz) {
            // The guest calibrated against the old rate; KVM can scale the TSC to keep it.
            if (!m_caps->tsc_control ||
                ::ioctl(m_fd.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(s.tsc_khz)) < 0) {
                return Error(fmt::format(
                    "vCPU {}: the snapshot's TSC runs at {} kHz, this host at {} kHz and KVM "
                    "cannot scale it",
                    m_id, s.tsc_khz, now));
            }
        }
    }
    if (::ioctl(m_fd.get(), KVM_SET_MP_STATE, &k->mp) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_MP_STATE {}", m_id, k->mp.mp_state));
    }
    if (::ioctl(m_fd.get(), KVM_SET_REGS, &k->regs) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_REGS", m_id));
    }
    if (::ioctl(m_fd.get(), KVM_SET_SREGS, &k->sregs) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_SREGS", m_id));
    }
    if (k->has_xsave) {
        if (::ioctl(m_fd.get(), KVM_SET_XSAVE, &k->xsave) < 0) {
            return Error::from_errno(fmt::format("vCPU {}: KVM_SET_XSAVE", m_id));
        }
    } else if (::ioctl(m_fd.get(), KVM_SET_FPU, &k->fpu) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_FPU", m_id));
    }
    if (k->has_xcrs && m_caps->xcrs && ::ioctl(m_fd.get(), KVM_SET_XCRS, &k->xcrs) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_XCRS", m_id));
    }
    if (k->has_debugregs && m_caps->debugregs &&
        ::ioctl(m_fd.get(), KVM_SET_DEBUGREGS, &k->debugregs) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_DEBUGREGS", m_id));
    }
    if (k->has_lapic && ::ioctl(m_fd.get(), KVM_SET_LAPIC, &k->lapic) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_LAPIC", m_id));
    }
    if (auto r = restore_msrs(s.msrs); !r) {
        return r;
    }
    if (m_caps->vcpu_events && ::ioctl(m_fd.get(), KVM_SET_VCPU_EVENTS, &k->events) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_VCPU_EVENTS", m_id));
    }
    return ok();
}

Result<VmPlatformState> KvmVm::save_platform_state() {
    VmPlatformState s;
    s.accelerator = "kvm";
    s.irqchip = m_irqchip;
    if (!m_irqchip) {
        return s;
    }
    std::vector<std::uint8_t>* chips[] = {&s.pic_master, &s.pic_slave, &s.ioapic};
    for (std::uint32_t id = 0; id < 3; ++id) {
        kvm_irqchip chip{};
        chip.chip_id = id;  // KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC
        if (::ioctl(m_fd.get(), KVM_GET_IRQCHIP, &chip) < 0) {
            return Error::from_errno(fmt::format("KVM_GET_IRQCHIP {}", id));
        }
        *chips[id] = to_bytes(chip);
    }
    kvm_pit_state2 pit{};
    if (::ioctl(m_fd.get(), KVM_GET_PIT2, &pit) < 0) {
        return Error::from_errno("KVM_GET_PIT2");
    }
    s.pit = to_bytes(pit);
    return s;
}

Result<void> KvmVm::restore_platform_state(const VmPlatformState& s) {
    if (s.accelerator != "kvm") {
        return Error(fmt::format("the snapshot was taken with the '{}' accelerator, not kvm",
                                 s.accelerator));
    }
    if (s.irqchip != m_irqchip) {
        return Error("the snapshot's VM and this one differ in having an in-kernel irqchip");
    }
    if (!m_irqchip) {
        return ok();
    }
    const std::vector<std::uint8_t>* chips[] = {&s.pic_master, &s.pic_slave, &s.ioapic};
    for (std::uint32_t id = 0; id < 3; ++id) {
        auto chip = from_bytes<kvm_irqchip>(*chips[id], "interrupt controller");
        if (!chip) {
            return chip.error();
        }
        if (chip->chip_id != id) {
            return Error(
                fmt::format("saved interrupt controller {} says it is chip {}", id, chip->chip_id));
        }
        if (::ioctl(m_fd.get(), KVM_SET_IRQCHIP, &*chip) < 0) {
            return Error::from_errno(fmt::format("KVM_SET_IRQCHIP {}", id));
        }
    }
    auto pit = from_bytes<kvm_pit_state2>(s.pit, "PIT");
    if (!pit) {
        return pit.error();
    }
    if (::ioctl(m_fd.get(), KVM_SET_PIT2, &*pit) < 0) {
        return Error::from_errno("KVM_SET_PIT2");
    }
    return ok();
}

}  // namespace vireo
