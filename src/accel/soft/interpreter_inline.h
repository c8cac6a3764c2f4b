// The interpreter's hot helpers (operand access, effective addresses, flags conditions),
// inline so every exec_*.cpp file gets them without a call.
#pragma once

#include "accel/soft/interpreter.h"

namespace vireo::soft {

inline std::uint64_t Interpreter::get_gpr(unsigned r, unsigned size, bool hi8) const {
    const std::uint64_t v = m_cpu.gpr[r];
    switch (size) {
        case 1:
            return hi8 ? (v >> 8) & 0xff : v & 0xff;
        case 2:
            return v & 0xffff;
        case 4:
            return v & 0xffffffffULL;
        default:
            return v;
    }
}

inline void Interpreter::set_gpr(unsigned r, unsigned size, std::uint64_t v, bool hi8) {
    std::uint64_t& g = m_cpu.gpr[r];
    switch (size) {
        case 1:
            if (hi8) {
                g = (g & ~0xff00ULL) | ((v & 0xff) << 8);
            } else {
                g = (g & ~0xffULL) | (v & 0xff);
            }
            break;
        case 2:
            g = (g & ~0xffffULL) | (v & 0xffff);
            break;
        case 4:
            g = v & 0xffffffffULL;
            break;  // 32-bit writes zero-extend (SDM Vol. 1 §3.4.1.1)
        default:
            g = v;
            break;
    }
}

inline std::uint64_t Interpreter::ea(const Operand& o, const Insn& in) const {
    std::uint64_t a = static_cast<std::uint64_t>(o.disp);
    if (o.base == kRipBase) {
        a += m_cpu.rip + in.length;
    } else if (o.base != kNoReg) {
        a += m_cpu.gpr[o.base];
    }
    if (o.index != kNoReg) {
        a += m_cpu.gpr[o.index] * o.scale;
    }
    switch (in.addrsize) {
        case 2:
            return a & 0xffff;
        case 4:
            return a & 0xffffffffULL;
        default:
            return a;
    }
}

inline std::uint64_t Interpreter::linear(unsigned seg, std::uint64_t off) const {
    if (long64()) {
        return seg >= kFs ? m_cpu.seg[seg].base + off : off;
    }
    return (m_cpu.seg[seg].base + off) & 0xffffffffULL;
}

inline bool canonical_addr(std::uint64_t a) {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(a << 16) >> 16) == a;
}
inline std::uint64_t Interpreter::mem_read(unsigned seg, std::uint64_t off, unsigned size) {
    const std::uint64_t lin = linear(seg, off);
    if (long64() && !canonical_addr(lin)) [[unlikely]] {
        raise(seg == kSs ? kSsFault : kGp, 0);
    }
    return m_mmu.read(lin, size, user());
}

inline void Interpreter::mem_write(unsigned seg, std::uint64_t off, unsigned size,
                                   std::uint64_t v) {
    const std::uint64_t lin = linear(seg, off);
    if (long64() && !canonical_addr(lin)) [[unlikely]] {
        raise(seg == kSs ? kSsFault : kGp, 0);
    }
    m_mmu.write(lin, size, v, user());
}

inline std::uint64_t Interpreter::rd(const Operand& o, const Insn& in) {
    switch (o.kind) {
        case OpKind::Gpr:
            return get_gpr(o.reg, o.size, o.hi8);
        case OpKind::Imm:
            return o.imm;
        case OpKind::Mem:
            return mem_read(o.seg, ea(o, in), o.size);
        case OpKind::Seg:
            return m_cpu.seg[o.reg].selector;
        default:
            raise(kUd);
    }
}

inline void Interpreter::wr(const Operand& o, const Insn& in, std::uint64_t v) {
    switch (o.kind) {
        case OpKind::Gpr:
            set_gpr(o.reg, o.size, v, o.hi8);
            return;
        case OpKind::Mem:
            mem_write(o.seg, ea(o, in), o.size, v);
            return;
        default:
            raise(kUd);
    }
}

inline std::uint64_t Interpreter::next_rip(const Insn& in) const {
    const std::uint64_t r = m_cpu.rip + in.length;
    if (long64()) {
        return r;
    }
    return m_cpu.seg[kCs].db ? r & 0xffffffffULL : r & 0xffff;
}

inline void Interpreter::jump(std::uint64_t target, unsigned opsize) {
    if (opsize == 2) {
        target &= 0xffff;
    } else if (opsize == 4) {
        target &= 0xffffffffULL;
    }
    if (long64() && !canonical_addr(target)) {
        raise(kGp, 0);
    }
    m_cpu.rip = target;
}

inline bool Interpreter::cond(unsigned cc) const {
    // Condition codes, SDM Vol. 1 Appendix B.
    const std::uint64_t f = m_cpu.rflags;
    bool r;
    switch (cc >> 1) {
        case 0:
            r = (f & fl::OF) != 0;
            break;
        case 1:
            r = (f & fl::CF) != 0;
            break;
        case 2:
            r = (f & fl::ZF) != 0;
            break;
        case 3:
            r = (f & (fl::CF | fl::ZF)) != 0;
            break;
        case 4:
            r = (f & fl::SF) != 0;
            break;
        case 5:
            r = (f & fl::PF) != 0;
            break;
        case 6:
            r = ((f & fl::SF) != 0) != ((f & fl::OF) != 0);
            break;
        default:
            r = (f & fl::ZF) != 0 || (((f & fl::SF) != 0) != ((f & fl::OF) != 0));
            break;
    }
    return (cc & 1) ? !r : r;
}

inline std::uint64_t Interpreter::sp_mask() const {
    if (long64()) {
        return ~0ULL;
    }
    return m_cpu.seg[kSs].db ? 0xffffffffULL : 0xffffULL;
}

}  // namespace vireo::soft
