// SSE/SSE2 beyond exec_sse.cpp's moves and logic (SDM Vol. 2): floating-point arithmetic,
// compares and conversions (packed and scalar, single and double), the remaining integer
// operations (saturating and signed arithmetic, multiplies, averages, SAD, packs, high unpacks,
// shifts), shuffles, and the partial moves (MOVSS/MOVSD, MOVHPS/MOVLPS/MOVHPD/MOVLPD,
// MOVHLPS/MOVLHPS, MOVMSKPS/PD, PEXTRW/PINSRW, MOVNTI).
//
// Arithmetic runs on the host's SSE unit in inline assembly under the guest's MXCSR (rounding,
// DAZ/FTZ; every exception masked), its MXCSR read back in the same asm statement: results and
// exception flags are the hardware's. An exception the guest left unmasked raises #XM (CR4.
// OSXMMEXCPT set, else #UD) before the destination is written, as on hardware. A memory source
// is read first (16 bytes aligned for packed forms, #GP(0) otherwise; 4 or 8 bytes for scalar
// ones) and used as the register form's source: only its low lane matters to a scalar op.
#include <cstring>

#include "accel/soft/interpreter_inline.h"
#include "accel/soft/sse_lanes.h"

namespace vireo::soft {

namespace {

using X = long long __attribute__((vector_size(16)));

X to_x(const V128& v) {
    X x;
    std::memcpy(&x, v.data(), 16);
    return x;
}
V128 from_x(X x) {
    V128 v;
    std::memcpy(v.data(), &x, 16);
    return v;
}

constexpr std::uint32_t kMxcsrMasks = 0x1f80;

// dst = dst OP src for a two-operand SSE instruction, on the host under `guest_mxcsr`; returns
// the host's MXCSR after it (the exception flags in bits 5:0).
#define VIREO_SSE_HOST(insn)                                       \
    [](X& xd, X xs, std::uint32_t xg) {                            \
        std::uint32_t xh = 0, xo = 0;                              \
        asm volatile("stmxcsr %[h]\n\tldmxcsr %[g]\n\t" insn       \
                     " %[s], %[d]\n\tstmxcsr %[o]\n\tldmxcsr %[h]" \
                     : [d] "+x"(xd), [o] "=m"(xo), [h] "+m"(xh)    \
                     : [s] "x"(xs), [g] "m"(xg));                  \
        return xo;                                                 \
    }
#define VIREO_SSE_HOST_IMM(insn)                                         \
    []<int N>(X& xd, X xs, std::uint32_t xg) {                           \
        std::uint32_t xh = 0, xo = 0;                                    \
        asm volatile("stmxcsr %[h]\n\tldmxcsr %[g]\n\t" insn             \
                     " %[i], %[s], %[d]\n\tstmxcsr %[o]\n\tldmxcsr %[h]" \
                     : [d] "+x"(xd), [o] "=m"(xo), [h] "+m"(xh)          \
                     : [s] "x"(xs), [g] "m"(xg), [i] "i"(N));            \
        return xo;                                                       \
    }

using HostOp = std::uint32_t (*)(X&, X, std::uint32_t);

struct HostEntry {
    ZydisMnemonic mnemonic;
    HostOp op;
    unsigned mem_size;  // bytes a memory source has: 16 (aligned), 8 or 4
};

// Instructions whose register form is the whole operation.
const HostEntry kHostOps[] = {
    {ZYDIS_MNEMONIC_ADDPS, VIREO_SSE_HOST("addps"), 16},
    {ZYDIS_MNEMONIC_ADDPD, VIREO_SSE_HOST("addpd"), 16},
    {ZYDIS_MNEMONIC_ADDSS, VIREO_SSE_HOST("addss"), 4},
    {ZYDIS_MNEMONIC_ADDSD, VIREO_SSE_HOST("addsd"), 8},
    {ZYDIS_MNEMONIC_SUBPS, VIREO_SSE_HOST("subps"), 16},
    {ZYDIS_MNEMONIC_SUBPD, VIREO_SSE_HOST("subpd"), 16},
    {ZYDIS_MNEMONIC_SUBSS, VIREO_SSE_HOST("subss"), 4},
    {ZYDIS_MNEMONIC_SUBSD, VIREO_SSE_HOST("subsd"), 8},
    {ZYDIS_MNEMONIC_MULPS, VIREO_SSE_HOST("mulps"), 16},
    {ZYDIS_MNEMONIC_MULPD, VIREO_SSE_HOST("mulpd"), 16},
    {ZYDIS_MNEMONIC_MULSS, VIREO_SSE_HOST("mulss"), 4},
    {ZYDIS_MNEMONIC_MULSD, VIREO_SSE_HOST("mulsd"), 8},
    {ZYDIS_MNEMONIC_DIVPS, VIREO_SSE_HOST("divps"), 16},
    {ZYDIS_MNEMONIC_DIVPD, VIREO_SSE_HOST("divpd"), 16},
    {ZYDIS_MNEMONIC_DIVSS, VIREO_SSE_HOST("divss"), 4},
    {ZYDIS_MNEMONIC_DIVSD, VIREO_SSE_HOST("divsd"), 8},
    {ZYDIS_MNEMONIC_MINPS, VIREO_SSE_HOST("minps"), 16},
    {ZYDIS_MNEMONIC_MINPD, VIREO_SSE_HOST("minpd"), 16},
    {ZYDIS_MNEMONIC_MINSS, VIREO_SSE_HOST("minss"), 4},
    {ZYDIS_MNEMONIC_MINSD, VIREO_SSE_HOST("minsd"), 8},
    {ZYDIS_MNEMONIC_MAXPS, VIREO_SSE_HOST("maxps"), 16},
    {ZYDIS_MNEMONIC_MAXPD, VIREO_SSE_HOST("maxpd"), 16},
    {ZYDIS_MNEMONIC_MAXSS, VIREO_SSE_HOST("maxss"), 4},
    {ZYDIS_MNEMONIC_MAXSD, VIREO_SSE_HOST("maxsd"), 8},
    {ZYDIS_MNEMONIC_SQRTPS, VIREO_SSE_HOST("sqrtps"), 16},
    {ZYDIS_MNEMONIC_SQRTPD, VIREO_SSE_HOST("sqrtpd"), 16},
    {ZYDIS_MNEMONIC_SQRTSS, VIREO_SSE_HOST("sqrtss"), 4},
    {ZYDIS_MNEMONIC_SQRTSD, VIREO_SSE_HOST("sqrtsd"), 8},
    {ZYDIS_MNEMONIC_RCPPS, VIREO_SSE_HOST("rcpps"), 16},
    {ZYDIS_MNEMONIC_RCPSS, VIREO_SSE_HOST("rcpss"), 4},
    {ZYDIS_MNEMONIC_RSQRTPS, VIREO_SSE_HOST("rsqrtps"), 16},
    {ZYDIS_MNEMONIC_RSQRTSS, VIREO_SSE_HOST("rsqrtss"), 4},
    {ZYDIS_MNEMONIC_CVTPS2PD, VIREO_SSE_HOST("cvtps2pd"), 8},
    {ZYDIS_MNEMONIC_CVTPD2PS, VIREO_SSE_HOST("cvtpd2ps"), 16},
    {ZYDIS_MNEMONIC_CVTSS2SD, VIREO_SSE_HOST("cvtss2sd"), 4},
    {ZYDIS_MNEMONIC_CVTSD2SS, VIREO_SSE_HOST("cvtsd2ss"), 8},
    {ZYDIS_MNEMONIC_CVTDQ2PS, VIREO_SSE_HOST("cvtdq2ps"), 16},
    {ZYDIS_MNEMONIC_CVTPS2DQ, VIREO_SSE_HOST("cvtps2dq"), 16},
    {ZYDIS_MNEMONIC_CVTTPS2DQ, VIREO_SSE_HOST("cvttps2dq"), 16},
    {ZYDIS_MNEMONIC_CVTDQ2PD, VIREO_SSE_HOST("cvtdq2pd"), 8},
    {ZYDIS_MNEMONIC_CVTPD2DQ, VIREO_SSE_HOST("cvtpd2dq"), 16},
    {ZYDIS_MNEMONIC_CVTTPD2DQ, VIREO_SSE_HOST("cvttpd2dq"), 16},
    {ZYDIS_MNEMONIC_UNPCKLPS, VIREO_SSE_HOST("unpcklps"), 16},
    {ZYDIS_MNEMONIC_UNPCKHPS, VIREO_SSE_HOST("unpckhps"), 16},
    {ZYDIS_MNEMONIC_UNPCKLPD, VIREO_SSE_HOST("unpcklpd"), 16},
    {ZYDIS_MNEMONIC_UNPCKHPD, VIREO_SSE_HOST("unpckhpd"), 16},
    {ZYDIS_MNEMONIC_PUNPCKHBW, VIREO_SSE_HOST("punpckhbw"), 16},
    {ZYDIS_MNEMONIC_PUNPCKHWD, VIREO_SSE_HOST("punpckhwd"), 16},
    {ZYDIS_MNEMONIC_PUNPCKHDQ, VIREO_SSE_HOST("punpckhdq"), 16},
    {ZYDIS_MNEMONIC_PUNPCKHQDQ, VIREO_SSE_HOST("punpckhqdq"), 16},
    {ZYDIS_MNEMONIC_PCMPGTB, VIREO_SSE_HOST("pcmpgtb"), 16},
    {ZYDIS_MNEMONIC_PCMPGTW, VIREO_SSE_HOST("pcmpgtw"), 16},
    {ZYDIS_MNEMONIC_PCMPGTD, VIREO_SSE_HOST("pcmpgtd"), 16},
    {ZYDIS_MNEMONIC_PMAXSW, VIREO_SSE_HOST("pmaxsw"), 16},
    {ZYDIS_MNEMONIC_PMINSW, VIREO_SSE_HOST("pminsw"), 16},
    {ZYDIS_MNEMONIC_PADDUSB, VIREO_SSE_HOST("paddusb"), 16},
    {ZYDIS_MNEMONIC_PADDUSW, VIREO_SSE_HOST("paddusw"), 16},
    {ZYDIS_MNEMONIC_PSUBUSB, VIREO_SSE_HOST("psubusb"), 16},
    {ZYDIS_MNEMONIC_PSUBUSW, VIREO_SSE_HOST("psubusw"), 16},
    {ZYDIS_MNEMONIC_PADDSB, VIREO_SSE_HOST("paddsb"), 16},
    {ZYDIS_MNEMONIC_PADDSW, VIREO_SSE_HOST("paddsw"), 16},
    {ZYDIS_MNEMONIC_PSUBSB, VIREO_SSE_HOST("psubsb"), 16},
    {ZYDIS_MNEMONIC_PSUBSW, VIREO_SSE_HOST("psubsw"), 16},
    {ZYDIS_MNEMONIC_PACKUSWB, VIREO_SSE_HOST("packuswb"), 16},
    {ZYDIS_MNEMONIC_PACKSSWB, VIREO_SSE_HOST("packsswb"), 16},
    {ZYDIS_MNEMONIC_PACKSSDW, VIREO_SSE_HOST("packssdw"), 16},
    {ZYDIS_MNEMONIC_PMULLW, VIREO_SSE_HOST("pmullw"), 16},
    {ZYDIS_MNEMONIC_PMULHW, VIREO_SSE_HOST("pmulhw"), 16},
    {ZYDIS_MNEMONIC_PMULHUW, VIREO_SSE_HOST("pmulhuw"), 16},
    {ZYDIS_MNEMONIC_PMULUDQ, VIREO_SSE_HOST("pmuludq"), 16},
    {ZYDIS_MNEMONIC_PMADDWD, VIREO_SSE_HOST("pmaddwd"), 16},
    {ZYDIS_MNEMONIC_PAVGB, VIREO_SSE_HOST("pavgb"), 16},
    {ZYDIS_MNEMONIC_PAVGW, VIREO_SSE_HOST("pavgw"), 16},
    {ZYDIS_MNEMONIC_PSADBW, VIREO_SSE_HOST("psadbw"), 16},
};

// The shift-by-XMM forms (the count is the source's low quadword) share their mnemonics with
// the shift-by-immediate forms, which are done in C++ below.
const HostEntry kHostShifts[] = {
    {ZYDIS_MNEMONIC_PSRLW, VIREO_SSE_HOST("psrlw"), 16},
    {ZYDIS_MNEMONIC_PSRLD, VIREO_SSE_HOST("psrld"), 16},
    {ZYDIS_MNEMONIC_PSRLQ, VIREO_SSE_HOST("psrlq"), 16},
    {ZYDIS_MNEMONIC_PSLLW, VIREO_SSE_HOST("psllw"), 16},
    {ZYDIS_MNEMONIC_PSLLD, VIREO_SSE_HOST("pslld"), 16},
    {ZYDIS_MNEMONIC_PSLLQ, VIREO_SSE_HOST("psllq"), 16},
    {ZYDIS_MNEMONIC_PSRAW, VIREO_SSE_HOST("psraw"), 16},
    {ZYDIS_MNEMONIC_PSRAD, VIREO_SSE_HOST("psrad"), 16},
};

// imm8 forms: the immediate is part of the instruction, so one instantiation per value.
template <typename F, int... N>
std::uint32_t with_imm(F f, unsigned imm, X& d, X s, std::uint32_t g,
                       std::integer_sequence<int, N...>) {
    std::uint32_t out = 0;
    (void)((imm == N ? (out = f.template operator()<N>(d, s, g), true) : false) || ...);
    return out;
}

template <typename F>
std::uint32_t imm8(F f, unsigned imm, X& d, X s, std::uint32_t g) {
    return with_imm(f, imm & 0xff, d, s, g, std::make_integer_sequence<int, 256>{});
}
template <typename F>
std::uint32_t imm3(F f, unsigned imm, X& d, X s, std::uint32_t g) {
    return with_imm(f, imm & 7, d, s, g, std::make_integer_sequence<int, 8>{});
}

// PSRLW/PSRLD/PSRLQ/PSLL*/PSRA* by an immediate, and PSRLDQ/PSLLDQ (bytes).
template <typename T>
V128 shift_lanes(const V128& a, unsigned count, bool left, bool arith) {
    V128 r{};
    constexpr unsigned bits = 8 * sizeof(T);
    for (unsigned i = 0; i < 16 / sizeof(T); ++i) {
        const T x = lane<T>(a, i);
        T y = 0;
        if (arith) {
            using S = std::make_signed_t<T>;
            const unsigned c = count >= bits ? bits - 1 : count;
            y = static_cast<T>(static_cast<S>(x) >> c);
        } else if (count < bits) {
            y = static_cast<T>(left ? x << count : x >> count);
        }
        set_lane<T>(r, i, y);
    }
    return r;
}

}  // namespace

bool Interpreter::exec_sse_fp(const Insn& in) {
    const ZydisMnemonic m = in.mnemonic;
    const Operand& d = in.op[0];
    const Operand& s = in.op[1];
    const bool has_imm = in.nops >= 3 && in.op[2].kind == OpKind::Imm;
    const auto imm = static_cast<unsigned>(has_imm ? in.op[2].imm : 0);

    const HostEntry* host = nullptr;
    for (const auto& e : kHostOps) {
        if (e.mnemonic == m) {
            host = &e;
            break;
        }
    }
    if (host == nullptr && s.kind != OpKind::Imm) {
        for (const auto& e : kHostShifts) {
            if (e.mnemonic == m) {
                host = &e;
                break;
            }
        }
    }
    for (unsigned i = 0; i < in.nops; ++i) {
        if (in.op[i].kind == OpKind::Unsupported) {
            if (host != nullptr) {
                raise(kUd);  // MMX forms
            }
            return false;
        }
    }

    // A source operand: an XMM register, or memory of `size` bytes (16: aligned unless
    // `unaligned`), zero-extended.
    auto read_src = [&](const Operand& o, unsigned size, bool unaligned = false) {
        if (o.kind == OpKind::Xmm) {
            return m_cpu.xmm[o.reg];
        }
        V128 v{};
        if (o.kind != OpKind::Mem) {
            const std::uint64_t x = rd(o, in);
            std::memcpy(v.data(), &x, std::min<std::size_t>(o.size, 8));
            return v;
        }
        const std::uint64_t off = ea(o, in);
        if (size == 16 && !unaligned && (linear(o.seg, off) & 15) != 0) {
            raise(kGp, 0);
        }
        for (unsigned at = 0; at < size; at += 8) {
            const unsigned n = size - at >= 8 ? 8 : size - at;
            const std::uint64_t x = mem_read(o.seg, off + at, n);
            std::memcpy(v.data() + at, &x, n);
        }
        return v;
    };
    // Commits the host's MXCSR flags, or raises #XM for an unmasked one (nothing written).
    auto commit_flags = [&](std::uint32_t host_mxcsr) {
        const std::uint32_t flags = host_mxcsr & 0x3f;
        const std::uint32_t unmasked = flags & ~(m_cpu.mxcsr >> 7) & 0x3f;
        if (unmasked != 0) {
            m_cpu.mxcsr |= flags;
            raise((m_cpu.cr4 & cr::kCr4Osxmmexcpt) != 0 ? kXm : kUd);
        }
        m_cpu.mxcsr |= flags;
    };
    const std::uint32_t g = m_cpu.mxcsr | kMxcsrMasks;

    if (host != nullptr) {
        check_fpu(true);
        if (d.kind != OpKind::Xmm) {
            raise(kUd);
        }
        X dv = to_x(m_cpu.xmm[d.reg]);
        const X sv = to_x(read_src(s, host->mem_size));
        commit_flags(host->op(dv, sv, g));
        m_cpu.xmm[d.reg] = from_x(dv);
        m_cpu.rip = next_rip(in);
        return true;
    }

    switch (m) {
        case ZYDIS_MNEMONIC_CMPPS:
        case ZYDIS_MNEMONIC_CMPPD:
        case ZYDIS_MNEMONIC_CMPSS:
        case ZYDIS_MNEMONIC_CMPSD:
        case ZYDIS_MNEMONIC_SHUFPS:
        case ZYDIS_MNEMONIC_SHUFPD:
        case ZYDIS_MNEMONIC_PSHUFLW:
        case ZYDIS_MNEMONIC_PSHUFHW: {
            if (m == ZYDIS_MNEMONIC_CMPSD && in.map0) {
                return false;  // the string instruction
            }
            check_fpu(true);
            if (d.kind != OpKind::Xmm || !has_imm) {
                raise(kUd);
            }
            const unsigned size = m == ZYDIS_MNEMONIC_CMPSS   ? 4
                                  : m == ZYDIS_MNEMONIC_CMPSD ? 8
                                                              : 16;
            X dv = to_x(m_cpu.xmm[d.reg]);
            const X sv = to_x(read_src(s, size));
            std::uint32_t out = 0;
            switch (m) {
                case ZYDIS_MNEMONIC_CMPPS:
                    out = imm3(VIREO_SSE_HOST_IMM("cmpps"), imm, dv, sv, g);
                    break;
                case ZYDIS_MNEMONIC_CMPPD:
                    out = imm3(VIREO_SSE_HOST_IMM("cmppd"), imm, dv, sv, g);
                    break;
                case ZYDIS_MNEMONIC_CMPSS:
                    out = imm3(VIREO_SSE_HOST_IMM("cmpss"), imm, dv, sv, g);
                    break;
                case ZYDIS_MNEMONIC_CMPSD:
                    out = imm3(VIREO_SSE_HOST_IMM("cmpsd"), imm, dv, sv, g);
                    break;
                case ZYDIS_MNEMONIC_SHUFPS:
                    out = imm8(VIREO_SSE_HOST_IMM("shufps"), imm, dv, sv, g);
                    break;
                case ZYDIS_MNEMONIC_SHUFPD:
                    out = imm8(VIREO_SSE_HOST_IMM("shufpd"), imm & 3, dv, sv, g);
                    break;
                case ZYDIS_MNEMONIC_PSHUFLW:
                    out = imm8(VIREO_SSE_HOST_IMM("pshuflw"), imm, dv, sv, g);
                    break;
                default:
                    out = imm8(VIREO_SSE_HOST_IMM("pshufhw"), imm, dv, sv, g);
                    break;
            }
            commit_flags(out);
            m_cpu.xmm[d.reg] = from_x(dv);
            break;
        }
        case ZYDIS_MNEMONIC_COMISS:
        case ZYDIS_MNEMONIC_UCOMISS:
        case ZYDIS_MNEMONIC_COMISD:
        case ZYDIS_MNEMONIC_UCOMISD: {
            check_fpu(true);
            const bool single = m == ZYDIS_MNEMONIC_COMISS || m == ZYDIS_MNEMONIC_UCOMISS;
            const X a = to_x(m_cpu.xmm[d.reg]);
            const X b = to_x(read_src(s, single ? 4 : 8));
            std::uint8_t z = 0, p = 0, c = 0;
            std::uint32_t host_mx = 0, out = 0;
#define VIREO_SSE_COMI(insn)                                                                 \
    asm volatile(                                                                            \
        "stmxcsr %[h]\n\tldmxcsr %[g]\n\t" insn                                              \
        " %[b], %[a]\n\tsetz %[z]\n\tsetp %[p]\n\tsetc %[c]\n\tstmxcsr %[o]\n\tldmxcsr %[h]" \
        : [z] "=q"(z), [p] "=q"(p), [c] "=q"(c), [o] "=m"(out), [h] "+m"(host_mx)            \
        : [a] "x"(a), [b] "x"(b), [g] "m"(g)                                                 \
        : "cc")
            switch (m) {
                case ZYDIS_MNEMONIC_COMISS:
                    VIREO_SSE_COMI("comiss");
                    break;
                case ZYDIS_MNEMONIC_UCOMISS:
                    VIREO_SSE_COMI("ucomiss");
                    break;
                case ZYDIS_MNEMONIC_COMISD:
                    VIREO_SSE_COMI("comisd");
                    break;
                default:
                    VIREO_SSE_COMI("ucomisd");
                    break;
            }
#undef VIREO_SSE_COMI
            commit_flags(out);
            // ZF, PF, CF from the compare; OF, SF, AF cleared.
            m_cpu.rflags &= ~fl::kArith;
            m_cpu.rflags |= (z != 0 ? fl::ZF : 0) | (p != 0 ? fl::PF : 0) | (c != 0 ? fl::CF : 0);
            break;
        }
        case ZYDIS_MNEMONIC_CVTSI2SS:
        case ZYDIS_MNEMONIC_CVTSI2SD: {
            check_fpu(true);
            const std::uint64_t v = rd(s, in);
            X dv = to_x(m_cpu.xmm[d.reg]);
            std::uint32_t host_mx = 0, out = 0;
            const bool q = s.size == 8;
            const bool single = m == ZYDIS_MNEMONIC_CVTSI2SS;
            const auto v32 = static_cast<std::int32_t>(v);
            const auto v64 = static_cast<std::int64_t>(v);
#define VIREO_SSE_CVTSI(insn, val)                                \
    asm volatile("stmxcsr %[h]\n\tldmxcsr %[g]\n\t" insn          \
                 " %[s], %[d]\n\tstmxcsr %[o]\n\tldmxcsr %[h]"    \
                 : [d] "+x"(dv), [o] "=m"(out), [h] "+m"(host_mx) \
                 : [s] "r"(val), [g] "m"(g))
            if (single && q) {
                VIREO_SSE_CVTSI("cvtsi2ssq", v64);
            } else if (single) {
                VIREO_SSE_CVTSI("cvtsi2ssl", v32);
            } else if (q) {
                VIREO_SSE_CVTSI("cvtsi2sdq", v64);
            } else {
                VIREO_SSE_CVTSI("cvtsi2sdl", v32);
            }
#undef VIREO_SSE_CVTSI
            commit_flags(out);
            m_cpu.xmm[d.reg] = from_x(dv);
            break;
        }
        case ZYDIS_MNEMONIC_CVTSS2SI:
        case ZYDIS_MNEMONIC_CVTTSS2SI:
        case ZYDIS_MNEMONIC_CVTSD2SI:
        case ZYDIS_MNEMONIC_CVTTSD2SI: {
            check_fpu(true);
            const bool single = m == ZYDIS_MNEMONIC_CVTSS2SI || m == ZYDIS_MNEMONIC_CVTTSS2SI;
            const X sv = to_x(read_src(s, single ? 4 : 8));
            std::uint32_t host_mx = 0, out = 0;
            std::int64_t r64 = 0;
            std::int32_t r32 = 0;
            const bool q = d.size == 8;
#define VIREO_SSE_CVT2SI(insn, res)                                \
    asm volatile("stmxcsr %[h]\n\tldmxcsr %[g]\n\t" insn           \
                 " %[s], %[d]\n\tstmxcsr %[o]\n\tldmxcsr %[h]"     \
                 : [d] "=r"(res), [o] "=m"(out), [h] "+m"(host_mx) \
                 : [s] "x"(sv), [g] "m"(g))
            switch (m) {
                case ZYDIS_MNEMONIC_CVTSS2SI:
                    if (q) {
                        VIREO_SSE_CVT2SI("cvtss2si", r64);
                    } else {
                        VIREO_SSE_CVT2SI("cvtss2si", r32);
                    }
                    break;
                case ZYDIS_MNEMONIC_CVTTSS2SI:
                    if (q) {
                        VIREO_SSE_CVT2SI("cvttss2si", r64);
                    } else {
                        VIREO_SSE_CVT2SI("cvttss2si", r32);
                    }
                    break;
                case ZYDIS_MNEMONIC_CVTSD2SI:
                    if (q) {
                        VIREO_SSE_CVT2SI("cvtsd2si", r64);
                    } else {
                        VIREO_SSE_CVT2SI("cvtsd2si", r32);
                    }
                    break;
                default:
                    if (q) {
                        VIREO_SSE_CVT2SI("cvttsd2si", r64);
                    } else {
                        VIREO_SSE_CVT2SI("cvttsd2si", r32);
                    }
                    break;
            }
#undef VIREO_SSE_CVT2SI
            commit_flags(out);
            set_gpr(d.reg, d.size,
                    q ? static_cast<std::uint64_t>(r64) : static_cast<std::uint32_t>(r32));
            break;
        }
        case ZYDIS_MNEMONIC_PSRLW:
        case ZYDIS_MNEMONIC_PSRLD:
        case ZYDIS_MNEMONIC_PSRLQ:
        case ZYDIS_MNEMONIC_PSLLW:
        case ZYDIS_MNEMONIC_PSLLD:
        case ZYDIS_MNEMONIC_PSLLQ:
        case ZYDIS_MNEMONIC_PSRAW:
        case ZYDIS_MNEMONIC_PSRAD:
        case ZYDIS_MNEMONIC_PSRLDQ:
        case ZYDIS_MNEMONIC_PSLLDQ: {
            // The immediate forms (66 0F 71/72/73 /n ib).
            check_fpu(true);
            if (d.kind != OpKind::Xmm || s.kind != OpKind::Imm) {
                raise(kUd);
            }
            const V128 a = m_cpu.xmm[d.reg];
            const auto count = static_cast<unsigned>(s.imm & 0xff);
            V128 r{};
            switch (m) {
                case ZYDIS_MNEMONIC_PSRLW:
                    r = shift_lanes<std::uint16_t>(a, count, false, false);
                    break;
                case ZYDIS_MNEMONIC_PSRLD:
                    r = shift_lanes<std::uint32_t>(a, count, false, false);
                    break;
                case ZYDIS_MNEMONIC_PSRLQ:
                    r = shift_lanes<std::uint64_t>(a, count, false, false);
                    break;
                case ZYDIS_MNEMONIC_PSLLW:
                    r = shift_lanes<std::uint16_t>(a, count, true, false);
                    break;
                case ZYDIS_MNEMONIC_PSLLD:
                    r = shift_lanes<std::uint32_t>(a, count, true, false);
                    break;
                case ZYDIS_MNEMONIC_PSLLQ:
                    r = shift_lanes<std::uint64_t>(a, count, true, false);
                    break;
                case ZYDIS_MNEMONIC_PSRAW:
                    r = shift_lanes<std::uint16_t>(a, count, false, true);
                    break;
                case ZYDIS_MNEMONIC_PSRAD:
                    r = shift_lanes<std::uint32_t>(a, count, false, true);
                    break;
                case ZYDIS_MNEMONIC_PSRLDQ:
                    for (unsigned i = 0; i + count < 16 && count < 16; ++i) {
                        r[i] = a[i + count];
                    }
                    break;
                default:  // PSLLDQ
                    for (unsigned i = count; i < 16; ++i) {
                        r[i] = a[i - count];
                    }
                    break;
            }
            m_cpu.xmm[d.reg] = r;
            break;
        }
        case ZYDIS_MNEMONIC_MOVSS:
        case ZYDIS_MNEMONIC_MOVSD: {
            if (m == ZYDIS_MNEMONIC_MOVSD && in.map0) {
                return false;  // the string instruction
            }
            check_fpu(true);
            const unsigned n = m == ZYDIS_MNEMONIC_MOVSS ? 4 : 8;
            if (d.kind == OpKind::Mem) {
                mem_write(d.seg, ea(d, in), n, lane<std::uint64_t>(m_cpu.xmm[s.reg], 0));
            } else if (s.kind == OpKind::Mem) {
                m_cpu.xmm[d.reg] = read_src(s, n);  // a load zeroes the rest
            } else {
                std::memcpy(m_cpu.xmm[d.reg].data(), m_cpu.xmm[s.reg].data(), n);
            }
            break;
        }
        case ZYDIS_MNEMONIC_MOVLPS:
        case ZYDIS_MNEMONIC_MOVLPD:
        case ZYDIS_MNEMONIC_MOVHPS:
        case ZYDIS_MNEMONIC_MOVHPD: {
            check_fpu(true);
            const unsigned half =
                (m == ZYDIS_MNEMONIC_MOVHPS || m == ZYDIS_MNEMONIC_MOVHPD) ? 8 : 0;
            if (d.kind == OpKind::Mem) {
                mem_write(d.seg, ea(d, in), 8, lane<std::uint64_t>(m_cpu.xmm[s.reg], half / 8));
            } else if (s.kind == OpKind::Mem) {
                const std::uint64_t v = mem_read(s.seg, ea(s, in), 8);
                std::memcpy(m_cpu.xmm[d.reg].data() + half, &v, 8);
            } else {
                // 0F 12 with a register source is MOVHLPS, 0F 16 MOVLHPS (other mnemonics).
                raise(kUd);
            }
            break;
        }
        case ZYDIS_MNEMONIC_MOVHLPS:
        case ZYDIS_MNEMONIC_MOVLHPS: {
            check_fpu(true);
            const V128 src = m_cpu.xmm[s.reg];
            if (m == ZYDIS_MNEMONIC_MOVHLPS) {
                std::memcpy(m_cpu.xmm[d.reg].data(), src.data() + 8, 8);
            } else {
                std::memcpy(m_cpu.xmm[d.reg].data() + 8, src.data(), 8);
            }
            break;
        }
        case ZYDIS_MNEMONIC_MOVMSKPS:
        case ZYDIS_MNEMONIC_MOVMSKPD: {
            check_fpu(true);
            const V128& v = m_cpu.xmm[s.reg];
            std::uint32_t mask = 0;
            if (m == ZYDIS_MNEMONIC_MOVMSKPS) {
                for (unsigned i = 0; i < 4; ++i) {
                    mask |= (lane<std::uint32_t>(v, i) >> 31) << i;
                }
            } else {
                for (unsigned i = 0; i < 2; ++i) {
                    mask |= static_cast<std::uint32_t>(lane<std::uint64_t>(v, i) >> 63) << i;
                }
            }
            set_gpr(d.reg, d.size, mask);
            break;
        }
        case ZYDIS_MNEMONIC_PEXTRW: {
            check_fpu(true);
            if (s.kind != OpKind::Xmm || d.kind != OpKind::Gpr) {
                return false;  // the SSE4.1 memory form is not advertised
            }
            set_gpr(d.reg, d.size, lane<std::uint16_t>(m_cpu.xmm[s.reg], imm & 7));
            break;
        }
        case ZYDIS_MNEMONIC_PINSRW: {
            check_fpu(true);
            if (d.kind != OpKind::Xmm) {
                return false;  // MMX form
            }
            const auto v = static_cast<std::uint16_t>(rd(s, in));
            set_lane<std::uint16_t>(m_cpu.xmm[d.reg], imm & 7, v);
            break;
        }
        case ZYDIS_MNEMONIC_MOVNTI:
            wr(d, in, rd(s, in));
            break;
        default:
            return false;
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
