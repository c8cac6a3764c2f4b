// Multiply, divide and bit instructions (SDM Vol. 2: MUL, IMUL, DIV, IDIV, BT, BTS, BTR, BTC,
// BSF, BSR; TZCNT/LZCNT execute as BSF/BSR because the CPUID model has no BMI1/ABM, exactly as
// on CPUs without them, where the F3 prefix is ignored).
#include "accel/soft/alu.h"
#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

namespace {

using u128 = unsigned __int128;
using i128 = __int128;

std::int64_t sx(std::uint64_t v, unsigned size) {
    const unsigned sh = 64 - 8 * size;
    return static_cast<std::int64_t>(v << sh) >> sh;
}

std::uint64_t mask_of(unsigned size) {
    return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

}  // namespace

bool Interpreter::exec_muldiv(const Insn& in) {
    const Operand& d = in.op[0];
    const unsigned size = d.size;
    const std::uint64_t m = mask_of(size);
    const unsigned bits = 8 * size;
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_MUL:
        case ZYDIS_MNEMONIC_IMUL: {
            const bool sign = in.mnemonic == ZYDIS_MNEMONIC_IMUL;
            if (sign && in.nops >= 2) {
                // Two- and three-operand IMUL: dest = src1 * src2 truncated; CF=OF on overflow.
                const Operand& s1 = in.nops == 3 ? in.op[1] : in.op[0];
                const Operand& s2 = in.nops == 3 ? in.op[2] : in.op[1];
                const std::uint64_t a = rd(s1, in), b = rd(s2, in);
                std::uint64_t flags, r;
                switch (size) {
                    case 2: {
                        auto x = static_cast<std::uint16_t>(a);
                        flags = alu::imul2(x, static_cast<std::uint16_t>(b));
                        r = x;
                        break;
                    }
                    case 4: {
                        auto x = static_cast<std::uint32_t>(a);
                        flags = alu::imul2(x, static_cast<std::uint32_t>(b));
                        r = x;
                        break;
                    }
                    default: {
                        auto x = a;
                        flags = alu::imul2(x, b);
                        r = x;
                        break;
                    }
                }
                wr(d, in, r);
                alu::merge(m_cpu.rflags, flags, fl::kArith);
                break;
            }
            const std::uint64_t src = rd(d, in);
            const std::uint64_t acc = get_gpr(kRax, size);
            u128 prod;
            bool overflow;
            if (sign) {
                const i128 p = static_cast<i128>(sx(acc, size)) * sx(src, size);
                prod = static_cast<u128>(p);
                overflow = p != static_cast<i128>(sx(static_cast<std::uint64_t>(prod) & m, size));
            } else {
                prod = static_cast<u128>(acc) * src;
                overflow = (prod >> bits) != 0;
            }
            const std::uint64_t lo = static_cast<std::uint64_t>(prod) & m;
            const std::uint64_t hi = static_cast<std::uint64_t>(prod >> bits) & m;
            if (size == 1) {
                set_gpr(kRax, 2, lo | (hi << 8));
            } else {
                set_gpr(kRax, size, lo);
                set_gpr(kRdx, size, hi);
            }
            // CF=OF=overflow; SF, ZF, AF, PF undefined: set from the low half as AMD does for
            // SF/ZF.
            std::uint64_t f = m_cpu.rflags & ~(fl::CF | fl::OF);
            if (overflow) {
                f |= fl::CF | fl::OF;
            }
            m_cpu.rflags = f;
            break;
        }
        case ZYDIS_MNEMONIC_DIV:
        case ZYDIS_MNEMONIC_IDIV: {
            const std::uint64_t src = rd(d, in);
            if ((src & m) == 0) {
                raise(kDe);
            }
            const std::uint64_t lo_in = size == 1 ? get_gpr(kRax, 2) & 0xff : get_gpr(kRax, size);
            const std::uint64_t hi_in =
                size == 1 ? (get_gpr(kRax, 2) >> 8) & 0xff : get_gpr(kRdx, size);
            const u128 dividend = (static_cast<u128>(hi_in) << bits) | lo_in;
            std::uint64_t q, r;
            if (in.mnemonic == ZYDIS_MNEMONIC_DIV) {
                const u128 qq = dividend / src;
                if ((qq >> bits) != 0) {
                    raise(kDe);  // quotient too large (SDM Vol. 2, DIV)
                }
                q = static_cast<std::uint64_t>(qq);
                r = static_cast<std::uint64_t>(dividend % src);
            } else {
                // Sign-extend the 2*bits dividend to 128 bits.
                i128 sdiv;
                if (bits == 64) {
                    sdiv = static_cast<i128>(dividend);
                } else {
                    const unsigned sh = 128 - 2 * bits;
                    sdiv = static_cast<i128>(dividend << sh) >> sh;
                }
                const i128 sdivisor = sx(src, size);
                if (bits == 64 && sdiv == (static_cast<i128>(1) << 127) && sdivisor == -1) {
                    raise(kDe);
                }
                const i128 qq = sdiv / sdivisor;
                const i128 lim = static_cast<i128>(1) << (bits - 1);
                if (qq >= lim || qq < -lim) {
                    raise(kDe);
                }
                q = static_cast<std::uint64_t>(qq);
                r = static_cast<std::uint64_t>(sdiv % sdivisor);
            }
            if (size == 1) {
                set_gpr(kRax, 2, (q & 0xff) | ((r & 0xff) << 8));
            } else {
                set_gpr(kRax, size, q & m);
                set_gpr(kRdx, size, r & m);
            }
            break;
        }
        default:
            return false;
    }
    m_cpu.rip = next_rip(in);
    return true;
}

