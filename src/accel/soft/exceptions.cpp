// Exception and interrupt delivery through the IVT/IDT, IRET, far returns and segment loads
// (SDM Vol. 3 §6.10-6.15 for delivery, §6.14 for 64-bit mode, §5.5-5.8 for privilege checks).
#include <fmt/format.h>

#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

namespace {

// Exception classes for the double-fault rule (SDM Vol. 3 §6.15, Table 6-4/6-5).
bool contributory(std::uint8_t v) {
    return v == kDe || v == kTs || v == kNp || v == kSsFault || v == kGp;
}

std::uint64_t gate_offset(std::uint64_t lo, std::uint64_t hi) {
    return (lo & 0xffff) | (((lo >> 48) & 0xffff) << 16) | ((hi & 0xffffffffULL) << 32);
}

}  // namespace

std::uint64_t Interpreter::read_descriptor(std::uint16_t selector, std::uint64_t* high) {
    const bool ldt = (selector & 4) != 0;
    const DescriptorTable t =
        ldt ? DescriptorTable{m_cpu.ldt.base, static_cast<std::uint16_t>(m_cpu.ldt.limit)}
            : m_cpu.gdt;
    const std::uint64_t index = selector & 0xfff8;
    const std::uint64_t need = index + (high ? 15 : 7);
    if ((ldt && m_cpu.ldt.unusable) || need > (ldt ? m_cpu.ldt.limit : t.limit)) {
        raise(kGp, selector & 0xfffc);
    }
    // Descriptor-table reads are supervisor accesses whatever the CPL (SDM Vol. 3 §4.6).
    const std::uint64_t base = t.base + index;
    const std::uint64_t lo = m_mmu.read(long64() ? base : base & 0xffffffffULL, 8, false);
    if (high) {
        *high = m_mmu.read(base + 8, 8, false);
    }
    return lo;
}

void Interpreter::set_segment_from_descriptor(SegmentCache& s, std::uint16_t selector,
                                              std::uint64_t d) {
    s.selector = selector;
    s.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
    std::uint32_t limit = static_cast<std::uint32_t>((d & 0xffff) | (((d >> 48) & 0xf) << 16));
    s.g = (d >> 55) & 1;
    if (s.g) {
        limit = (limit << 12) | 0xfff;
    }
    s.limit = limit;
    s.type = (d >> 40) & 0xf;
    s.s = (d >> 44) & 1;
    s.dpl = (d >> 45) & 3;
    s.present = (d >> 47) & 1;
    s.avl = (d >> 52) & 1;
    s.l = (d >> 53) & 1;
    s.db = (d >> 54) & 1;
    s.unusable = 0;
}

void Interpreter::load_segment(unsigned sreg, std::uint16_t selector) {
    SegmentCache& s = m_cpu.seg[sreg];
    if (m_mode == CpuMode::Real16 || (m_cpu.rflags & fl::VM)) {
        s.selector = selector;
        s.base = static_cast<std::uint64_t>(selector) << 4;
        return;
    }
    const std::uint8_t rpl = selector & 3;
    if ((selector & 0xfffc) == 0) {
        // A null selector: allowed for data segments, and for SS only in 64-bit mode at
        // CPL < 3 with RPL == CPL (SDM Vol. 3 §5.4.1.1).
        if (sreg == kSs && !(long64() && m_cpu.cpl < 3 && rpl == m_cpu.cpl)) {
            raise(kGp, 0);
        }
        s.selector = selector;
        s.unusable = 1;
        s.present = 0;
        if (sreg != kFs && sreg != kGs) {
            s.base = 0;
        }
        if (sreg == kSs) {
            s.dpl = m_cpu.cpl;
        }
        return;
    }
    const std::uint64_t d = read_descriptor(selector);
    const std::uint8_t type = (d >> 40) & 0xf;
    const std::uint8_t dpl = (d >> 45) & 3;
    const bool code = (type & 8) != 0;
    const bool sbit = ((d >> 44) & 1) != 0;
    if (!sbit) {
        raise(kGp, selector & 0xfffc);
    }
    if (sreg == kSs) {
        // A writable data segment with RPL == DPL == CPL.
        if (code || (type & 2) == 0 || rpl != m_cpu.cpl || dpl != m_cpu.cpl) {
            raise(kGp, selector & 0xfffc);
        }
        if (((d >> 47) & 1) == 0) {
            raise(kSsFault, selector & 0xfffc);
        }
    } else {
        // Data or readable code; non-conforming needs DPL >= max(CPL, RPL).
        if (code && (type & 2) == 0) {
            raise(kGp, selector & 0xfffc);
        }
        const bool conforming = code && (type & 4) != 0;
        if (!conforming && dpl < std::max(m_cpu.cpl, rpl)) {
            raise(kGp, selector & 0xfffc);
        }
        if (((d >> 47) & 1) == 0) {
            raise(kNp, selector & 0xfffc);
        }
    }
    set_segment_from_descriptor(s, selector, d);
}

