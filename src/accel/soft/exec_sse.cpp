// SSE/SSE2 moves and integer/logic operations on XMM registers (SDM Vol. 2: MOVAPS/MOVAPD/
// MOVDQA/MOVNT*, MOVUPS/MOVUPD/MOVDQU, MOVD/MOVQ, PXOR/XORPS/XORPD, PAND/ANDPS/ANDPD,
// POR/ORPS/ORPD, PANDN/ANDNPS/ANDNPD, PCMPEQB/W/D, PMOVMSKB, PADDB/W/D/Q, PSUBB/W/D/Q, PSHUFD,
// PUNPCKL*, PMINUB, PMAXUB): what string and memory routines use; the rest of SSE/SSE2 is
// exec_sse_fp.cpp's. The MMX forms (MM registers) are not implemented and raise #UD. Legacy-SSE
// 128-bit memory operands must be 16-byte aligned (#GP(0)) except for the unaligned moves.
#include "accel/soft/interpreter_inline.h"
#include "accel/soft/sse_lanes.h"

namespace vireo::soft {

namespace {

template <typename T, typename F>
V128 lanes(const V128& a, const V128& b, F f) {
    V128 r{};
    for (unsigned i = 0; i < 16 / sizeof(T); ++i) {
        set_lane<T>(r, i, static_cast<T>(f(lane<T>(a, i), lane<T>(b, i))));
    }
    return r;
}

template <typename T>
V128 unpack_low(const V128& a, const V128& b) {
    V128 r{};
    for (unsigned i = 0; i < 8 / sizeof(T); ++i) {
        set_lane<T>(r, 2 * i, lane<T>(a, i));
        set_lane<T>(r, 2 * i + 1, lane<T>(b, i));
    }
    return r;
}

}  // namespace

bool Interpreter::exec_sse(const Insn& in) {
    const ZydisMnemonic m = in.mnemonic;
    bool unaligned_ok = false;
    switch (m) {
        case ZYDIS_MNEMONIC_MOVUPS:
        case ZYDIS_MNEMONIC_MOVUPD:
        case ZYDIS_MNEMONIC_MOVDQU:
        case ZYDIS_MNEMONIC_MOVD:
        case ZYDIS_MNEMONIC_MOVQ:
            unaligned_ok = true;
            break;
        case ZYDIS_MNEMONIC_MOVAPS:
        case ZYDIS_MNEMONIC_MOVAPD:
        case ZYDIS_MNEMONIC_MOVDQA:
        case ZYDIS_MNEMONIC_MOVNTDQ:
        case ZYDIS_MNEMONIC_MOVNTPS:
        case ZYDIS_MNEMONIC_MOVNTPD:
        case ZYDIS_MNEMONIC_PXOR:
        case ZYDIS_MNEMONIC_XORPS:
        case ZYDIS_MNEMONIC_XORPD:
        case ZYDIS_MNEMONIC_PAND:
        case ZYDIS_MNEMONIC_ANDPS:
        case ZYDIS_MNEMONIC_ANDPD:
        case ZYDIS_MNEMONIC_POR:
        case ZYDIS_MNEMONIC_ORPS:
        case ZYDIS_MNEMONIC_ORPD:
        case ZYDIS_MNEMONIC_PANDN:
        case ZYDIS_MNEMONIC_ANDNPS:
        case ZYDIS_MNEMONIC_ANDNPD:
        case ZYDIS_MNEMONIC_PCMPEQB:
        case ZYDIS_MNEMONIC_PCMPEQW:
        case ZYDIS_MNEMONIC_PCMPEQD:
        case ZYDIS_MNEMONIC_PMOVMSKB:
        case ZYDIS_MNEMONIC_PADDB:
        case ZYDIS_MNEMONIC_PADDW:
        case ZYDIS_MNEMONIC_PADDD:
        case ZYDIS_MNEMONIC_PADDQ:
        case ZYDIS_MNEMONIC_PSUBB:
        case ZYDIS_MNEMONIC_PSUBW:
        case ZYDIS_MNEMONIC_PSUBD:
        case ZYDIS_MNEMONIC_PSUBQ:
        case ZYDIS_MNEMONIC_PSHUFD:
        case ZYDIS_MNEMONIC_PUNPCKLBW:
        case ZYDIS_MNEMONIC_PUNPCKLWD:
        case ZYDIS_MNEMONIC_PUNPCKLDQ:
        case ZYDIS_MNEMONIC_PUNPCKLQDQ:
        case ZYDIS_MNEMONIC_PMINUB:
        case ZYDIS_MNEMONIC_PMAXUB:
            break;
        default:
            return exec_sse_fp(in);
    }
    for (unsigned i = 0; i < in.nops; ++i) {
        if (in.op[i].kind == OpKind::Unsupported) {
            raise(kUd);  // MMX forms
        }
    }
    check_fpu(true);
    const Operand& d = in.op[0];
    const Operand& s = in.op[1];
    // Reads an XMM register, 16 bytes of memory, or the low bytes of a GPR/smaller memory
    // operand (zero-extended).
    auto read = [&](const Operand& o) {
        V128 v{};
        if (o.kind == OpKind::Xmm) {
            return m_cpu.xmm[o.reg];
        }
        if (o.kind == OpKind::Mem && o.size == 16) {
            const std::uint64_t off = ea(o, in);
            if (!unaligned_ok && (linear(o.seg, off) & 15) != 0) {
                raise(kGp, 0);
            }
            const std::uint64_t lo = mem_read(o.seg, off, 8);
            const std::uint64_t hi = mem_read(o.seg, off + 8, 8);
            std::memcpy(v.data(), &lo, 8);
            std::memcpy(v.data() + 8, &hi, 8);
            return v;
        }
        const std::uint64_t x = rd(o, in);
        std::memcpy(v.data(), &x, std::min<std::size_t>(o.size, 8));
        return v;
    };
    auto write = [&](const Operand& o, const V128& v) {
        if (o.kind == OpKind::Xmm) {
            m_cpu.xmm[o.reg] = v;
            return;
        }
        if (o.kind == OpKind::Mem && o.size == 16) {
            const std::uint64_t off = ea(o, in);
            if (!unaligned_ok && (linear(o.seg, off) & 15) != 0) {
                raise(kGp, 0);
            }
            m_mmu.translate(linear(o.seg, off + 8), Access::Write, user());  // both halves or none
            mem_write(o.seg, off, 8, lane<std::uint64_t>(v, 0));
            mem_write(o.seg, off + 8, 8, lane<std::uint64_t>(v, 1));
            return;
        }
        std::uint64_t x = 0;
        std::memcpy(&x, v.data(), std::min<std::size_t>(o.size, 8));
        wr(o, in, x);
    };
    switch (m) {
        case ZYDIS_MNEMONIC_MOVD:
        case ZYDIS_MNEMONIC_MOVQ: {
            V128 v = read(s);
            if (d.kind == OpKind::Xmm) {
                // Into an XMM register: the source's low 4 or 8 bytes, zero-extended.
                const unsigned n = s.kind == OpKind::Xmm ? 8 : s.size;
                V128 z{};
                std::memcpy(z.data(), v.data(), n);
                v = z;
            }
            write(d, v);
            break;
        }
        case ZYDIS_MNEMONIC_MOVUPS:
        case ZYDIS_MNEMONIC_MOVUPD:
        case ZYDIS_MNEMONIC_MOVDQU:
        case ZYDIS_MNEMONIC_MOVAPS:
        case ZYDIS_MNEMONIC_MOVAPD:
        case ZYDIS_MNEMONIC_MOVDQA:
        case ZYDIS_MNEMONIC_MOVNTDQ:
        case ZYDIS_MNEMONIC_MOVNTPS:
        case ZYDIS_MNEMONIC_MOVNTPD:
            write(d, read(s));
            break;
        case ZYDIS_MNEMONIC_PMOVMSKB: {
            const V128 v = read(s);
            std::uint32_t mask = 0;
            for (unsigned i = 0; i < 16; ++i) {
                mask |= static_cast<std::uint32_t>(v[i] >> 7) << i;
            }
            set_gpr(d.reg, d.size, mask);
            break;
        }
        case ZYDIS_MNEMONIC_PSHUFD: {
            const V128 v = read(s);
            const auto imm = static_cast<unsigned>(in.op[2].imm);
            V128 r{};
            for (unsigned i = 0; i < 4; ++i) {
                set_lane<std::uint32_t>(r, i, lane<std::uint32_t>(v, (imm >> (2 * i)) & 3));
            }
            write(d, r);
            break;
        }
        default: {
            const V128 a = read(d);
            const V128 b = read(s);
            V128 r{};
            switch (m) {
                case ZYDIS_MNEMONIC_PXOR:
                case ZYDIS_MNEMONIC_XORPS:
                case ZYDIS_MNEMONIC_XORPD:
                    r = lanes<std::uint64_t>(a, b, [](auto x, auto y) { return x ^ y; });
                    break;
                case ZYDIS_MNEMONIC_PAND:
                case ZYDIS_MNEMONIC_ANDPS:
                case ZYDIS_MNEMONIC_ANDPD:
                    r = lanes<std::uint64_t>(a, b, [](auto x, auto y) { return x & y; });
                    break;
                case ZYDIS_MNEMONIC_POR:
                case ZYDIS_MNEMONIC_ORPS:
                case ZYDIS_MNEMONIC_ORPD:
                    r = lanes<std::uint64_t>(a, b, [](auto x, auto y) { return x | y; });
                    break;
                case ZYDIS_MNEMONIC_PANDN:
                case ZYDIS_MNEMONIC_ANDNPS:
                case ZYDIS_MNEMONIC_ANDNPD:
                    r = lanes<std::uint64_t>(a, b, [](auto x, auto y) { return ~x & y; });
                    break;
                case ZYDIS_MNEMONIC_PCMPEQB:
                    r = lanes<std::uint8_t>(a, b, [](auto x, auto y) { return x == y ? 0xff : 0; });
                    break;
                case ZYDIS_MNEMONIC_PCMPEQW:
                    r = lanes<std::uint16_t>(a, b,
                                             [](auto x, auto y) { return x == y ? 0xffff : 0; });
                    break;
                case ZYDIS_MNEMONIC_PCMPEQD:
                    r = lanes<std::uint32_t>(
                        a, b, [](auto x, auto y) { return x == y ? 0xffffffffu : 0u; });
                    break;
                case ZYDIS_MNEMONIC_PADDB:
                    r = lanes<std::uint8_t>(a, b, [](auto x, auto y) { return x + y; });
                    break;
                case ZYDIS_MNEMONIC_PADDW:
                    r = lanes<std::uint16_t>(a, b, [](auto x, auto y) { return x + y; });
                    break;
                case ZYDIS_MNEMONIC_PADDD:
                    r = lanes<std::uint32_t>(a, b, [](auto x, auto y) { return x + y; });
                    break;
                case ZYDIS_MNEMONIC_PADDQ:
                    r = lanes<std::uint64_t>(a, b, [](auto x, auto y) { return x + y; });
                    break;
                case ZYDIS_MNEMONIC_PSUBB:
                    r = lanes<std::uint8_t>(a, b, [](auto x, auto y) { return x - y; });
                    break;
                case ZYDIS_MNEMONIC_PSUBW:
                    r = lanes<std::uint16_t>(a, b, [](auto x, auto y) { return x - y; });
                    break;
                case ZYDIS_MNEMONIC_PSUBD:
                    r = lanes<std::uint32_t>(a, b, [](auto x, auto y) { return x - y; });
                    break;
                case ZYDIS_MNEMONIC_PSUBQ:
                    r = lanes<std::uint64_t>(a, b, [](auto x, auto y) { return x - y; });
                    break;
                case ZYDIS_MNEMONIC_PMINUB:
                    r = lanes<std::uint8_t>(a, b, [](auto x, auto y) { return x < y ? x : y; });
                    break;
                case ZYDIS_MNEMONIC_PMAXUB:
                    r = lanes<std::uint8_t>(a, b, [](auto x, auto y) { return x > y ? x : y; });
                    break;
                case ZYDIS_MNEMONIC_PUNPCKLBW:
                    r = unpack_low<std::uint8_t>(a, b);
                    break;
                case ZYDIS_MNEMONIC_PUNPCKLWD:
                    r = unpack_low<std::uint16_t>(a, b);
                    break;
                case ZYDIS_MNEMONIC_PUNPCKLDQ:
                    r = unpack_low<std::uint32_t>(a, b);
                    break;
                default:
                    r = unpack_low<std::uint64_t>(a, b);
                    break;  // PUNPCKLQDQ
            }
            write(d, r);
            break;
        }
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
