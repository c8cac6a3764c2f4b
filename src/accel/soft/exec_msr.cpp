// CPUID, the time-stamp counter and model-specific registers (SDM Vol. 2: CPUID, RDTSC, RDTSCP,
// RDMSR, WRMSR; MSR numbers from SDM Vol. 4 §2.1). MSRs outside this list raise #GP(0), as on a
// CPU that does not have them.
#include <x86intrin.h>

#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

std::uint64_t Interpreter::read_tsc() const {
    return __rdtsc() + static_cast<std::uint64_t>(m_cpu.tsc_offset);
}

bool Interpreter::cpuid_has(std::uint32_t leaf, unsigned reg, unsigned bit) const {
    for (const auto& e : m_cpuid) {
        if (e.function == leaf && e.index == 0) {
            const std::uint32_t regs[4] = {e.eax, e.ebx, e.ecx, e.edx};
            return ((regs[reg & 3] >> bit) & 1) != 0;
        }
    }
    return false;
}

void Interpreter::cpuid() {
    const auto leaf = static_cast<std::uint32_t>(gpr(kRax));
    const auto sub = static_cast<std::uint32_t>(gpr(kRcx));
    const CpuidEntry* hit = nullptr;
    const CpuidEntry* any_index = nullptr;
    for (const auto& e : m_cpuid) {
        if (e.function != leaf) {
            continue;
        }
        if (e.index == sub) {
            hit = &e;
            break;
        }
        if (!any_index) {
            any_index = &e;
        }
    }
    // Leaves whose output depends on ECX are listed per index; for the others any entry of
    // the leaf answers. Leaves not listed read as zeros.
    static constexpr std::uint32_t kIndexed[] = {4, 7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x8000001d};
    bool indexed = false;
    for (auto l : kIndexed) {
        indexed = indexed || l == leaf;
    }
    if (!hit && !indexed) {
        hit = any_index;
    }
    CpuidEntry e = hit ? *hit : CpuidEntry{};
    if (leaf == 1) {
        // The initial APIC ID of this vCPU is in EBX[31:24]; keep what the VMM set.
        e.ecx &= ~(1u << 27);  // OSXSAVE: no XSAVE
    }
    set_gpr(kRax, 4, e.eax);
    set_gpr(kRbx, 4, e.ebx);
    set_gpr(kRcx, 4, e.ecx);
    set_gpr(kRdx, 4, e.edx);
}

