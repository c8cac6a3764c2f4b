// Data movement and flag-register instructions (SDM Vol. 2: MOV, MOVZX, MOVSX, MOVSXD, LEA,
// XCHG, CMPXCHG, CMPXCHG8B/16B, XADD, CMOVcc, SETcc, CBW/CWDE/CDQE, CWD/CDQ/CQO, BSWAP,
// LAHF/SAHF, CLC/STC/CMC/CLD/STD) and the no-operation family.
#include "accel/soft/alu.h"
#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

namespace {

// Condition code (0-15, SDM Vol. 1 Appendix B) of a Jcc/CMOVcc/SETcc mnemonic, or -1.
int cc_of(ZydisMnemonic m) {
    switch (m) {
        case ZYDIS_MNEMONIC_JO:
        case ZYDIS_MNEMONIC_CMOVO:
        case ZYDIS_MNEMONIC_SETO:
            return 0;
        case ZYDIS_MNEMONIC_JNO:
        case ZYDIS_MNEMONIC_CMOVNO:
        case ZYDIS_MNEMONIC_SETNO:
            return 1;
        case ZYDIS_MNEMONIC_JB:
        case ZYDIS_MNEMONIC_CMOVB:
        case ZYDIS_MNEMONIC_SETB:
            return 2;
        case ZYDIS_MNEMONIC_JNB:
        case ZYDIS_MNEMONIC_CMOVNB:
        case ZYDIS_MNEMONIC_SETNB:
            return 3;
        case ZYDIS_MNEMONIC_JZ:
        case ZYDIS_MNEMONIC_CMOVZ:
        case ZYDIS_MNEMONIC_SETZ:
            return 4;
        case ZYDIS_MNEMONIC_JNZ:
        case ZYDIS_MNEMONIC_CMOVNZ:
        case ZYDIS_MNEMONIC_SETNZ:
            return 5;
        case ZYDIS_MNEMONIC_JBE:
        case ZYDIS_MNEMONIC_CMOVBE:
        case ZYDIS_MNEMONIC_SETBE:
            return 6;
        case ZYDIS_MNEMONIC_JNBE:
        case ZYDIS_MNEMONIC_CMOVNBE:
        case ZYDIS_MNEMONIC_SETNBE:
            return 7;
        case ZYDIS_MNEMONIC_JS:
        case ZYDIS_MNEMONIC_CMOVS:
        case ZYDIS_MNEMONIC_SETS:
            return 8;
        case ZYDIS_MNEMONIC_JNS:
        case ZYDIS_MNEMONIC_CMOVNS:
        case ZYDIS_MNEMONIC_SETNS:
            return 9;
        case ZYDIS_MNEMONIC_JP:
        case ZYDIS_MNEMONIC_CMOVP:
        case ZYDIS_MNEMONIC_SETP:
            return 10;
        case ZYDIS_MNEMONIC_JNP:
        case ZYDIS_MNEMONIC_CMOVNP:
        case ZYDIS_MNEMONIC_SETNP:
            return 11;
        case ZYDIS_MNEMONIC_JL:
        case ZYDIS_MNEMONIC_CMOVL:
        case ZYDIS_MNEMONIC_SETL:
            return 12;
        case ZYDIS_MNEMONIC_JNL:
        case ZYDIS_MNEMONIC_CMOVNL:
        case ZYDIS_MNEMONIC_SETNL:
            return 13;
        case ZYDIS_MNEMONIC_JLE:
        case ZYDIS_MNEMONIC_CMOVLE:
        case ZYDIS_MNEMONIC_SETLE:
            return 14;
        case ZYDIS_MNEMONIC_JNLE:
        case ZYDIS_MNEMONIC_CMOVNLE:
        case ZYDIS_MNEMONIC_SETNLE:
            return 15;
        default:
            return -1;
    }
}

std::uint64_t sext(std::uint64_t v, unsigned size) {
    switch (size) {
        case 1:
            return static_cast<std::uint64_t>(
                static_cast<std::int64_t>(static_cast<std::int8_t>(v)));
        case 2:
            return static_cast<std::uint64_t>(
                static_cast<std::int64_t>(static_cast<std::int16_t>(v)));
        case 4:
            return static_cast<std::uint64_t>(
                static_cast<std::int64_t>(static_cast<std::int32_t>(v)));
        default:
            return v;
    }
}

std::uint64_t mask_of(unsigned size) {
    return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

}  // namespace

int jcc_condition(ZydisMnemonic m) {
    return cc_of(m);
}

bool Interpreter::exec_move(const Insn& in) {
    const Operand& d = in.op[0];
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_MOV:
            if (d.kind == OpKind::Seg || in.op[1].kind == OpKind::Seg || d.kind == OpKind::Cr ||
                in.op[1].kind == OpKind::Cr || d.kind == OpKind::Dr ||
                in.op[1].kind == OpKind::Dr) {
                return false;  // exec_system
            }
            wr(d, in, rd(in.op[1], in));
            break;
        case ZYDIS_MNEMONIC_MOVZX:
            wr(d, in, rd(in.op[1], in));
            break;
        case ZYDIS_MNEMONIC_MOVSX:
        case ZYDIS_MNEMONIC_MOVSXD:
            wr(d, in, sext(rd(in.op[1], in), in.op[1].size));
            break;
        case ZYDIS_MNEMONIC_LEA:
            wr(d, in, ea(in.op[1], in));
            break;
        case ZYDIS_MNEMONIC_XCHG: {
            const Operand& s = in.op[1];
            const Operand& m = d.kind == OpKind::Mem ? d : s;
            const Operand& r = d.kind == OpKind::Mem ? s : d;
            if (m.kind == OpKind::Mem) {
                // XCHG with memory is locked whether or not LOCK is given (SDM Vol. 2, XCHG).
                const std::uint64_t off = ea(m, in);
                const std::uint64_t nv = rd(r, in);
                std::uint64_t old;
                if (std::uint8_t* p = m_mmu.rmw_pointer(linear(m.seg, off), m.size, user())) {
                    switch (m.size) {
                        case 1:
                            old = __atomic_exchange_n(p, static_cast<std::uint8_t>(nv),
                                                      __ATOMIC_SEQ_CST);
                            break;
                        case 2:
                            old = __atomic_exchange_n(reinterpret_cast<std::uint16_t*>(p),
                                                      static_cast<std::uint16_t>(nv),
                                                      __ATOMIC_SEQ_CST);
                            break;
                        case 4:
                            old = __atomic_exchange_n(reinterpret_cast<std::uint32_t*>(p),
                                                      static_cast<std::uint32_t>(nv),
                                                      __ATOMIC_SEQ_CST);
                            break;
                        default:
                            old = __atomic_exchange_n(reinterpret_cast<std::uint64_t*>(p), nv,
                                                      __ATOMIC_SEQ_CST);
                            break;
                    }
                } else {
                    old = mem_read(m.seg, off, m.size);
                    mem_write(m.seg, off, m.size, nv);
                }
                wr(r, in, old);
            } else {
                const std::uint64_t a = rd(d, in), b = rd(s, in);
                wr(d, in, b);
                wr(s, in, a);
            }
            break;
        }
        case ZYDIS_MNEMONIC_CMPXCHG: {
            // Compare the accumulator with the destination (SDM Vol. 2, CMPXCHG).
            const unsigned size = d.size;
            const std::uint64_t acc = get_gpr(kRax, size);
            const std::uint64_t src = rd(in.op[1], in);
            std::uint64_t cur;
            bool equal;
            std::uint8_t* p = nullptr;
            std::uint64_t off = 0;
            if (d.kind == OpKind::Mem) {
                off = ea(d, in);
                if (in.lock) {
                    p = m_mmu.rmw_pointer(linear(d.seg, off), size, user());
                }
            }
            if (p) {
                cur = acc;
                switch (size) {
                    case 1: {
                        std::uint8_t e = static_cast<std::uint8_t>(acc);
                        equal =
                            __atomic_compare_exchange_n(p, &e, static_cast<std::uint8_t>(src),
                                                        false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
                        cur = e;
                        break;
                    }
                    case 2: {
                        std::uint16_t e = static_cast<std::uint16_t>(acc);
                        equal = __atomic_compare_exchange_n(reinterpret_cast<std::uint16_t*>(p), &e,
                                                            static_cast<std::uint16_t>(src), false,
                                                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
                        cur = e;
                        break;
                    }
                    case 4: {
                        std::uint32_t e = static_cast<std::uint32_t>(acc);
                        equal = __atomic_compare_exchange_n(reinterpret_cast<std::uint32_t*>(p), &e,
                                                            static_cast<std::uint32_t>(src), false,
                                                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
                        cur = e;
                        break;
                    }
                    default: {
                        std::uint64_t e = acc;
                        equal = __atomic_compare_exchange_n(reinterpret_cast<std::uint64_t*>(p), &e,
                                                            src, false, __ATOMIC_SEQ_CST,
                                                            __ATOMIC_SEQ_CST);
                        cur = e;
                        break;
                    }
                }
            } else {
                cur = rd(d, in);
                equal = cur == acc;
                // A memory destination is written either way (its own value back on a mismatch,
                // SDM Vol. 2 CMPXCHG); a register one only on a match (AMD: no zero-extension of
                // an unmatched 32-bit register, which the differential test checks).
                if (equal || d.kind == OpKind::Mem) {
                    wr(d, in, equal ? src : cur);
                }
            }
            std::uint64_t flags;
            switch (size) {
                case 1: {
                    auto a = static_cast<std::uint8_t>(acc);
                    flags = alu::sub(a, static_cast<std::uint8_t>(cur));
                    break;
                }
                case 2: {
                    auto a = static_cast<std::uint16_t>(acc);
                    flags = alu::sub(a, static_cast<std::uint16_t>(cur));
                    break;
                }
                case 4: {
                    auto a = static_cast<std::uint32_t>(acc);
                    flags = alu::sub(a, static_cast<std::uint32_t>(cur));
                    break;
                }
                default: {
                    auto a = acc;
                    flags = alu::sub(a, cur);
                    break;
                }
            }
            if (!equal) {
                set_gpr(kRax, size, cur);
            }
            alu::merge(m_cpu.rflags, flags, fl::kArith);
            break;
        }
        case ZYDIS_MNEMONIC_CMPXCHG8B:
        case ZYDIS_MNEMONIC_CMPXCHG16B: {
            const bool wide = in.mnemonic == ZYDIS_MNEMONIC_CMPXCHG16B;
            const unsigned half = wide ? 8 : 4;
            const std::uint64_t off = ea(d, in);
            const std::uint64_t lin = linear(d.seg, off);
            if (wide && (lin & 15) != 0) {
                raise(kGp, 0);  // CMPXCHG16B needs a 16-byte aligned operand
            }
            const std::uint64_t m = mask_of(half);
            std::uint64_t exp_lo = gpr(kRax) & m, exp_hi = gpr(kRdx) & m;
            const std::uint64_t new_lo = gpr(kRbx) & m, new_hi = gpr(kRcx) & m;
            bool equal;
            std::uint64_t cur_lo, cur_hi;
            std::uint8_t* p = m_mmu.rmw_pointer(lin, 2 * half, user());
            if (p && wide) {
                std::uint64_t lo = exp_lo, hi = exp_hi;
                std::uint8_t z;
                asm volatile("lock cmpxchg16b %[m]\n\tsetz %[z]"
                             : [m] "+m"(*reinterpret_cast<unsigned __int128*>(p)), "+a"(lo),
                               "+d"(hi), [z] "=r"(z)
                             : "b"(new_lo), "c"(new_hi)
                             : "cc", "memory");
                equal = z != 0;
                cur_lo = lo;
                cur_hi = hi;
            } else if (p) {
                std::uint64_t e = exp_lo | (exp_hi << 32);
                equal = __atomic_compare_exchange_n(reinterpret_cast<std::uint64_t*>(p), &e,
                                                    new_lo | (new_hi << 32), false,
                                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
                cur_lo = e & m;
                cur_hi = e >> 32;
            } else {
                cur_lo = mem_read(d.seg, off, half);
                cur_hi = mem_read(d.seg, off + half, half);
                equal = cur_lo == exp_lo && cur_hi == exp_hi;
                mem_write(d.seg, off, half, equal ? new_lo : cur_lo);
                mem_write(d.seg, off + half, half, equal ? new_hi : cur_hi);
            }
            if (!equal) {
                set_gpr(kRax, half, cur_lo);
                set_gpr(kRdx, half, cur_hi);
            }
            m_cpu.rflags = equal ? (m_cpu.rflags | fl::ZF) : (m_cpu.rflags & ~fl::ZF);
            break;
        }
        case ZYDIS_MNEMONIC_XADD: {
            const unsigned size = d.size;
            const std::uint64_t src = rd(in.op[1], in);
            std::uint64_t old;
            std::uint8_t* p = nullptr;
            std::uint64_t off = 0;
            if (d.kind == OpKind::Mem) {
                off = ea(d, in);
                if (in.lock) {
                    p = m_mmu.rmw_pointer(linear(d.seg, off), size, user());
                }
            }
            if (p) {
                switch (size) {
                    case 1:
                        old =
                            __atomic_fetch_add(p, static_cast<std::uint8_t>(src), __ATOMIC_SEQ_CST);
                        break;
                    case 2:
                        old = __atomic_fetch_add(reinterpret_cast<std::uint16_t*>(p),
                                                 static_cast<std::uint16_t>(src), __ATOMIC_SEQ_CST);
                        break;
                    case 4:
                        old = __atomic_fetch_add(reinterpret_cast<std::uint32_t*>(p),
                                                 static_cast<std::uint32_t>(src), __ATOMIC_SEQ_CST);
                        break;
                    default:
                        old = __atomic_fetch_add(reinterpret_cast<std::uint64_t*>(p), src,
                                                 __ATOMIC_SEQ_CST);
                        break;
                }
            } else {
                old = rd(d, in);
            }
            std::uint64_t sum, flags;
            switch (size) {
                case 1: {
                    auto a = static_cast<std::uint8_t>(old);
                    flags = alu::add(a, static_cast<std::uint8_t>(src));
                    sum = a;
                    break;
                }
                case 2: {
                    auto a = static_cast<std::uint16_t>(old);
                    flags = alu::add(a, static_cast<std::uint16_t>(src));
                    sum = a;
                    break;
                }
                case 4: {
                    auto a = static_cast<std::uint32_t>(old);
                    flags = alu::add(a, static_cast<std::uint32_t>(src));
                    sum = a;
                    break;
                }
                default: {
                    auto a = old;
                    flags = alu::add(a, src);
                    sum = a;
                    break;
                }
            }
            if (!p) {
                wr(d, in, sum);
            }
            wr(in.op[1], in, old);  // when both are the same register, the sum wins: write it last
            if (d.kind == OpKind::Gpr) {
                wr(d, in, sum);
            }
            alu::merge(m_cpu.rflags, flags, fl::kArith);
            break;
        }
        case ZYDIS_MNEMONIC_BSWAP: {
            const std::uint64_t v = get_gpr(d.reg, d.size);
            // BSWAP of a 16-bit register is undefined; real CPUs clear it.
            set_gpr(d.reg, d.size,
                    d.size == 8   ? __builtin_bswap64(v)
                    : d.size == 4 ? __builtin_bswap32(static_cast<std::uint32_t>(v))
                                  : 0);
            break;
        }
        case ZYDIS_MNEMONIC_CBW:
            set_gpr(kRax, 2, sext(get_gpr(kRax, 1), 1));
            break;
        case ZYDIS_MNEMONIC_CWDE:
            set_gpr(kRax, 4, sext(get_gpr(kRax, 2), 2));
            break;
        case ZYDIS_MNEMONIC_CDQE:
            set_gpr(kRax, 8, sext(get_gpr(kRax, 4), 4));
            break;
        case ZYDIS_MNEMONIC_CWD:
            set_gpr(kRdx, 2, (get_gpr(kRax, 2) & 0x8000) ? 0xffff : 0);
            break;
        case ZYDIS_MNEMONIC_CDQ:
            set_gpr(kRdx, 4, (get_gpr(kRax, 4) & 0x80000000) ? 0xffffffff : 0);
            break;
        case ZYDIS_MNEMONIC_CQO:
            set_gpr(kRdx, 8, (gpr(kRax) >> 63) ? ~0ULL : 0);
            break;
        case ZYDIS_MNEMONIC_LAHF:
            set_gpr(kRax, 1, (m_cpu.rflags & 0xd5) | 2, true);
            break;
        case ZYDIS_MNEMONIC_SAHF:
            m_cpu.rflags = (m_cpu.rflags & ~0xd5ULL) | (get_gpr(kRax, 1, true) & 0xd5);
            break;
        case ZYDIS_MNEMONIC_CLC:
            m_cpu.rflags &= ~fl::CF;
            break;
        case ZYDIS_MNEMONIC_STC:
            m_cpu.rflags |= fl::CF;
            break;
        case ZYDIS_MNEMONIC_CMC:
            m_cpu.rflags ^= fl::CF;
            break;
        case ZYDIS_MNEMONIC_CLD:
            m_cpu.rflags &= ~fl::DF;
            break;
        case ZYDIS_MNEMONIC_STD:
            m_cpu.rflags |= fl::DF;
            break;
        case ZYDIS_MNEMONIC_NOP:
        case ZYDIS_MNEMONIC_PAUSE:
        case ZYDIS_MNEMONIC_ENDBR32:
        case ZYDIS_MNEMONIC_ENDBR64:
        case ZYDIS_MNEMONIC_LFENCE:
        case ZYDIS_MNEMONIC_MFENCE:
        case ZYDIS_MNEMONIC_SFENCE:
        case ZYDIS_MNEMONIC_PREFETCHNTA:
        case ZYDIS_MNEMONIC_PREFETCHT0:
        case ZYDIS_MNEMONIC_PREFETCHT1:
        case ZYDIS_MNEMONIC_PREFETCHT2:
        case ZYDIS_MNEMONIC_PREFETCHW:
        case ZYDIS_MNEMONIC_PREFETCH:
            break;
        case ZYDIS_MNEMONIC_CLFLUSH:
            static_cast<void>(mem_read(d.seg, ea(d, in), 1));  // faults as a byte load would
            break;
        default: {
            const int cc = in.cc;
            if (cc < 0 || in.rel_branch) {
                return false;
            }
            if (in.mnemonic >= ZYDIS_MNEMONIC_SETB && in.mnemonic <= ZYDIS_MNEMONIC_SETZ) {
                wr(d, in, cond(static_cast<unsigned>(cc)) ? 1 : 0);
            } else {
                // CMOVcc reads its source even when the condition is false, and a 32-bit CMOV
                // zero-extends the destination either way (SDM Vol. 2, CMOVcc).
                const std::uint64_t v = rd(in.op[1], in);
                wr(d, in, cond(static_cast<unsigned>(cc)) ? v : get_gpr(d.reg, d.size));
            }
            break;
        }
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
