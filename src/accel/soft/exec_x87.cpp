// x87 arithmetic (SDM Vol. 1 §8; Vol. 2, the F* instructions): the register stack with its tags,
// loads and stores of every memory format, the arithmetic, compare, constant, transcendental and
// conditional-move instructions, and FNSTENV/FLDENV/FNSAVE/FRSTOR.
//
// The host is an x86-64 CPU with the same x87 unit, so each operation runs on the host's x87 in
// inline assembly under the guest's control word (precision and rounding control, every
// exception masked): results, the C0-C3 condition codes and the exception flags are bit-exact
// with a real CPU's masked response, and the differential tests compare them. What is simplified:
// an exception the guest unmasked still gets the masked response (real hardware leaves the
// destination unchanged); its flag, ES and B are set, and the next waiting x87 instruction raises
// #MF as on hardware. FIP/FDP/FOP are not tracked.
//
// CpuState keeps ST(0)..ST(7) in stack order (as FXSAVE stores them), the 80-bit value in the
// first 10 bytes of each slot; TOP is FSW bits 13:11; the abridged tag word has one bit per
// *physical* register (ST(i) is physical (TOP + i) mod 8).
// Over 600 lines on purpose: most of it is the inline-assembly table of the instructions, one
// asm statement per host instruction (each must name its opcode literally); the register stack
// and the environment live in exec_x87_state.cpp.
#include <cstring>
#include <limits>

#include "accel/soft/interpreter_inline.h"
#include "accel/soft/x87_format.h"