void Interpreter::load_code_segment(std::uint16_t selector, std::uint8_t new_cpl) {
    SegmentCache& cs = m_cpu.seg[kCs];
    if (m_mode == CpuMode::Real16) {
        cs.selector = selector;
        cs.base = static_cast<std::uint64_t>(selector) << 4;
        invalidate_fetch();
        return;
    }
    if ((selector & 0xfffc) == 0) {
        raise(kGp, 0);
    }
    const std::uint64_t d = read_descriptor(selector);
    const std::uint8_t type = (d >> 40) & 0xf;
    if (((d >> 44) & 1) == 0 || (type & 8) == 0) {
        raise(kGp, selector & 0xfffc);  // not a code segment (call gates are not supported)
    }
    const std::uint8_t dpl = (d >> 45) & 3;
    const bool conforming = (type & 4) != 0;
    if ((!conforming && dpl != new_cpl) || (conforming && dpl > new_cpl)) {
        raise(kGp, selector & 0xfffc);
    }
    if (((d >> 47) & 1) == 0) {
        raise(kNp, selector & 0xfffc);
    }
    if (((d >> 53) & 1) && ((d >> 54) & 1)) {
        raise(kGp, selector & 0xfffc);  // L and D both set is reserved
    }
    set_segment_from_descriptor(cs, static_cast<std::uint16_t>((selector & 0xfffc) | new_cpl), d);
    m_cpu.cpl = new_cpl;
    update_mode();
}

