// Control transfer and the stack (SDM Vol. 2: JMP, Jcc, JCXZ/JECXZ/JRCXZ, LOOP/LOOPcc, CALL,
// RET, PUSH, POP, PUSHF, POPF, LEAVE, ENTER, INT n/INT3/INTO/INT1, IRET, far JMP/CALL/RET).
#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

int jcc_condition(ZydisMnemonic m);

namespace {
std::uint64_t count_mask(unsigned addrsize) {
    return addrsize == 8 ? ~0ULL : addrsize == 4 ? 0xffffffffULL : 0xffffULL;
}
}  // namespace

bool Interpreter::exec_control(const Insn& in) {
    const Operand& d = in.op[0];
    const std::uint64_t next = next_rip(in);
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_JMP:
            if (in.rel_branch) {
                jump(next + d.imm, in.opsize);
            } else if (in.far) {
                // Far jump: ptr16:16/32 or m16:16/32/64 (offset, then selector).
                std::uint64_t off;
                std::uint16_t sel;
                if (d.kind == OpKind::Ptr) {
                    off = d.imm;
                    sel = static_cast<std::uint16_t>(d.disp);
                } else {
                    const std::uint64_t a = ea(d, in);
                    off = mem_read(d.seg, a, in.opsize);
                    sel = static_cast<std::uint16_t>(mem_read(d.seg, a + in.opsize, 2));
                }
                load_code_segment(sel, m_cpu.cpl);
                jump(off, in.opsize);
            } else {
                jump(rd(d, in), in.opsize);
            }
            return true;
        case ZYDIS_MNEMONIC_CALL:
            if (in.rel_branch) {
                push(next, in.opsize);
                jump(next + d.imm, in.opsize);
            } else if (in.far) {
                std::uint64_t off;
                std::uint16_t sel;
                if (d.kind == OpKind::Ptr) {
                    off = d.imm;
                    sel = static_cast<std::uint16_t>(d.disp);
                } else {
                    const std::uint64_t a = ea(d, in);
                    off = mem_read(d.seg, a, in.opsize);
                    sel = static_cast<std::uint16_t>(mem_read(d.seg, a + in.opsize, 2));
                }
                const std::uint16_t old_cs = m_cpu.seg[kCs].selector;
                const std::uint64_t old_rsp = gpr(kRsp);
                push(old_cs, in.opsize);
                push(next, in.opsize);
                try {
                    load_code_segment(sel, m_cpu.cpl);
                } catch (...) {
                    gpr(kRsp) = old_rsp;
                    throw;
                }
                jump(off, in.opsize);
            } else {
                const std::uint64_t target = rd(d, in);
                push(next, in.opsize);
                jump(target, in.opsize);
            }
            return true;
        case ZYDIS_MNEMONIC_RET: {
            if (in.far) {
                far_return(in);
                return true;
            }
            const std::uint64_t target = stack_read(0, in.opsize);
            const std::uint64_t saved = gpr(kRsp);
            static_cast<void>(pop(in.opsize));
            if (in.nops >= 1 && d.kind == OpKind::Imm) {
                const std::uint64_t m = sp_mask();
                gpr(kRsp) = (gpr(kRsp) & ~m) | ((gpr(kRsp) + (d.imm & 0xffff)) & m);
            }
            try {
                jump(target, in.opsize);
            } catch (...) {
                gpr(kRsp) = saved;
                throw;
            }
            return true;
        }
        case ZYDIS_MNEMONIC_JCXZ:
        case ZYDIS_MNEMONIC_JECXZ:
        case ZYDIS_MNEMONIC_JRCXZ:
            m_cpu.rip = next;
            if ((gpr(kRcx) & count_mask(in.addrsize)) == 0) {
                jump(next + d.imm, in.opsize);
            }
            return true;
        case ZYDIS_MNEMONIC_LOOP:
        case ZYDIS_MNEMONIC_LOOPE:
        case ZYDIS_MNEMONIC_LOOPNE: {
            const std::uint64_t m = count_mask(in.addrsize);
            const std::uint64_t c = (gpr(kRcx) - 1) & m;
            bool take = c != 0;
            if (in.mnemonic == ZYDIS_MNEMONIC_LOOPE) {
                take = take && (m_cpu.rflags & fl::ZF) != 0;
            } else if (in.mnemonic == ZYDIS_MNEMONIC_LOOPNE) {
                take = take && (m_cpu.rflags & fl::ZF) == 0;
            }
            const std::uint64_t old_rcx = gpr(kRcx);
            gpr(kRcx) = (gpr(kRcx) & ~m) | c;
            m_cpu.rip = next;
            if (take) {
                try {
                    jump(next + d.imm, in.opsize);
                } catch (...) {
                    gpr(kRcx) = old_rcx;
                    throw;
                }
            }
            return true;
        }
        case ZYDIS_MNEMONIC_PUSH:
            if (d.kind == OpKind::Seg) {
                push(m_cpu.seg[d.reg].selector, in.opsize);
            } else {
                push(rd(d, in), in.opsize);
            }
            break;
        case ZYDIS_MNEMONIC_POP: {
            const std::uint64_t v = stack_read(0, in.opsize);
            if (d.kind == OpKind::Seg) {
                load_segment(d.reg, static_cast<std::uint16_t>(v));
                static_cast<void>(pop(in.opsize));
                if (d.reg == kSs) {
                    m_cpu.int_shadow = true;  // POP SS holds off interrupts for one instruction
                }
            } else if (d.kind == OpKind::Gpr) {
                static_cast<void>(pop(in.opsize));
                wr(d, in, v);
            } else {
                // POP m: the address uses RSP after the pop (SDM Vol. 2, POP).
                const std::uint64_t saved = gpr(kRsp);
                static_cast<void>(pop(in.opsize));
                try {
                    wr(d, in, v);
                } catch (...) {
                    gpr(kRsp) = saved;
                    throw;
                }
            }
            break;
        }
        case ZYDIS_MNEMONIC_PUSHF:
        case ZYDIS_MNEMONIC_PUSHFD:
        case ZYDIS_MNEMONIC_PUSHFQ:
            push(m_cpu.rflags & ~(fl::VM | fl::RF), in.opsize);
            break;
        case ZYDIS_MNEMONIC_POPF:
        case ZYDIS_MNEMONIC_POPFD:
        case ZYDIS_MNEMONIC_POPFQ: {
            // SDM Vol. 2, POPF: IOPL only at CPL0; IF only when CPL <= IOPL.
            const std::uint64_t v = stack_read(0, in.opsize);
            static_cast<void>(pop(in.opsize));
            std::uint64_t mask = fl::kWritable;
            if (m_mode != CpuMode::Real16) {
                if (m_cpu.cpl > 0) {
                    mask &= ~fl::IOPL;
                }
                if (m_cpu.cpl > ((m_cpu.rflags & fl::IOPL) >> 12)) {
                    mask &= ~fl::IF;
                }
            }
            mask &= ~fl::RF;
            if (in.opsize == 2) {
                mask &= 0xffff;
            }
            m_cpu.rflags = (m_cpu.rflags & ~mask) | (v & mask) | fl::kFixed1;
            interrupts_enabled();
            break;
        }
        case ZYDIS_MNEMONIC_LEAVE: {
            const std::uint64_t m = sp_mask();
            const std::uint64_t bp = gpr(kRbp);
            const std::uint64_t v = mem_read(kSs, bp & m, in.opsize);
            gpr(kRsp) = (gpr(kRsp) & ~m) | ((bp + in.opsize) & m);
            set_gpr(kRbp, in.opsize, v);
            break;
        }
        case ZYDIS_MNEMONIC_ENTER: {
            if ((in.op[1].imm & 31) != 0) {
                raise(kUd);  // nesting levels > 0 are not implemented
            }
            const std::uint64_t saved = gpr(kRsp);
            push(gpr(kRbp), in.opsize);
            const std::uint64_t frame = gpr(kRsp);
            const std::uint64_t m = sp_mask();
            gpr(kRsp) = (gpr(kRsp) & ~m) | ((gpr(kRsp) - (d.imm & 0xffff)) & m);
            static_cast<void>(saved);
            set_gpr(kRbp, in.opsize, frame);
            break;
        }
        case ZYDIS_MNEMONIC_INT:
            m_fault_depth = 0;
            deliver(static_cast<std::uint8_t>(d.imm), false, 0, true, next);
            return true;
        case ZYDIS_MNEMONIC_INT3:
            m_fault_depth = 0;
            deliver(kBp, false, 0, true, next);
            return true;
        case ZYDIS_MNEMONIC_INT1:
            m_fault_depth = 0;
            deliver(kDb, false, 0, true, next);
            return true;
        case ZYDIS_MNEMONIC_INTO:
            if (long64()) {
                raise(kUd);
            }
            if (m_cpu.rflags & fl::OF) {
                m_fault_depth = 0;
                deliver(kOf, false, 0, true, next);
                return true;
            }
            break;
        case ZYDIS_MNEMONIC_IRET:
        case ZYDIS_MNEMONIC_IRETD:
        case ZYDIS_MNEMONIC_IRETQ:
            do_iret(in);
            return true;
        default: {
            const int cc = in.cc;
            if (cc < 0 || !in.rel_branch) {
                return false;
            }
            if (cond(static_cast<unsigned>(cc))) {
                jump(next + d.imm, in.opsize);
            } else {
                m_cpu.rip = next;
            }
            return true;
        }
    }
    m_cpu.rip = next;
    return true;
}

}  // namespace vireo::soft