namespace vireo::soft {

using namespace x87;

namespace {

// Runs `op` on the host's x87 under the guest's control word (every exception masked), with the
// exception flags cleared first. `op` reads the host's status word in the same asm statement as
// the operation (FNSTSW): anything the compiler emits in between, such as the FSTP that spills
// a result, would change C1.
template <class Op>
void on_host(std::uint16_t guest_cw, Op op) {
    std::uint16_t host_cw = 0;
    const std::uint16_t cw = static_cast<std::uint16_t>(guest_cw | 0x3f);
    asm volatile("fnstcw %0" : "=m"(host_cw));
    asm volatile("fldcw %0\n\tfnclex" : : "m"(cw));
    op();
    asm volatile("fnclex\n\tfldcw %0" : : "m"(host_cw));
}

}  // namespace

// --- operand reads (the register stack and the environment are exec_x87_state.cpp's) ---

// A memory operand in the x87's register format. Its conversion's flags (IE for a signalling NaN,
// DE for a denormal) go to *deferred when given, for the caller to merge with its operation's.
long double Interpreter::x87_load_mem(const Operand& o, const Insn& in, bool integer,
                                      std::uint16_t* deferred) {
    const std::uint64_t off = ea(o, in);
    f80 r = 0;
    std::uint16_t sw = 0;
    if (integer) {
        switch (o.size) {
            case 2: {
                const auto v = static_cast<std::int16_t>(mem_read(o.seg, off, 2));
                on_host(m_cpu.fcw, [&] {
                    asm volatile("filds %2\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "m"(v));
                });
                break;
            }
            case 4: {
                const auto v = static_cast<std::int32_t>(mem_read(o.seg, off, 4));
                on_host(m_cpu.fcw, [&] {
                    asm volatile("fildl %2\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "m"(v));
                });
                break;
            }
            default: {
                const auto v = static_cast<std::int64_t>(mem_read(o.seg, off, 8));
                on_host(m_cpu.fcw, [&] {
                    asm volatile("fildll %2\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "m"(v));
                });
                break;
            }
        }
    } else {
        switch (o.size) {
            case 4: {
                const auto v = static_cast<std::uint32_t>(mem_read(o.seg, off, 4));
                float f = 0;
                std::memcpy(&f, &v, 4);
                on_host(m_cpu.fcw, [&] {
                    asm volatile("flds %2\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "m"(f));
                });
                break;
            }
            case 8: {
                const std::uint64_t v = mem_read(o.seg, off, 8);
                double f = 0;
                std::memcpy(&f, &v, 8);
                on_host(m_cpu.fcw, [&] {
                    asm volatile("fldl %2\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "m"(f));
                });
                break;
            }
            default: {  // m80: loaded as is, no exception
                const std::uint64_t mant = mem_read(o.seg, off, 8);
                const auto se = static_cast<std::uint16_t>(mem_read(o.seg, off + 8, 2));
                std::memcpy(&r, &mant, 8);
                std::memcpy(reinterpret_cast<std::uint8_t*>(&r) + 8, &se, 2);
                return r;
            }
        }
    }
    if (deferred != nullptr) {
        *deferred = sw;
    } else {
        x87_flags(sw, 0);
    }
    return r;
}

// The flags of an operation on a converted memory operand: the conversion's and the operation's
// exceptions, but DE not when IE is raised (IE takes precedence over DE, SDM Vol. 1 §4.9.2).
static std::uint16_t x87_merge_flags(std::uint16_t load_sw, std::uint16_t op_sw) {
    auto sw = static_cast<std::uint16_t>(op_sw | (load_sw & 0x3f));
    if ((sw & 0x01) != 0) {
        sw = static_cast<std::uint16_t>(sw & ~0x02);
    }
    return sw;
}

// --- the instructions ---

bool Interpreter::exec_x87(const Insn& in) {
    const Operand& a = in.op[0];
    const Operand& b = in.op[1];
    const bool mem = in.nops >= 1 && a.kind == OpKind::Mem;
    std::uint16_t sw = 0;
    // dst = dst OP src on the host's x87, for FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR and their P and
    // FI forms; `which` picks the operation.
    auto arith = [&](unsigned which, f80 x, f80 y) {
        f80 r = 0;
        on_host(m_cpu.fcw, [&] {
            switch (which) {
                case 0:
                    asm volatile("fadd %%st(1), %%st\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y));
                    break;
                case 1:
                    asm volatile("fsub %%st(1), %%st\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y));
                    break;
                case 2:
                    asm volatile("fsubr %%st(1), %%st\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y));
                    break;
                case 3:
                    asm volatile("fmul %%st(1), %%st\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y));
                    break;
                case 4:
                    asm volatile("fdiv %%st(1), %%st\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y));
                    break;
                default:
                    asm volatile("fdivr %%st(1), %%st\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y));
                    break;
            }
        });
        return r;
    };
    auto arith_kind = [&]() -> int {
        switch (in.mnemonic) {
            case ZYDIS_MNEMONIC_FADD:
            case ZYDIS_MNEMONIC_FADDP:
            case ZYDIS_MNEMONIC_FIADD:
                return 0;
            case ZYDIS_MNEMONIC_FSUB:
            case ZYDIS_MNEMONIC_FSUBP:
            case ZYDIS_MNEMONIC_FISUB:
                return 1;
            case ZYDIS_MNEMONIC_FSUBR:
            case ZYDIS_MNEMONIC_FSUBRP:
            case ZYDIS_MNEMONIC_FISUBR:
                return 2;
            case ZYDIS_MNEMONIC_FMUL:
            case ZYDIS_MNEMONIC_FMULP:
            case ZYDIS_MNEMONIC_FIMUL:
                return 3;
            case ZYDIS_MNEMONIC_FDIV:
            case ZYDIS_MNEMONIC_FDIVP:
            case ZYDIS_MNEMONIC_FIDIV:
                return 4;
            case ZYDIS_MNEMONIC_FDIVR:
            case ZYDIS_MNEMONIC_FDIVRP:
            case ZYDIS_MNEMONIC_FIDIVR:
                return 5;
            default:
                return -1;
        }
    };
    // Compares x with y and sets C0/C2/C3 (FCOM, FUCOM: `unordered_ok` quiet NaNs do not
    // raise IE), or ZF/PF/CF for the FCOMI forms.
    auto compare = [&](f80 x, f80 y, bool unordered_ok, bool to_eflags, std::uint16_t load_sw = 0) {
        on_host(m_cpu.fcw, [&] {
            if (unordered_ok) {
                asm volatile("fucom %%st(1)\n\tfnstsw %[sw]" : [sw] "=m"(sw) : "t"(x), "u"(y));
            } else {
                asm volatile("fcom %%st(1)\n\tfnstsw %[sw]" : [sw] "=m"(sw) : "t"(x), "u"(y));
            }
        });
        sw = x87_merge_flags(load_sw, sw);
        if (to_eflags) {
            x87_flags(static_cast<std::uint16_t>(sw & 0x3f), kC1);
            m_cpu.rflags &= ~(fl::ZF | fl::PF | fl::CF | fl::OF | fl::SF | fl::AF);
            m_cpu.rflags |= ((sw & kC3) != 0 ? fl::ZF : 0) | ((sw & kC2) != 0 ? fl::PF : 0) |
                            ((sw & kC0) != 0 ? fl::CF : 0);
        } else {
            x87_flags(static_cast<std::uint16_t>(sw & ~kC1), kCcMask);
        }
    };
    auto st_index = [&](const Operand& o) -> unsigned { return o.reg & 7; };

    if (const int k = arith_kind(); k >= 0) {
        x87_begin();
        const bool integer =
            in.mnemonic == ZYDIS_MNEMONIC_FIADD || in.mnemonic == ZYDIS_MNEMONIC_FISUB ||
            in.mnemonic == ZYDIS_MNEMONIC_FISUBR || in.mnemonic == ZYDIS_MNEMONIC_FIMUL ||
            in.mnemonic == ZYDIS_MNEMONIC_FIDIV || in.mnemonic == ZYDIS_MNEMONIC_FIDIVR;
        const bool pop =
            in.mnemonic == ZYDIS_MNEMONIC_FADDP || in.mnemonic == ZYDIS_MNEMONIC_FSUBP ||
            in.mnemonic == ZYDIS_MNEMONIC_FSUBRP || in.mnemonic == ZYDIS_MNEMONIC_FMULP ||
            in.mnemonic == ZYDIS_MNEMONIC_FDIVP || in.mnemonic == ZYDIS_MNEMONIC_FDIVRP;
        if (mem) {
            std::uint16_t load_sw = 0;
            const f80 src = x87_load_mem(a, in, integer, &load_sw);
            if (x87_empty(0)) {
                // Stack underflow: the masked response is the indefinite, whatever the operand.
                x87_underflow();
                x87_put(0, indefinite());
            } else {
                const f80 r = arith(static_cast<unsigned>(k), x87_raw(0), src);
                x87_flags(x87_merge_flags(load_sw, sw), kC1);
                x87_put(0, r);
            }
        } else {
            if (in.nops < 2 || a.kind != OpKind::St || b.kind != OpKind::St) {
                return false;
            }
            const unsigned di = st_index(a);
            const unsigned si = st_index(b);
            if (x87_empty(di) || x87_empty(si)) {
                x87_underflow();
                x87_put(di, indefinite());
            } else {
                const f80 r = arith(static_cast<unsigned>(k), x87_raw(di), x87_raw(si));
                x87_flags(sw, kC1);
                x87_put(di, r);
            }
            if (pop) {
                x87_pop();
            }
        }
        m_cpu.rip = next_rip(in);
        return true;
    }

    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_FLD:
        case ZYDIS_MNEMONIC_FILD: {
            x87_begin();
            f80 v = 0;
            if (mem) {
                v = x87_load_mem(a, in, in.mnemonic == ZYDIS_MNEMONIC_FILD);
            } else {
                v = x87_get(st_index(a));
            }
            x87_push(v);
            break;
        }
        case ZYDIS_MNEMONIC_FLD1:
        case ZYDIS_MNEMONIC_FLDZ:
        case ZYDIS_MNEMONIC_FLDPI:
        case ZYDIS_MNEMONIC_FLDL2E:
        case ZYDIS_MNEMONIC_FLDL2T:
        case ZYDIS_MNEMONIC_FLDLG2:
        case ZYDIS_MNEMONIC_FLDLN2: {
            x87_begin();
            f80 v = 0;
            // The constants are rounded by RC (SDM Vol. 1 §8.3.8).
            on_host(m_cpu.fcw, [&] {
                switch (in.mnemonic) {
                    case ZYDIS_MNEMONIC_FLD1:
                        asm volatile("fld1\n\tfnstsw %[sw]" : "=t"(v), [sw] "=m"(sw));
                        break;
                    case ZYDIS_MNEMONIC_FLDZ:
                        asm volatile("fldz\n\tfnstsw %[sw]" : "=t"(v), [sw] "=m"(sw));
                        break;
                    case ZYDIS_MNEMONIC_FLDPI:
                        asm volatile("fldpi\n\tfnstsw %[sw]" : "=t"(v), [sw] "=m"(sw));
                        break;
                    case ZYDIS_MNEMONIC_FLDL2E:
                        asm volatile("fldl2e\n\tfnstsw %[sw]" : "=t"(v), [sw] "=m"(sw));
                        break;
                    case ZYDIS_MNEMONIC_FLDL2T:
                        asm volatile("fldl2t\n\tfnstsw %[sw]" : "=t"(v), [sw] "=m"(sw));
                        break;
                    case ZYDIS_MNEMONIC_FLDLG2:
                        asm volatile("fldlg2\n\tfnstsw %[sw]" : "=t"(v), [sw] "=m"(sw));
                        break;
                    default:
                        asm volatile("fldln2\n\tfnstsw %[sw]" : "=t"(v), [sw] "=m"(sw));
                        break;
                }
            });
            x87_push(v);
            break;
        }
        case ZYDIS_MNEMONIC_FST:
        case ZYDIS_MNEMONIC_FSTP: {
            x87_begin();
            const bool pop = in.mnemonic == ZYDIS_MNEMONIC_FSTP;
            const f80 v = x87_get(0);
            if (mem) {
                const std::uint64_t off = ea(a, in);
                if (a.size == 4) {
                    float f = 0;
                    on_host(m_cpu.fcw, [&] {
                        asm volatile("fsts %0\n\tfnstsw %[sw]" : "=m"(f), [sw] "=m"(sw) : "t"(v));
                    });
                    std::uint32_t bits = 0;
                    std::memcpy(&bits, &f, 4);
                    mem_write(a.seg, off, 4, bits);
                } else if (a.size == 8) {
                    double f = 0;
                    on_host(m_cpu.fcw, [&] {
                        asm volatile("fstl %0\n\tfnstsw %[sw]" : "=m"(f), [sw] "=m"(sw) : "t"(v));
                    });
                    std::uint64_t bits = 0;
                    std::memcpy(&bits, &f, 8);
                    mem_write(a.seg, off, 8, bits);
                } else {
                    std::uint8_t bytes[10];
                    std::memcpy(bytes, &v, 10);
                    m_mmu.write_bytes(linear(a.seg, off), std::span<const std::uint8_t>(bytes, 10),
                                      user());
                }
                x87_flags(sw, kC1);
            } else {
                x87_put(st_index(a), v);
            }
            if (pop) {
                x87_pop();
            }
            break;
        }
        case ZYDIS_MNEMONIC_FIST:
        case ZYDIS_MNEMONIC_FISTP:
        case ZYDIS_MNEMONIC_FISTTP: {
            x87_begin();
            if (!mem) {
                return false;
            }
            const f80 v = x87_get(0);
            const std::uint64_t off = ea(a, in);
            const bool trunc = in.mnemonic == ZYDIS_MNEMONIC_FISTTP;
            std::uint64_t bits = 0;
            // fld st(0) then a popping store: the operand is a copy, so GCC's stack stays as is.
            if (a.size == 2) {
                std::int16_t r = 0;
                on_host(m_cpu.fcw, [&] {
                    if (trunc) {
                        asm volatile("fld %%st(0)\n\tfisttps %0\n\tfnstsw %[sw]"
                                     : "=m"(r), [sw] "=m"(sw)
                                     : "t"(v));
                    } else {
                        asm volatile("fld %%st(0)\n\tfistps %0\n\tfnstsw %[sw]"
                                     : "=m"(r), [sw] "=m"(sw)
                                     : "t"(v));
                    }
                });
                bits = static_cast<std::uint16_t>(r);
            } else if (a.size == 4) {
                std::int32_t r = 0;
                on_host(m_cpu.fcw, [&] {
                    if (trunc) {
                        asm volatile("fld %%st(0)\n\tfisttpl %0\n\tfnstsw %[sw]"
                                     : "=m"(r), [sw] "=m"(sw)
                                     : "t"(v));
                    } else {
                        asm volatile("fld %%st(0)\n\tfistpl %0\n\tfnstsw %[sw]"
                                     : "=m"(r), [sw] "=m"(sw)
                                     : "t"(v));
                    }
                });
                bits = static_cast<std::uint32_t>(r);
            } else {
                std::int64_t r = 0;
                on_host(m_cpu.fcw, [&] {
                    if (trunc) {
                        asm volatile("fld %%st(0)\n\tfisttpll %0\n\tfnstsw %[sw]"
                                     : "=m"(r), [sw] "=m"(sw)
                                     : "t"(v));
                    } else {
                        asm volatile("fld %%st(0)\n\tfistpll %0\n\tfnstsw %[sw]"
                                     : "=m"(r), [sw] "=m"(sw)
                                     : "t"(v));
                    }
                });
                bits = static_cast<std::uint64_t>(r);
            }
            mem_write(a.seg, off, a.size, bits);
            x87_flags(sw, kC1);
            if (in.mnemonic != ZYDIS_MNEMONIC_FIST) {
                x87_pop();
            }
            break;
        }
        case ZYDIS_MNEMONIC_FXCH: {
            x87_begin();
            const unsigned i = in.nops >= 1 && a.kind == OpKind::St ? st_index(a) : 1;
            if (x87_empty(0) || x87_empty(i)) {
                x87_underflow();
            }
            const f80 x = x87_empty(0) ? indefinite() : x87_raw(0);
            const f80 y = x87_empty(i) ? indefinite() : x87_raw(i);
            x87_put(0, y);
            x87_put(i, x);
            m_cpu.fsw &= static_cast<std::uint16_t>(~kC1);
            break;
        }
        case ZYDIS_MNEMONIC_FFREE:
        case ZYDIS_MNEMONIC_FFREEP:
            x87_begin();
            x87_set_tag(st_index(a), false);
            if (in.mnemonic == ZYDIS_MNEMONIC_FFREEP) {
                x87_pop();
            }
            break;
        case ZYDIS_MNEMONIC_FINCSTP:
        case ZYDIS_MNEMONIC_FDECSTP: {
            x87_begin();
            // TOP moves; values and tags stay with their physical registers.
            const auto st = m_cpu.st;
            const bool inc = in.mnemonic == ZYDIS_MNEMONIC_FINCSTP;
            for (unsigned i = 0; i < 8; ++i) {
                m_cpu.st[i] = st[(i + (inc ? 1 : 7)) & 7];
            }
            x87_set_top(x87_top() + (inc ? 1 : 7));
            m_cpu.fsw &= static_cast<std::uint16_t>(~kC1);
            break;
        }
        case ZYDIS_MNEMONIC_FCHS:
        case ZYDIS_MNEMONIC_FABS:
        case ZYDIS_MNEMONIC_FSQRT:
        case ZYDIS_MNEMONIC_FRNDINT:
        case ZYDIS_MNEMONIC_F2XM1:
        case ZYDIS_MNEMONIC_FSIN:
        case ZYDIS_MNEMONIC_FCOS: {
            x87_begin();
            const f80 x = x87_get(0);
            f80 r = 0;
            on_host(m_cpu.fcw, [&] {
                switch (in.mnemonic) {
                    case ZYDIS_MNEMONIC_FCHS:
                        asm volatile("fchs\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "0"(x));
                        break;
                    case ZYDIS_MNEMONIC_FABS:
                        asm volatile("fabs\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "0"(x));
                        break;
                    case ZYDIS_MNEMONIC_FSQRT:
                        asm volatile("fsqrt\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "0"(x));
                        break;
                    case ZYDIS_MNEMONIC_FRNDINT:
                        asm volatile("frndint\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "0"(x));
                        break;
                    case ZYDIS_MNEMONIC_F2XM1:
                        asm volatile("f2xm1\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "0"(x));
                        break;
                    case ZYDIS_MNEMONIC_FSIN:
                        asm volatile("fsin\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "0"(x));
                        break;
                    default:
                        asm volatile("fcos\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "0"(x));
                        break;
                }
            });
            x87_put(0, r);
            // FSIN/FCOS: C2 = operand out of range; the others define C1 only.
            x87_flags(sw, in.mnemonic == ZYDIS_MNEMONIC_FSIN || in.mnemonic == ZYDIS_MNEMONIC_FCOS
                              ? static_cast<std::uint16_t>(kC1 | kC2)
                              : kC1);
            break;
        }
        case ZYDIS_MNEMONIC_FSCALE:
        case ZYDIS_MNEMONIC_FPREM:
        case ZYDIS_MNEMONIC_FPREM1: {
            x87_begin();
            if (x87_empty(0) || x87_empty(1)) {
                x87_underflow();
                x87_put(0, indefinite());
                break;
            }
            const f80 x = x87_raw(0);
            const f80 y = x87_raw(1);
            f80 r = 0;
            on_host(m_cpu.fcw, [&] {
                if (in.mnemonic == ZYDIS_MNEMONIC_FSCALE) {
                    asm volatile("fscale\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y));
                } else if (in.mnemonic == ZYDIS_MNEMONIC_FPREM) {
                    asm volatile("fprem\n\tfnstsw %[sw]" : "=t"(r), [sw] "=m"(sw) : "0"(x), "u"(y));
                } else {
                    asm volatile("fprem1\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y));
                }
            });
            x87_put(0, r);
            // FPREM/FPREM1: C0, C3, C1 = quotient bits 2, 1, 0 and C2 = incomplete.
            x87_flags(sw, in.mnemonic == ZYDIS_MNEMONIC_FSCALE ? kC1 : kCcMask);
            break;
        }
        case ZYDIS_MNEMONIC_FYL2X:
        case ZYDIS_MNEMONIC_FYL2XP1:
        case ZYDIS_MNEMONIC_FPATAN: {
            x87_begin();
            if (x87_empty(0) || x87_empty(1)) {
                x87_underflow();
                x87_put(1, indefinite());
                x87_pop();
                break;
            }
            const f80 x = x87_raw(0);
            const f80 y = x87_raw(1);
            f80 r = 0;
            on_host(m_cpu.fcw, [&] {
                if (in.mnemonic == ZYDIS_MNEMONIC_FYL2X) {
                    asm volatile("fyl2x\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y)
                                 : "st(1)");
                } else if (in.mnemonic == ZYDIS_MNEMONIC_FYL2XP1) {
                    asm volatile("fyl2xp1\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y)
                                 : "st(1)");
                } else {
                    asm volatile("fpatan\n\tfnstsw %[sw]"
                                 : "=t"(r), [sw] "=m"(sw)
                                 : "0"(x), "u"(y)
                                 : "st(1)");
                }
            });
            x87_put(1, r);
            x87_pop();
            x87_flags(sw, kC1);
            break;
        }
        case ZYDIS_MNEMONIC_FXTRACT:
        case ZYDIS_MNEMONIC_FSINCOS:
        case ZYDIS_MNEMONIC_FPTAN: {
            x87_begin();
            const f80 x = x87_get(0);
            f80 lo = 0;  // becomes ST(1)
            f80 hi = 0;  // becomes ST(0)
            on_host(m_cpu.fcw, [&] {
                if (in.mnemonic == ZYDIS_MNEMONIC_FXTRACT) {
                    asm volatile("fxtract\n\tfnstsw %[sw]"
                                 : "=t"(hi), "=u"(lo), [sw] "=m"(sw)
                                 : "0"(x));
                } else if (in.mnemonic == ZYDIS_MNEMONIC_FSINCOS) {
                    asm volatile("fsincos\n\tfnstsw %[sw]"
                                 : "=t"(hi), "=u"(lo), [sw] "=m"(sw)
                                 : "0"(x));
                } else {
                    asm volatile("fptan\n\tfnstsw %[sw]"
                                 : "=t"(hi), "=u"(lo), [sw] "=m"(sw)
                                 : "0"(x));
                }
            });
            // FSINCOS/FPTAN with the operand out of range (C2) leave it and push nothing.
            if (in.mnemonic != ZYDIS_MNEMONIC_FXTRACT && (sw & kC2) != 0) {
                x87_flags(sw, kC1 | kC2);
                break;
            }
            x87_put(0, lo);
            x87_push(hi);
            x87_flags(sw, static_cast<std::uint16_t>(kC1 | kC2));
            break;
        }
        case ZYDIS_MNEMONIC_FCOM:
        case ZYDIS_MNEMONIC_FCOMP:
        case ZYDIS_MNEMONIC_FCOMPP:
        case ZYDIS_MNEMONIC_FUCOM:
        case ZYDIS_MNEMONIC_FUCOMP:
        case ZYDIS_MNEMONIC_FUCOMPP:
        case ZYDIS_MNEMONIC_FICOM:
        case ZYDIS_MNEMONIC_FICOMP: {
            x87_begin();
            const bool integer =
                in.mnemonic == ZYDIS_MNEMONIC_FICOM || in.mnemonic == ZYDIS_MNEMONIC_FICOMP;
            f80 y = 0;
            std::uint16_t load_sw = 0;
            if (mem) {
                y = x87_load_mem(a, in, integer, &load_sw);
            } else {
                // FCOM ST(i) lists ST(i) alone, FUCOM ST(i) lists ST(0), ST(i): the last one.
                const Operand& last = in.op[in.nops >= 1 ? in.nops - 1 : 0];
                y = x87_get(in.nops >= 1 && last.kind == OpKind::St ? st_index(last) : 1);
            }
            const f80 x = x87_get(0);
            const bool quiet = in.mnemonic == ZYDIS_MNEMONIC_FUCOM ||
                               in.mnemonic == ZYDIS_MNEMONIC_FUCOMP ||
                               in.mnemonic == ZYDIS_MNEMONIC_FUCOMPP;
            compare(x, y, quiet, false, load_sw);
            unsigned pops = 0;
            if (in.mnemonic == ZYDIS_MNEMONIC_FCOMP || in.mnemonic == ZYDIS_MNEMONIC_FUCOMP ||
                in.mnemonic == ZYDIS_MNEMONIC_FICOMP) {
                pops = 1;
            } else if (in.mnemonic == ZYDIS_MNEMONIC_FCOMPP ||
                       in.mnemonic == ZYDIS_MNEMONIC_FUCOMPP) {
                pops = 2;
            }
            for (unsigned i = 0; i < pops; ++i) {
                x87_pop();
            }
            break;
        }
        case ZYDIS_MNEMONIC_FCOMI:
        case ZYDIS_MNEMONIC_FCOMIP:
        case ZYDIS_MNEMONIC_FUCOMI:
        case ZYDIS_MNEMONIC_FUCOMIP: {
            x87_begin();
            if (in.nops < 2 || b.kind != OpKind::St) {
                return false;
            }
            const f80 x = x87_get(0);
            const f80 y = x87_get(st_index(b));
            compare(x, y,
                    in.mnemonic == ZYDIS_MNEMONIC_FUCOMI || in.mnemonic == ZYDIS_MNEMONIC_FUCOMIP,
                    true);
            if (in.mnemonic == ZYDIS_MNEMONIC_FCOMIP || in.mnemonic == ZYDIS_MNEMONIC_FUCOMIP) {
                x87_pop();
            }
            break;
        }
        case ZYDIS_MNEMONIC_FTST:
        case ZYDIS_MNEMONIC_FXAM: {
            x87_begin();
            if (in.mnemonic == ZYDIS_MNEMONIC_FXAM && x87_empty(0)) {
                // Empty: C3 = 1, C2 = 0, C0 = 1; C1 = the sign bit of what the register holds.
                const bool sign = (m_cpu.st[0][9] & 0x80) != 0;
                m_cpu.fsw = static_cast<std::uint16_t>((m_cpu.fsw & ~kCcMask) | kC3 | kC0 |
                                                       (sign ? kC1 : 0));
                break;
            }
            const f80 x = x87_get(0);
            on_host(m_cpu.fcw, [&] {
                if (in.mnemonic == ZYDIS_MNEMONIC_FTST) {
                    asm volatile("ftst\n\tfnstsw %[sw]" : [sw] "=m"(sw) : "t"(x));
                } else {
                    asm volatile("fxam\n\tfnstsw %[sw]" : [sw] "=m"(sw) : "t"(x));
                }
            });
            x87_flags(
                in.mnemonic == ZYDIS_MNEMONIC_FTST ? static_cast<std::uint16_t>(sw & ~kC1) : sw,
                kCcMask);
            break;
        }
        case ZYDIS_MNEMONIC_FCMOVB:
        case ZYDIS_MNEMONIC_FCMOVE:
        case ZYDIS_MNEMONIC_FCMOVBE:
        case ZYDIS_MNEMONIC_FCMOVU:
        case ZYDIS_MNEMONIC_FCMOVNB:
        case ZYDIS_MNEMONIC_FCMOVNE:
        case ZYDIS_MNEMONIC_FCMOVNBE:
        case ZYDIS_MNEMONIC_FCMOVNU: {
            x87_begin();
            if (in.nops < 2 || b.kind != OpKind::St) {
                return false;
            }
            const std::uint64_t f = m_cpu.rflags;
            const bool cf = (f & fl::CF) != 0, zf = (f & fl::ZF) != 0, pf = (f & fl::PF) != 0;
            bool take = false;
            switch (in.mnemonic) {
                case ZYDIS_MNEMONIC_FCMOVB:
                    take = cf;
                    break;
                case ZYDIS_MNEMONIC_FCMOVE:
                    take = zf;
                    break;
                case ZYDIS_MNEMONIC_FCMOVBE:
                    take = cf || zf;
                    break;
                case ZYDIS_MNEMONIC_FCMOVU:
                    take = pf;
                    break;
                case ZYDIS_MNEMONIC_FCMOVNB:
                    take = !cf;
                    break;
                case ZYDIS_MNEMONIC_FCMOVNE:
                    take = !zf;
                    break;
                case ZYDIS_MNEMONIC_FCMOVNBE:
                    take = !cf && !zf;
                    break;
                default:
                    take = !pf;
                    break;
            }
            if (x87_empty(0) || x87_empty(st_index(b))) {
                x87_underflow();
                x87_put(0, indefinite());
            } else if (take) {
                x87_put(0, x87_raw(st_index(b)));
            }
            break;
        }
        case ZYDIS_MNEMONIC_FNSTENV:
        case ZYDIS_MNEMONIC_FLDENV:
        case ZYDIS_MNEMONIC_FNSAVE:
        case ZYDIS_MNEMONIC_FRSTOR: {
            check_fpu(false);
            if (!mem) {
                return false;
            }
            x87_env(in, a);
            break;
        }
        default:
            return false;
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
