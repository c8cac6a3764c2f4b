// Interrupt and exception delivery in 32-bit protected mode (SDM Vol. 3 §6.12.1): an 8-byte
// interrupt or trap gate to a code segment of the same or a more privileged level; going inward
// the handler runs on the stack the 32-bit TSS names for the new CPL (SS0:ESP0 at offsets 8 and
// 4, SS1:ESP1 at 16 and 12, SS2:ESP2 at 24 and 20; SDM Vol. 3 §8.2.1), and the old SS:ESP are
// pushed first. Task gates and 16-bit gates are not supported (#GP).
#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

void Interpreter::deliver_protected32(std::uint8_t vector, bool has_error, std::uint32_t error,
                                      bool software, std::uint64_t return_rip) {
    const std::uint32_t ext = software ? 0 : 1;
    const std::uint32_t idt_error = vector * 8u + 2 + ext;
    if (vector * 8u + 7 > m_cpu.idt.limit) {
        raise(kGp, idt_error);
    }
    const std::uint64_t g = m_mmu.read((m_cpu.idt.base + vector * 8u) & 0xffffffff, 8, false);
    const std::uint8_t type = (g >> 40) & 0xf;
    if (type != 0xe && type != 0xf) {
        raise(kGp, idt_error);
    }
    if (software && ((g >> 45) & 3) < m_cpu.cpl) {
        raise(kGp, idt_error);
    }
    if (((g >> 47) & 1) == 0) {
        raise(kNp, idt_error);
    }
    const auto sel = static_cast<std::uint16_t>(g >> 16);
    if ((sel & 0xfffc) == 0) {
        raise(kGp, ext);
    }
    const std::uint64_t d = read_descriptor(sel);
    if (((d >> 44) & 1) == 0 || ((d >> 43) & 1) == 0) {
        raise(kGp, (sel & 0xfffc) + ext);  // not a code segment
    }
    if (((d >> 47) & 1) == 0) {
        raise(kNp, (sel & 0xfffc) + ext);
    }
    const bool conforming = ((d >> 42) & 1) != 0;
    const std::uint8_t new_cpl = conforming ? m_cpu.cpl : static_cast<std::uint8_t>((d >> 45) & 3);
    if (new_cpl > m_cpu.cpl) {
        raise(kGp, (sel & 0xfffc) + ext);
    }
    SegmentCache ss = m_cpu.seg[kSs];
    std::uint64_t esp = m_cpu.gpr[kRsp] & (ss.db ? 0xffffffffULL : 0xffffULL);
    const bool inward = new_cpl < m_cpu.cpl;
    if (inward) {
        const std::uint64_t off = 4 + 8u * new_cpl;
        if (off + 5 > m_cpu.tr.limit) {
            raise(kTs, (m_cpu.tr.selector & 0xfffc) + ext);
        }
        esp = m_mmu.read((m_cpu.tr.base + off) & 0xffffffff, 4, false);
        const auto ss_sel = static_cast<std::uint16_t>(
            m_mmu.read((m_cpu.tr.base + off + 4) & 0xffffffff, 2, false));
        if ((ss_sel & 0xfffc) == 0 || (ss_sel & 3) != new_cpl) {
            raise(kTs, (ss_sel & 0xfffc) + ext);
        }
        const std::uint64_t sd = read_descriptor(ss_sel);
        // A writable data segment with DPL = new CPL (SDM Vol. 3 §6.12.1.1).
        if (((sd >> 44) & 1) == 0 || ((sd >> 43) & 1) != 0 || ((sd >> 41) & 1) == 0 ||
            ((sd >> 45) & 3) != new_cpl) {
            raise(kTs, (ss_sel & 0xfffc) + ext);
        }
        if (((sd >> 47) & 1) == 0) {
            raise(kSsFault, (ss_sel & 0xfffc) + ext);
        }
        set_segment_from_descriptor(ss, ss_sel, sd);
    }
    // The frame, from the top: [SS, ESP,] EFLAGS, CS, EIP, [error code]; written before any
    // register changes, as supervisor accesses when the new CPL is 0-2.
    std::uint32_t frame[6];
    unsigned n = 0;
    if (inward) {
        frame[n++] = m_cpu.seg[kSs].selector;
        frame[n++] = static_cast<std::uint32_t>(m_cpu.gpr[kRsp]);
    }
    frame[n++] = static_cast<std::uint32_t>(m_cpu.rflags);
    frame[n++] = m_cpu.seg[kCs].selector;
    frame[n++] = static_cast<std::uint32_t>(return_rip);
    if (has_error) {
        frame[n++] = error;
    }
    const std::uint64_t mask = ss.db ? 0xffffffffULL : 0xffffULL;
    for (unsigned i = 0; i < n; ++i) {
        const std::uint64_t at = (esp - 4 * (i + 1)) & mask;
        m_mmu.write((ss.base + at) & 0xffffffff, 4, frame[i], new_cpl == 3);
    }
    load_code_segment(sel, new_cpl);
    if (inward) {
        m_cpu.seg[kSs] = ss;
    }
    m_cpu.gpr[kRsp] = (m_cpu.gpr[kRsp] & ~mask) | ((esp - 4 * n) & mask);
    m_cpu.rip = (g & 0xffff) | ((g >> 32) & 0xffff0000);
    m_cpu.rflags &= ~(fl::TF | fl::NT | fl::RF | fl::VM);
    if (type == 0xe) {
        m_cpu.rflags &= ~fl::IF;
    }
}

}  // namespace vireo::soft