bool Interpreter::exec_msr(const Insn& in) {
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_CPUID:
            cpuid();
            break;
        case ZYDIS_MNEMONIC_RDTSC:
        case ZYDIS_MNEMONIC_RDTSCP: {
            // RDTSCP only where CPUID 0x80000001:EDX[27] says so (qemu64 does not).
            if (in.mnemonic == ZYDIS_MNEMONIC_RDTSCP && !cpuid_has(0x80000001, 3, 27)) {
                raise(kUd);
            }
            if ((m_cpu.cr4 & 4) && m_cpu.cpl != 0) {  // CR4.TSD
                raise(kGp, 0);
            }
            const std::uint64_t t = read_tsc();
            set_gpr(kRax, 4, t & 0xffffffff);
            set_gpr(kRdx, 4, t >> 32);
            if (in.mnemonic == ZYDIS_MNEMONIC_RDTSCP) {
                set_gpr(kRcx, 4, m_cpu.msr.tsc_aux & 0xffffffff);
            }
            break;
        }
        case ZYDIS_MNEMONIC_RDMSR:
        case ZYDIS_MNEMONIC_WRMSR: {
            if (m_cpu.cpl != 0) {
                raise(kGp, 0);
            }
            const auto index = static_cast<std::uint32_t>(gpr(kRcx));
            const bool write = in.mnemonic == ZYDIS_MNEMONIC_WRMSR;
            const std::uint64_t v = (gpr(kRdx) << 32) | (gpr(kRax) & 0xffffffff);
            std::uint64_t* reg = nullptr;
            std::uint64_t value = 0;
            MsrFile& m = m_cpu.msr;
            auto canonical = [](std::uint64_t a) {
                return static_cast<std::uint64_t>(static_cast<std::int64_t>(a << 16) >> 16) == a;
            };
            switch (index) {
                case 0x10:  // IA32_TIME_STAMP_COUNTER
                    if (write) {
                        m_cpu.tsc_offset = static_cast<std::int64_t>(v - __rdtsc());
                        goto done;
                    }
                    value = read_tsc();
                    break;
                case 0x1b:
                    reg = &m.apic_base;
                    break;
                case 0x8b:
                    value = 0;
                    if (write) {
                        goto done;
                    }
                    break;  // IA32_BIOS_SIGN_ID
                case 0xfe:
                    value = 0x508;
                    if (write) {
                        raise(kGp, 0);
                    }
                    break;  // MTRRcap: 8 var, fixed, WC
                case 0x174:
                    reg = &m.sysenter_cs;
                    break;
                case 0x175:
                    reg = &m.sysenter_esp;
                    break;
                case 0x176:
                    reg = &m.sysenter_eip;
                    break;
                case 0x179:
                    value = 0;
                    if (write) {
                        raise(kGp, 0);
                    }
                    break;  // MCG_CAP: no banks
                case 0x17a:
                    reg = &m.mcg_status;
                    break;
                case 0x1a0:
                    reg = &m.misc_enable;
                    break;
                case 0x277:
                    reg = &m.pat;
                    break;
                case 0x2ff:
                    reg = &m.mtrr_def_type;
                    break;
                case 0x250:
                    reg = &m.mtrr_fixed[0];
                    break;
                case 0x258:
                    reg = &m.mtrr_fixed[1];
                    break;
                case 0x259:
                    reg = &m.mtrr_fixed[2];
                    break;
                case 0xc0000080: {  // IA32_EFER
                    if (write) {
                        if ((v & ~cr::kEferAllowed) != 0 ||
                            ((m_cpu.cr0 & cr::kCr0Pg) && ((v ^ m_cpu.efer) & cr::kEferLme))) {
                            raise(kGp, 0);
                        }
                        m_cpu.efer = (v & ~cr::kEferLma) | (m_cpu.efer & cr::kEferLma);
                        flush_tlb();
                        goto done;
                    }
                    value = m_cpu.efer;
                    break;
                }
                case 0xc0000081:
                    reg = &m.star;
                    break;
                case 0xc0000082:
                    reg = &m.lstar;
                    if (write && !canonical(v)) {
                        raise(kGp, 0);
                    }
                    break;
                case 0xc0000083:
                    reg = &m.cstar;
                    if (write && !canonical(v)) {
                        raise(kGp, 0);
                    }
                    break;
                case 0xc0000084:
                    reg = &m.sfmask;
                    break;
                case 0xc0000100:
                    reg = &m_cpu.seg[kFs].base;
                    if (write && !canonical(v)) {
                        raise(kGp, 0);
                    }
                    break;
                case 0xc0000101:
                    reg = &m_cpu.seg[kGs].base;
                    if (write && !canonical(v)) {
                        raise(kGp, 0);
                    }
                    break;
                case 0xc0000102:
                    reg = &m.kernel_gs_base;
                    if (write && !canonical(v)) {
                        raise(kGp, 0);
                    }
                    break;
                case 0xc0000103:
                    reg = &m.tsc_aux;
                    break;
                default:
                    if (index >= 0x200 && index <= 0x20f) {
                        reg = &m.mtrr_var[index - 0x200];
                    } else if (index >= 0x268 && index <= 0x26f) {
                        reg = &m.mtrr_fixed[3 + index - 0x268];
                    } else if (m_msr_hook && m_msr_hook(index, value, write, v)) {
                        // Platform MSRs (IA32_TSC_DEADLINE with the irqchip's LAPIC).
                        if (write) {
                            goto done;
                        }
                    } else {
                        raise(kGp, 0);
                    }
            }
            if (write) {
                if (!reg) {
                    raise(kGp, 0);
                }
                *reg = v;
            } else {
                if (reg) {
                    value = *reg;
                }
                set_gpr(kRax, 4, value & 0xffffffff);
                set_gpr(kRdx, 4, value >> 32);
            }
        done:
            break;
        }
        default:
            return false;
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