void Interpreter::deliver(std::uint8_t vector, bool has_error, std::uint32_t error, bool software,
                          std::uint64_t return_rip) {
    if (++m_fault_depth > 3) {
        throw TripleFault{};
    }
    const std::uint32_t ext = software ? 0 : 1;
    const std::uint32_t idt_error = vector * 8u + 2 + ext;
    const std::uint64_t old_rflags = m_cpu.rflags;
    const std::uint16_t old_cs = m_cpu.seg[kCs].selector;
    const std::uint8_t old_cpl = m_cpu.cpl;
    try {
        if (m_mode == CpuMode::Real16) {
            // Real mode: the IVT, 4 bytes per vector (SDM Vol. 3 §20.1.4).
            if (vector * 4u + 3 > m_cpu.idt.limit) {
                raise(kGp, 0);
            }
            const std::uint64_t e =
                m_mmu.read((m_cpu.idt.base + vector * 4u) & 0xffffffff, 4, false);
            push(old_rflags & 0xffff, 2);
            push(old_cs, 2);
            push(return_rip & 0xffff, 2);
            m_cpu.rflags &= ~(fl::IF | fl::TF | fl::AC | fl::RF);
            load_code_segment(static_cast<std::uint16_t>(e >> 16), 0);
            m_cpu.rip = e & 0xffff;
        } else if ((m_cpu.efer & cr::kEferLma) != 0) {
            if (vector * 16u + 15 > m_cpu.idt.limit) {
                raise(kGp, idt_error);
            }
            const std::uint64_t lo = m_mmu.read(m_cpu.idt.base + vector * 16u, 8, false);
            const std::uint64_t hi = m_mmu.read(m_cpu.idt.base + vector * 16u + 8, 8, false);
            const std::uint8_t type = (lo >> 40) & 0xf;
            const std::uint8_t gate_dpl = (lo >> 45) & 3;
            if (type != 0xe && type != 0xf) {
                raise(kGp, idt_error);
            }
            if (software && gate_dpl < m_cpu.cpl) {
                raise(kGp, idt_error);
            }
            if (((lo >> 47) & 1) == 0) {
                raise(kNp, idt_error);
            }
            const auto sel = static_cast<std::uint16_t>(lo >> 16);
            const unsigned ist = (lo >> 32) & 7;
            if ((sel & 0xfffc) == 0) {
                raise(kGp, ext);
            }
            const std::uint64_t d = read_descriptor(sel);
            if (((d >> 44) & 1) == 0 || ((d >> 43) & 1) == 0 || ((d >> 53) & 1) == 0) {
                raise(kGp, (sel & 0xfffc) + ext);  // must be a 64-bit code segment
            }
            if (((d >> 47) & 1) == 0) {
                raise(kNp, (sel & 0xfffc) + ext);
            }
            const std::uint8_t dpl = (d >> 45) & 3;
            const bool conforming = ((d >> 42) & 1) != 0;
            const std::uint8_t new_cpl = conforming ? m_cpu.cpl : dpl;
            if (new_cpl > m_cpu.cpl) {
                raise(kGp, (sel & 0xfffc) + ext);
            }
            std::uint64_t rsp = m_cpu.gpr[kRsp];
            const bool switch_stack = new_cpl < m_cpu.cpl;
            if (ist != 0 || switch_stack) {
                // 64-bit TSS: RSP0-2 at 4, 12, 20; IST1-7 at 36 + 8*(n-1) (SDM Vol. 3 §8.7).
                const std::uint64_t off = ist != 0 ? 36 + 8 * (ist - 1) : 4 + 8u * new_cpl;
                if (off + 7 > m_cpu.tr.limit) {
                    raise(kTs, (m_cpu.tr.selector & 0xfffc) + ext);
                }
                rsp = m_mmu.read(m_cpu.tr.base + off, 8, false);
            }
            rsp &= ~0xfULL;  // the new frame is 16-byte aligned (SDM Vol. 3 §6.14.2)
            // The frame, from the top: SS, RSP, RFLAGS, CS, RIP, [error code].
            const std::uint64_t frame[6] = {
                m_cpu.seg[kSs].selector, m_cpu.gpr[kRsp], old_rflags, old_cs, return_rip, error};
            const unsigned n = has_error ? 6 : 5;
            const bool frame_user = new_cpl == 3;
            for (unsigned i = 0; i < n; ++i) {
                m_mmu.write(rsp - 8 * (i + 1), 8, frame[i], frame_user);
            }
            const std::uint64_t new_rsp = rsp - 8 * n;
            load_code_segment(static_cast<std::uint16_t>((sel & 0xfffc) | new_cpl), new_cpl);
            if (switch_stack) {
                SegmentCache& ss = m_cpu.seg[kSs];
                ss = SegmentCache{};
                ss.selector = new_cpl;  // a null SS with RPL = new CPL
                ss.unusable = 1;
                ss.dpl = new_cpl;
            }
            m_cpu.gpr[kRsp] = new_rsp;
            m_cpu.rip = gate_offset(lo, hi);
            m_cpu.rflags &= ~(fl::TF | fl::NT | fl::RF | fl::VM);
            if (type == 0xe) {
                m_cpu.rflags &= ~fl::IF;
            }
        } else {
            deliver_protected32(vector, has_error, error, software, return_rip);
        }
    } catch (const GuestFault& f) {
        m_cpu.rflags = old_rflags;
        m_cpu.cpl = old_cpl;
        if (vector == kDf) {
            throw TripleFault{};
        }
        const bool first_pf = vector == kPf;
        if ((contributory(vector) && contributory(f.vector)) ||
            (first_pf && (contributory(f.vector) || f.vector == kPf))) {
            deliver(kDf, true, 0, false, return_rip);
        } else {
            deliver(f.vector, f.has_error, f.error, false, return_rip);
        }
        return;
    }
    m_cpu.halted = false;
    m_cpu.int_shadow = false;
    static_cast<void>(old_cpl);
}

