#include "accel/soft/soft_vcpu.h"

#include <fmt/format.h>

#include "accel/soft/cpuid_model.h"
#include "accel/soft/soft_vm.h"

namespace vireo::soft {

SoftVcpu::SoftVcpu(SoftVm& vm, std::uint32_t id)
    : m_vm(vm), m_id(id), m_cpuid(cpuid_model()), m_interp(vm.memory(), *this, m_cpuid) {
    // The xAPIC ID register (offset 0x20, bits 31:24) and the BSP flag of IA32_APIC_BASE.
    m_lapic_regs.write(0x20, id << 24);
    if (id != 0) {
        m_interp.state().msr.apic_base &= ~0x100ULL;
    }
    if (vm.irqchip()) {
        // Application processors wait for INIT-SIPI-SIPI, as with KVM's irqchip.
        m_lapic = std::make_unique<SoftLapic>(
            id, [this](std::uint32_t hi, std::uint32_t lo) { m_vm.ipi(*m_lapic, hi, lo); },
            [this](std::uint8_t vector) { m_vm.ioapic()->eoi(vector); }, id != 0);
        m_vm.add_lapic(m_lapic.get());
        m_interp.set_interrupt_hint(&m_lapic->pending_hint());
    }
    m_interp.set_msr_hook([this](std::uint32_t index, std::uint64_t& out, bool write,
                                 std::uint64_t in) { return platform_msr(index, out, write, in); });
}

// The MSRs the platform serves rather than the CPU: IA32_TSC_DEADLINE (with the irqchip's LAPIC)
// and kvmclock's two. A kvmclock address outside guest RAM is kept but not written to, as KVM
// does.
bool SoftVcpu::platform_msr(std::uint32_t index, std::uint64_t& out, bool write, std::uint64_t in) {
    MsrFile& m = m_interp.state().msr;
    switch (index) {
        case 0x6e0:  // IA32_TSC_DEADLINE
            if (!m_lapic) {
                return false;
            }
            if (write) {
                m_lapic->set_tsc_deadline(in, m_interp.read_tsc(), host_tsc_khz());
            } else {
                out = m_lapic->tsc_deadline();
            }
            return true;
        case kMsrKvmSystemTimeNew:
            if (write) {
                m.kvm_system_time = in;
                m_kvmclock_generation = m_vm.kvm_clock().generation();
                m_vm.kvm_clock().write_time_info(m_vm.memory(), in, m_interp.read_tsc(),
                                                 host_tsc_khz());
            } else {
                out = m.kvm_system_time;
            }
            return true;
        case kMsrKvmWallClockNew:
            if (write) {
                m.kvm_wall_clock = in;
                m_vm.kvm_clock().write_wall_clock(m_vm.memory(), in);
            } else {
                out = m.kvm_wall_clock;
            }
            return true;
        default:
            return false;
    }
}

// After the guest clock was set (resume, restore) the structure gets the new reference pair before
// the vCPU runs guest code again.
void SoftVcpu::refresh_kvm_clock() {
    const std::uint32_t g = m_vm.kvm_clock().generation();
    if (g == m_kvmclock_generation) {
        return;
    }
    m_kvmclock_generation = g;
    const std::uint64_t msr = m_interp.state().msr.kvm_system_time;
    if ((msr & 1) != 0) {
        m_vm.kvm_clock().write_time_info(m_vm.memory(), msr, m_interp.read_tsc(), host_tsc_khz());
    }
}

SoftVcpu::~SoftVcpu() {
    if (m_lapic) {
        m_vm.remove_lapic(m_lapic.get());
    }
}

VcpuExit SoftVcpu::finish(const RunStop& stop) {
    switch (stop.reason) {
        case StopReason::Halt:
            m_stats.add(ExitReason::Halt);
            return VcpuExit{VcpuExitKind::Halt, {}};
        case StopReason::Shutdown:
            m_stats.add(ExitReason::Shutdown);
            return VcpuExit{VcpuExitKind::Shutdown, stop.detail};
        case StopReason::InternalError:
            m_stats.add(ExitReason::InternalError);
            return VcpuExit{VcpuExitKind::InternalError, stop.detail};
        default:
            m_exit.store(false, std::memory_order_release);
            m_stats.add(ExitReason::Interrupted);
            return VcpuExit{VcpuExitKind::Interrupted, {}};
    }
}

Result<VcpuExit> SoftVcpu::run_with_irqchip() {
    CpuState& st = m_interp.state();
    for (;;) {
        if (m_exit.exchange(false, std::memory_order_acq_rel)) {
            m_stats.add(ExitReason::Interrupted);
            return VcpuExit{VcpuExitKind::Interrupted, {}};
        }
        if (m_lapic->init_pending()) {
            const int v = m_lapic->take_sipi();
            if (v < 0) {
                m_lapic->wait();
                continue;
            }
            m_interp.start_at_sipi(static_cast<std::uint8_t>(v));
        }
        // External interrupts are taken between slices when RFLAGS.IF is set and no STI/MOV SS
        // shadow is active (SDM Vol. 3 §6.8.3); the shadow then ends, since every slice runs
        // at least one instruction.
        SoftPit* pit = m_id == 0 ? m_vm.pit() : nullptr;  // the BSP serves the PIT
        if (pit != nullptr) {
            pit->service(SoftPit::Clock::now());
        }
        // The 8259's output on the BSP's LINT0 in ExtINT mode: the vector comes from the PIC's
        // acknowledge cycle, not the LAPIC's IRR (SDM Vol. 3 §11.5.1).
        SoftPic* pic = m_id == 0 ? m_vm.pic() : nullptr;
        if (pic != nullptr && (st.rflags & fl::IF) != 0 && !st.int_shadow &&
            m_lapic->lint0_extint() && pic->output()) {
            const RunStop r = m_interp.inject(static_cast<std::uint8_t>(pic->acknowledge()));
            if (r.reason != StopReason::None) {
                return finish(r);
            }
        } else if ((st.rflags & fl::IF) != 0 && !st.int_shadow) {
            const int v = m_lapic->pending();
            if (v >= 0) {
                m_lapic->acknowledge(static_cast<std::uint8_t>(v));
                const RunStop r = m_interp.inject(static_cast<std::uint8_t>(v));
                if (r.reason != StopReason::None) {
                    return finish(r);
                }
            }
        }
        st.int_shadow = false;
        if (st.halted) {
            // HLT: sleep until an interrupt, the LAPIC timer, the PIT (on the BSP) or
            // request_exit().
            m_lapic->wait(pit != nullptr ? pit->next_deadline()
                                         : SoftLapic::Clock::time_point::max());
            continue;
        }
        const RunStop r = m_interp.run_slice(m_exit);
        if (r.reason == StopReason::Shutdown || r.reason == StopReason::InternalError) {
            return finish(r);
        }
        // Halt: st.halted is set and the next round waits; Interrupted: the top returns.
    }
}

Result<VcpuExit> SoftVcpu::run(IoHandler& io) {
    if (m_exit.exchange(false, std::memory_order_acq_rel)) {
        m_stats.add(ExitReason::Interrupted);
        return VcpuExit{VcpuExitKind::Interrupted, {}};
    }
    m_io = &io;
    refresh_kvm_clock();
    // Without an irqchip a HLT returns to the VMM, and running again continues after it.
    m_interp.state().halted = false;
    RunStop stop{StopReason::InternalError, {}};
    try {
        if (m_lapic) {
            auto r = run_with_irqchip();
            m_io = nullptr;
            return r;
        }
        stop = m_interp.run(m_exit);
    } catch (const std::exception& e) {
        // Guest faults never get here (the interpreter delivers them); this is a host failure
        // such as an allocation, and it must not escape the vCPU thread (DESIGN.md §6).
        stop = {StopReason::InternalError, std::string("soft: ") + e.what()};
    }
    m_io = nullptr;
    return finish(stop);
}

void SoftVcpu::pio_read(std::uint16_t port, std::span<std::uint8_t> data) {
    m_stats.add(ExitReason::PioRead);
    if (SoftPit* pit = m_vm.pit(); pit != nullptr && SoftPit::owns(port)) {
        pit->pio_read(port, data);  // in the VM, as KVM's in-kernel PIT
        return;
    }
    if (SoftPic* pic = m_vm.pic(); pic != nullptr && SoftPic::owns(port)) {
        pic->pio_read(port, data);
        return;
    }
    m_io->pio_read(port, data);
}

void SoftVcpu::pio_write(std::uint16_t port, std::span<const std::uint8_t> data) {
    if (m_vm.ioevent_write(false, port, data)) {
        return;
    }
    m_stats.add(ExitReason::PioWrite);
    if (SoftPit* pit = m_vm.pit(); pit != nullptr && SoftPit::owns(port)) {
        pit->pio_write(port, data);
        return;
    }
    if (SoftPic* pic = m_vm.pic(); pic != nullptr && SoftPic::owns(port)) {
        pic->pio_write(port, data);
        return;
    }
    m_io->pio_write(port, data);
}

void SoftVcpu::mmio_read(std::uint64_t pa, std::span<std::uint8_t> data) {
    if (m_lapic) {
        // The xAPIC page at IA32_APIC_BASE (when globally enabled, bit 11) and the IOAPIC.
        const std::uint64_t base = m_interp.state().msr.apic_base;
        if ((base & (1u << 11)) != 0 && (pa & ~0xfffULL) == (base & 0xffffff000ULL)) {
            m_lapic->mmio_read(static_cast<std::uint32_t>(pa & 0xfff), data);
            return;
        }
        if ((pa & ~0xfffULL) == SoftIoApic::kBase) {
            m_vm.ioapic()->mmio_read(pa & 0xfff, data);
            return;
        }
    }
    m_stats.add(ExitReason::MmioRead);
    m_io->mmio_read(pa, data);
}

void SoftVcpu::mmio_write(std::uint64_t pa, std::span<const std::uint8_t> data) {
    if (m_lapic) {
        const std::uint64_t base = m_interp.state().msr.apic_base;
        if ((base & (1u << 11)) != 0 && (pa & ~0xfffULL) == (base & 0xffffff000ULL)) {
            m_lapic->mmio_write(static_cast<std::uint32_t>(pa & 0xfff), data);
            return;
        }
        if ((pa & ~0xfffULL) == SoftIoApic::kBase) {
            m_vm.ioapic()->mmio_write(pa & 0xfff, data);
            return;
        }
    }
    if (m_vm.ioevent_write(true, pa, data)) {
        return;
    }
    m_stats.add(ExitReason::MmioWrite);
    m_io->mmio_write(pa, data);
}

Result<Regs> SoftVcpu::get_regs() {
    const CpuState& s = m_interp.state();
    Regs r;
    r.rax = s.gpr[kRax];
    r.rbx = s.gpr[kRbx];
    r.rcx = s.gpr[kRcx];
    r.rdx = s.gpr[kRdx];
    r.rsi = s.gpr[kRsi];
    r.rdi = s.gpr[kRdi];
    r.rsp = s.gpr[kRsp];
    r.rbp = s.gpr[kRbp];
    r.r8 = s.gpr[kR8];
    r.r9 = s.gpr[kR9];
    r.r10 = s.gpr[kR10];
    r.r11 = s.gpr[kR11];
    r.r12 = s.gpr[kR12];
    r.r13 = s.gpr[kR13];
    r.r14 = s.gpr[kR14];
    r.r15 = s.gpr[kR15];
    r.rip = s.rip;
    r.rflags = s.rflags;
    return r;
}

Result<void> SoftVcpu::set_regs(const Regs& r) {
    CpuState& s = m_interp.state();
    s.gpr = {r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi,
             r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
    s.rip = r.rip;
    s.rflags = (r.rflags & (fl::kWritable | fl::VM | fl::VIF | fl::VIP)) | fl::kFixed1;
    return ok();
}

Result<Sregs> SoftVcpu::get_sregs() {
    const CpuState& s = m_interp.state();
    Sregs r;
    r.es = s.seg[kEs];
    r.cs = s.seg[kCs];
    r.ss = s.seg[kSs];
    r.ds = s.seg[kDs];
    r.fs = s.seg[kFs];
    r.gs = s.seg[kGs];
    r.tr = s.tr;
    r.ldt = s.ldt;
    r.gdt = s.gdt;
    r.idt = s.idt;
    r.cr0 = s.cr0;
    r.cr2 = s.cr2;
    r.cr3 = s.cr3;
    r.cr4 = s.cr4;
    r.cr8 = s.cr8;
    r.efer = s.efer;
    r.apic_base = s.msr.apic_base;
    return r;
}

Result<void> SoftVcpu::set_sregs(const Sregs& r) {
    CpuState& s = m_interp.state();
    s.seg[kEs] = r.es;
    s.seg[kCs] = r.cs;
    s.seg[kSs] = r.ss;
    s.seg[kDs] = r.ds;
    s.seg[kFs] = r.fs;
    s.seg[kGs] = r.gs;
    s.tr = r.tr;
    s.ldt = r.ldt;
    s.gdt = r.gdt;
    s.idt = r.idt;
    s.cr0 = r.cr0 | cr::kCr0Et;
    s.cr2 = r.cr2;
    s.cr3 = r.cr3;
    s.cr4 = r.cr4 & cr::kCr4Allowed;
    s.cr8 = r.cr8 & 0xf;
    s.efer = r.efer & cr::kEferAllowed;
    s.msr.apic_base = r.apic_base;
    // CPL is CS.DPL in protected mode (the VMM sets CS from a descriptor), 0 in real mode.
    s.cpl = (s.cr0 & cr::kCr0Pe) ? (r.cs.dpl & 3) : 0;
    m_interp.state_changed();
    return ok();
}

Result<void> SoftVcpu::set_cpuid(std::span<const CpuidEntry> entries) {
    m_cpuid.assign(entries.begin(), entries.end());
    return ok();
}

Result<void> SoftVcpu::set_msrs(std::span<const MsrEntry> msrs) {
    for (const auto& m : msrs) {
        if (!soft_set_msr(m_interp.state(), m.index, m.data)) {
            return Error(fmt::format("soft: MSR {:#x} is not supported", m.index));
        }
    }
    m_interp.state_changed();
    return ok();
}

Result<void> SoftVcpu::get_msrs(std::span<MsrEntry> msrs) {
    for (auto& m : msrs) {
        if (!soft_get_msr(m_interp.state(), m.index, m.data)) {
            return Error(fmt::format("soft: MSR {:#x} is not supported", m.index));
        }
    }
    return ok();
}

Result<void> SoftVcpu::set_fpu(const FpuState& fpu) {
    m_interp.state().fcw = fpu.fcw;
    m_interp.state().mxcsr = fpu.mxcsr;
    return ok();
}

Result<LapicState> SoftVcpu::get_lapic() {
    return m_lapic ? m_lapic->state() : m_lapic_regs;
}

Result<void> SoftVcpu::set_lapic(const LapicState& lapic) {
    if (m_lapic) {
        m_lapic->set_state(lapic);
    } else {
        m_lapic_regs = lapic;
    }
    return ok();
}

Result<std::uint32_t> SoftVcpu::tsc_khz() {
    return host_tsc_khz();
}

}  // namespace vireo::soft