bool Interpreter::exec_bits(const Insn& in) {
    const Operand& d = in.op[0];
    const unsigned size = d.size;
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_BT:
        case ZYDIS_MNEMONIC_BTS:
        case ZYDIS_MNEMONIC_BTR:
        case ZYDIS_MNEMONIC_BTC: {
            const unsigned bits = 8 * size;
            const Operand& s = in.op[1];
            std::uint64_t bit = rd(s, in);
            std::uint64_t v, off = 0;
            const bool mem = d.kind == OpKind::Mem;
            if (mem) {
                off = ea(d, in);
                if (s.kind == OpKind::Gpr) {
                    // A register bit offset addresses a bit string: signed, any distance
                    // (SDM Vol. 2, BT "bit base" operand).
                    const std::int64_t sbit = sx(bit, s.size);
                    const std::int64_t unit =
                        sbit >= 0 ? sbit / bits : -((-sbit + bits - 1) / bits);
                    off += static_cast<std::uint64_t>(unit * static_cast<std::int64_t>(size));
                    if (in.addrsize == 4) {
                        off &= 0xffffffffULL;
                    } else if (in.addrsize == 2) {
                        off &= 0xffff;
                    }
                }
            }
            bit &= bits - 1;
            const std::uint64_t mask = 1ULL << bit;
            auto update = [&](std::uint64_t x) {
                switch (in.mnemonic) {
                    case ZYDIS_MNEMONIC_BTS:
                        return x | mask;
                    case ZYDIS_MNEMONIC_BTR:
                        return x & ~mask;
                    case ZYDIS_MNEMONIC_BTC:
                        return x ^ mask;
                    default:
                        return x;
                }
            };
            std::uint8_t* p = nullptr;
            if (mem && in.lock && in.mnemonic != ZYDIS_MNEMONIC_BT) {
                p = m_mmu.rmw_pointer(linear(d.seg, off), size, user());
            }
            if (p) {
                // Locked on the host: one byte holds the bit, so a byte-wide atomic suffices.
                std::uint8_t* byte = p + bit / 8;
                const auto bm = static_cast<std::uint8_t>(1u << (bit % 8));
                std::uint8_t old;
                switch (in.mnemonic) {
                    case ZYDIS_MNEMONIC_BTS:
                        old = __atomic_fetch_or(byte, bm, __ATOMIC_SEQ_CST);
                        break;
                    case ZYDIS_MNEMONIC_BTR:
                        old = __atomic_fetch_and(byte, static_cast<std::uint8_t>(~bm),
                                                 __ATOMIC_SEQ_CST);
                        break;
                    default:
                        old = __atomic_fetch_xor(byte, bm, __ATOMIC_SEQ_CST);
                        break;
                }
                v = (old & bm) ? mask : 0;
            } else {
                v = mem ? mem_read(d.seg, off, size) : rd(d, in);
                if (in.mnemonic != ZYDIS_MNEMONIC_BT) {
                    if (mem) {
                        mem_write(d.seg, off, size, update(v));
                    } else {
                        wr(d, in, update(v));
                    }
                }
            }
            // CF = the bit; OF, SF, AF, PF undefined; ZF unaffected.
            m_cpu.rflags = (v & mask) ? (m_cpu.rflags | fl::CF) : (m_cpu.rflags & ~fl::CF);
            break;
        }
        case ZYDIS_MNEMONIC_BSF:
        case ZYDIS_MNEMONIC_BSR:
        case ZYDIS_MNEMONIC_TZCNT:
        case ZYDIS_MNEMONIC_LZCNT: {
            const bool fwd =
                in.mnemonic == ZYDIS_MNEMONIC_BSF || in.mnemonic == ZYDIS_MNEMONIC_TZCNT;
            const std::uint64_t src = rd(in.op[1], in);
            std::uint64_t cur = get_gpr(d.reg, size);
            std::uint64_t flags;
            switch (size) {
                case 2: {
                    auto a = static_cast<std::uint16_t>(cur);
                    flags = fwd ? alu::bsf(a, static_cast<std::uint16_t>(src))
                                : alu::bsr(a, static_cast<std::uint16_t>(src));
                    cur = a;
                    break;
                }
                case 4: {
                    auto a = static_cast<std::uint32_t>(cur);
                    flags = fwd ? alu::bsf(a, static_cast<std::uint32_t>(src))
                                : alu::bsr(a, static_cast<std::uint32_t>(src));
                    cur = a;
                    break;
                }
                default: {
                    auto a = cur;
                    flags = fwd ? alu::bsf(a, src) : alu::bsr(a, src);
                    cur = a;
                    break;
                }
            }
            if ((flags & fl::ZF) == 0) {
                set_gpr(d.reg, size, cur);
            }
            alu::merge(m_cpu.rflags, flags, fl::kArith);
            break;
        }
        default:
            return false;
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