void Interpreter::do_iret(const Insn& in) {
    const unsigned sz = in.opsize;
    if (m_mode == CpuMode::Real16) {
        const std::uint64_t ip = stack_read(0, sz), cs = stack_read(sz, sz),
                            fl_ = stack_read(2 * sz, sz);
        const std::uint64_t mask = (sz == 2 ? 0xffffULL : fl::kWritable) & fl::kWritable;
        for (int i = 0; i < 3; ++i) {
            static_cast<void>(pop(sz));
        }
        load_code_segment(static_cast<std::uint16_t>(cs), 0);
        m_cpu.rip = ip & (sz == 2 ? 0xffff : 0xffffffff);
        m_cpu.rflags = (m_cpu.rflags & ~mask) | (fl_ & mask) | fl::kFixed1;
        interrupts_enabled();
        return;
    }
    if ((m_cpu.rflags & fl::NT) != 0 && !long64()) {
        raise(kGp, 0);  // task return: no hardware task switching
    }
    const std::uint64_t rip = stack_read(0, sz);
    const auto cs = static_cast<std::uint16_t>(stack_read(sz, sz));
    const std::uint64_t rflags = stack_read(2 * sz, sz);
    const std::uint8_t new_cpl = cs & 3;
    if (new_cpl < m_cpu.cpl) {
        raise(kGp, cs & 0xfffc);
    }
    const bool pop_stack = long64() || new_cpl > m_cpu.cpl;
    std::uint64_t rsp = 0;
    std::uint16_t ss = 0;
    if (pop_stack) {
        rsp = stack_read(3 * sz, sz);
        ss = static_cast<std::uint16_t>(stack_read(4 * sz, sz));
    }
    // RFLAGS: IOPL only at CPL0, IF only when CPL <= IOPL (SDM Vol. 2, IRET).
    std::uint64_t mask = fl::kWritable;
    if (m_cpu.cpl > 0) {
        mask &= ~fl::IOPL;
    }
    if (m_cpu.cpl > ((m_cpu.rflags & fl::IOPL) >> 12)) {
        mask &= ~fl::IF;
    }
    if (sz == 2) {
        mask &= 0xffff;
    }
    const CpuState saved = m_cpu;
    try {
        load_code_segment(cs, new_cpl);
        if (pop_stack) {
            if ((ss & 0xfffc) == 0 && long64() && new_cpl < 3) {
                m_cpu.seg[kSs] = SegmentCache{};
                m_cpu.seg[kSs].selector = ss;
                m_cpu.seg[kSs].unusable = 1;
                m_cpu.seg[kSs].dpl = new_cpl;
            } else {
                load_segment(kSs, ss);
            }
            m_cpu.gpr[kRsp] = sz == 4 && !long64() ? rsp & 0xffffffff : rsp;
        } else {
            const std::uint64_t m = sp_mask();
            m_cpu.gpr[kRsp] = (m_cpu.gpr[kRsp] & ~m) | ((m_cpu.gpr[kRsp] + 3 * sz) & m);
        }
        m_cpu.rflags = (m_cpu.rflags & ~mask) | (rflags & mask) | fl::kFixed1;
        jump(rip, long64() ? 8 : sz);
    } catch (...) {
        m_cpu = saved;
        update_mode();
        throw;
    }
    m_cpu.int_shadow = false;
    interrupts_enabled();
}

void Interpreter::far_return(const Insn& in) {
    const unsigned sz = in.opsize;
    const std::uint64_t rip = stack_read(0, sz);
    const auto cs = static_cast<std::uint16_t>(stack_read(sz, sz));
    const std::uint64_t extra =
        (in.nops >= 1 && in.op[0].kind == OpKind::Imm) ? (in.op[0].imm & 0xffff) : 0;
    const std::uint8_t new_cpl = m_mode == CpuMode::Real16 ? 0 : (cs & 3);
    if (new_cpl < m_cpu.cpl) {
        raise(kGp, cs & 0xfffc);
    }
    const CpuState saved = m_cpu;
    try {
        if (new_cpl > m_cpu.cpl) {
            const std::uint64_t rsp = stack_read(2 * sz + extra, sz);
            const auto ss = static_cast<std::uint16_t>(stack_read(3 * sz + extra, sz));
            load_code_segment(cs, new_cpl);
            load_segment(kSs, ss);
            m_cpu.gpr[kRsp] = rsp + extra;
        } else {
            load_code_segment(cs, new_cpl);
            const std::uint64_t m = sp_mask();
            m_cpu.gpr[kRsp] = (m_cpu.gpr[kRsp] & ~m) | ((m_cpu.gpr[kRsp] + 2 * sz + extra) & m);
        }
        jump(rip, sz);
    } catch (...) {
        m_cpu = saved;
        update_mode();
        throw;
    }
}

}  // namespace vireo::soft
