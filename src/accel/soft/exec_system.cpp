// System instructions (SDM Vol. 2 and Vol. 3 §2.5-2.8): MOV to/from CR0-CR4/CR8 and DR0-DR7,
// MOV Sreg, LDS/LES/LFS/LGS/LSS, LGDT/LIDT/SGDT/SIDT, LLDT/SLDT/LTR/STR, CLI/STI, HLT, INVLPG,
// CLTS, LMSW/SMSW, WBINVD/INVD, SYSCALL/SYSRET, SWAPGS.
#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

namespace {

// A flat 64-bit code or data segment as SYSCALL/SYSRET load them (SDM Vol. 2, SYSCALL).
SegmentCache flat(std::uint16_t sel, bool code, std::uint8_t dpl, bool l) {
    SegmentCache s;
    s.selector = sel;
    s.base = 0;
    s.limit = 0xffffffff;
    s.type = code ? 0xb : 0x3;
    s.s = 1;
    s.dpl = dpl;
    s.present = 1;
    s.l = l ? 1 : 0;
    s.db = (code && l) ? 0 : 1;
    s.g = 1;
    return s;
}

}  // namespace

bool Interpreter::exec_system(const Insn& in) {
    const Operand& d = in.op[0];
    const bool cpl0 = m_cpu.cpl == 0;
    auto privileged = [&] {
        if (!cpl0) {
            raise(kGp, 0);
        }
    };
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_MOV: {
            const Operand& s = in.op[1];
            if (d.kind == OpKind::Seg) {
                if (d.reg == kCs) {
                    raise(kUd);
                }
                load_segment(d.reg, static_cast<std::uint16_t>(rd(s, in)));
                if (d.reg == kSs) {
                    m_cpu.int_shadow = true;  // MOV SS holds off interrupts for one instruction
                }
            } else if (s.kind == OpKind::Seg) {
                // To a register: zero-extended with 32/64-bit operands; to memory: 16 bits.
                wr(d, in, m_cpu.seg[s.reg].selector);
            } else if (s.kind == OpKind::Cr) {
                privileged();
                std::uint64_t v;
                switch (s.reg) {
                    case 0:
                        v = m_cpu.cr0;
                        break;
                    case 2:
                        v = m_cpu.cr2;
                        break;
                    case 3:
                        v = m_cpu.cr3;
                        break;
                    case 4:
                        v = m_cpu.cr4;
                        break;
                    case 8:
                        v = m_cpu.cr8;
                        break;
                    default:
                        raise(kUd);
                }
                set_gpr(d.reg, d.size, v);
            } else if (d.kind == OpKind::Cr) {
                privileged();
                std::uint64_t v = get_gpr(s.reg, s.size);
                switch (d.reg) {
                    case 0: {
                        if (long64() && (v >> 32) != 0) {
                            raise(kGp, 0);
                        }
                        v = (v & 0xffffffffULL) | cr::kCr0Et;
                        // PG needs PE; long mode needs PAE before PG (SDM Vol. 3 §9.8.5).
                        if ((v & cr::kCr0Pg) && !(v & cr::kCr0Pe)) {
                            raise(kGp, 0);
                        }
                        if ((v & cr::kCr0Nw) && !(v & cr::kCr0Cd)) {
                            raise(kGp, 0);
                        }
                        const bool pg_on = (v & cr::kCr0Pg) && !(m_cpu.cr0 & cr::kCr0Pg);
                        const bool pg_off = !(v & cr::kCr0Pg) && (m_cpu.cr0 & cr::kCr0Pg);
                        if (pg_on && (m_cpu.efer & cr::kEferLme)) {
                            if (!(m_cpu.cr4 & cr::kCr4Pae)) {
                                raise(kGp, 0);
                            }
                            m_cpu.efer |= cr::kEferLma;
                        }
                        if (pg_off) {
                            if (long64()) {
                                raise(kGp,
                                      0);  // leave 64-bit mode through compatibility mode first
                            }
                            m_cpu.efer &= ~cr::kEferLma;
                        }
                        m_cpu.cr0 = v;
                        flush_tlb();
                        update_mode();
                        break;
                    }
                    case 2:
                        m_cpu.cr2 = v;
                        break;
                    case 3:
                        m_cpu.cr3 = v & 0x000ffffffffff000ULL;
                        m_cpu.cr3 |= v & 0x18;  // PWT, PCD
                        flush_tlb();
                        break;
                    case 4:
                        if ((v & ~cr::kCr4Allowed) != 0 ||
                            ((m_cpu.efer & cr::kEferLma) && !(v & cr::kCr4Pae))) {
                            raise(kGp, 0);
                        }
                        m_cpu.cr4 = v;
                        flush_tlb();
                        break;
                    case 8:
                        if (v > 15) {
                            raise(kGp, 0);
                        }
                        m_cpu.cr8 = v;
                        break;
                    default:
                        raise(kUd);
                }
            } else if (s.kind == OpKind::Dr) {
                privileged();
                set_gpr(d.reg, d.size, m_cpu.dr[s.reg & 7]);
            } else if (d.kind == OpKind::Dr) {
                privileged();
                // Breakpoints are stored, not armed (debug exceptions are not emulated).
                m_cpu.dr[d.reg & 7] = get_gpr(s.reg, s.size);
            } else {
                return false;
            }
            break;
        }
        case ZYDIS_MNEMONIC_LDS:
        case ZYDIS_MNEMONIC_LES:
        case ZYDIS_MNEMONIC_LFS:
        case ZYDIS_MNEMONIC_LGS:
        case ZYDIS_MNEMONIC_LSS: {
            const Operand& m = in.op[1];
            const unsigned size = d.size;
            const std::uint64_t a = ea(m, in);
            const std::uint64_t off = mem_read(m.seg, a, size);
            const auto sel = static_cast<std::uint16_t>(mem_read(m.seg, a + size, 2));
            const unsigned sreg = in.mnemonic == ZYDIS_MNEMONIC_LDS   ? kDs
                                  : in.mnemonic == ZYDIS_MNEMONIC_LES ? kEs
                                  : in.mnemonic == ZYDIS_MNEMONIC_LFS ? kFs
                                  : in.mnemonic == ZYDIS_MNEMONIC_LGS ? kGs
                                                                      : kSs;
            load_segment(sreg, sel);
            set_gpr(d.reg, size, off);
            break;
        }
        case ZYDIS_MNEMONIC_LGDT:
        case ZYDIS_MNEMONIC_LIDT: {
            privileged();
            const std::uint64_t a = ea(d, in);
            const auto limit = static_cast<std::uint16_t>(mem_read(d.seg, a, 2));
            std::uint64_t base = mem_read(d.seg, a + 2, long64() ? 8 : 4);
            if (!long64() && in.opsize == 2) {
                base &= 0xffffff;
            }
            DescriptorTable& t = in.mnemonic == ZYDIS_MNEMONIC_LGDT ? m_cpu.gdt : m_cpu.idt;
            t.base = base;
            t.limit = limit;
            break;
        }
        case ZYDIS_MNEMONIC_SGDT:
        case ZYDIS_MNEMONIC_SIDT: {
            const DescriptorTable& t = in.mnemonic == ZYDIS_MNEMONIC_SGDT ? m_cpu.gdt : m_cpu.idt;
            const std::uint64_t a = ea(d, in);
            mem_write(d.seg, a, 2, t.limit);
            mem_write(d.seg, a + 2, long64() ? 8 : 4, t.base);
            break;
        }
        case ZYDIS_MNEMONIC_LLDT:
        case ZYDIS_MNEMONIC_LTR: {
            privileged();
            if (m_mode == CpuMode::Real16) {
                raise(kUd);
            }
            const auto sel = static_cast<std::uint16_t>(rd(d, in));
            const bool ltr = in.mnemonic == ZYDIS_MNEMONIC_LTR;
            SegmentCache& s = ltr ? m_cpu.tr : m_cpu.ldt;
            if ((sel & 0xfffc) == 0) {
                if (ltr) {
                    raise(kGp, 0);
                }
                s = SegmentCache{};
                s.selector = sel;
                s.unusable = 1;
                break;
            }
            if (sel & 4) {
                raise(kGp, sel & 0xfffc);  // must be in the GDT
            }
            std::uint64_t high = 0;
            const std::uint64_t desc =
                read_descriptor(sel, (m_cpu.efer & cr::kEferLma) ? &high : nullptr);
            const std::uint8_t type = (desc >> 40) & 0xf;
            if (((desc >> 44) & 1) != 0 || (ltr ? (type != 9 && type != 1) : type != 2)) {
                raise(kGp, sel & 0xfffc);
            }
            if (((desc >> 47) & 1) == 0) {
                raise(kNp, sel & 0xfffc);
            }
            set_segment_from_descriptor(s, sel, desc);
            s.base |= (high & 0xffffffffULL) << 32;
            if (ltr) {
                // Mark the TSS busy in the GDT and in the cache.
                const std::uint64_t at = m_cpu.gdt.base + (sel & 0xfff8);
                m_mmu.write(at, 8, desc | (2ULL << 40), false);
                s.type = type | 2;
            }
            break;
        }
        case ZYDIS_MNEMONIC_SLDT:
            wr(d, in, m_cpu.ldt.selector);
            break;
        case ZYDIS_MNEMONIC_STR:
            wr(d, in, m_cpu.tr.selector);
            break;
        case ZYDIS_MNEMONIC_CLI:
        case ZYDIS_MNEMONIC_STI:
            if (m_mode != CpuMode::Real16 && m_cpu.cpl > ((m_cpu.rflags & fl::IOPL) >> 12)) {
                raise(kGp, 0);
            }
            if (in.mnemonic == ZYDIS_MNEMONIC_CLI) {
                m_cpu.rflags &= ~fl::IF;
            } else {
                if (!(m_cpu.rflags & fl::IF)) {
                    m_cpu.int_shadow = true;  // the STI shadow (SDM Vol. 3 §6.8.3)
                }
                m_cpu.rflags |= fl::IF;
                interrupts_enabled();
            }
            break;
        case ZYDIS_MNEMONIC_HLT:
            privileged();
            m_cpu.rip = next_rip(in);
            m_cpu.halted = true;
            m_stop = StopReason::Halt;
            return true;
        case ZYDIS_MNEMONIC_INVLPG:
            privileged();
            m_mmu.flush_page(linear(d.seg, ea(d, in)));
            invalidate_fetch();
            break;
        case ZYDIS_MNEMONIC_WBINVD:
        case ZYDIS_MNEMONIC_INVD:
            privileged();
            break;
        case ZYDIS_MNEMONIC_CLTS:
            privileged();
            m_cpu.cr0 &= ~cr::kCr0Ts;
            break;
        case ZYDIS_MNEMONIC_LMSW: {
            privileged();
            // Loads PE, MP, EM, TS; cannot clear PE (SDM Vol. 2, LMSW).
            const std::uint64_t v = rd(d, in) & 0xf;
            m_cpu.cr0 = (m_cpu.cr0 & ~0xeULL) | v | (m_cpu.cr0 & cr::kCr0Pe);
            update_mode();
            break;
        }
        case ZYDIS_MNEMONIC_SMSW:
            wr(d, in, d.kind == OpKind::Mem ? (m_cpu.cr0 & 0xffff) : m_cpu.cr0);
            break;
        case ZYDIS_MNEMONIC_SWAPGS:
            if (!long64()) {
                raise(kUd);
            }
            privileged();
            std::swap(m_cpu.seg[kGs].base, m_cpu.msr.kernel_gs_base);
            break;
        case ZYDIS_MNEMONIC_SYSCALL: {
            if (!(m_cpu.efer & cr::kEferLma) || !(m_cpu.efer & cr::kEferSce)) {
                raise(kUd);  // legacy-mode SYSCALL is AMD-only; not modelled
            }
            const auto sel = static_cast<std::uint16_t>((m_cpu.msr.star >> 32) & 0xfffc);
            gpr(kRcx) = next_rip(in);
            gpr(kR11) = m_cpu.rflags & ~fl::RF;
            m_cpu.seg[kCs] = flat(sel, true, 0, true);
            m_cpu.seg[kSs] = flat(static_cast<std::uint16_t>(sel + 8), false, 0, false);
            m_cpu.rflags &= ~(m_cpu.msr.sfmask | fl::RF);
            m_cpu.rflags |= fl::kFixed1;
            m_cpu.cpl = 0;
            update_mode();
            m_cpu.rip = m_cpu.msr.lstar;
            return true;
        }
        case ZYDIS_MNEMONIC_SYSRET: {
            if (!(m_cpu.efer & cr::kEferLma) || !(m_cpu.efer & cr::kEferSce)) {
                raise(kUd);
            }
            privileged();
            const bool to64 = in.opsize == 8;
            const std::uint64_t target = to64 ? gpr(kRcx) : gpr(kRcx) & 0xffffffffULL;
            if (to64 && static_cast<std::uint64_t>(static_cast<std::int64_t>(target << 16) >> 16) !=
                            target) {
                raise(kGp, 0);
            }
            const auto base = static_cast<std::uint16_t>(m_cpu.msr.star >> 48);
            m_cpu.seg[kCs] =
                flat(static_cast<std::uint16_t>((to64 ? base + 16 : base) | 3), true, 3, to64);
            m_cpu.seg[kSs] = flat(static_cast<std::uint16_t>((base + 8) | 3), false, 3, false);
            m_cpu.rflags = (gpr(kR11) & 0x3c7fd7) | fl::kFixed1;
            m_cpu.cpl = 3;
            update_mode();
            m_cpu.rip = target;
            return true;
        }
        default:
            return false;
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
