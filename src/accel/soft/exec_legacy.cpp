// Instructions that exist only outside 64-bit mode (SDM Vol. 2: PUSHA/PUSHAD, POPA/POPAD, XLAT,
// DAA, DAS, AAA, AAS, AAM, AAD, SALC), as real-mode boot code and 32-bit kernels use them.
// Zydis does not decode them in 64-bit mode, where they are #UD.
#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

namespace {

// SF, ZF, PF of a byte result (SDM Vol. 1 §3.4.3.1).
std::uint64_t szp(std::uint8_t v) {
    return (v == 0 ? fl::ZF : 0) | ((v & 0x80) ? fl::SF : 0) | (__builtin_parity(v) ? 0 : fl::PF);
}

}  // namespace

bool Interpreter::exec_legacy(const Insn& in) {
    const std::uint64_t f = m_cpu.rflags;
    const bool af = (f & fl::AF) != 0, cf = (f & fl::CF) != 0;
    auto al = static_cast<std::uint8_t>(gpr(kRax));
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_PUSHA:
        case ZYDIS_MNEMONIC_PUSHAD: {
            const unsigned sz = in.opsize;
            const std::uint64_t saved = gpr(kRsp);
            const std::uint64_t sp = get_gpr(kRsp, sz);
            try {
                for (unsigned r : {kRax, kRcx, kRdx, kRbx}) {
                    push(get_gpr(r, sz), sz);
                }
                push(sp, sz);
                for (unsigned r : {kRbp, kRsi, kRdi}) {
                    push(get_gpr(r, sz), sz);
                }
            } catch (...) {
                gpr(kRsp) = saved;
                throw;
            }
            break;
        }
        case ZYDIS_MNEMONIC_POPA:
        case ZYDIS_MNEMONIC_POPAD: {
            const unsigned sz = in.opsize;
            std::uint64_t v[8];
            for (unsigned i = 0; i < 8; ++i) {
                v[i] = stack_read(i * sz, sz);  // all reads first: a fault changes nothing
            }
            static constexpr unsigned kOrder[8] = {kRdi, kRsi, kRbp, kRsp, kRbx, kRdx, kRcx, kRax};
            for (unsigned i = 0; i < 8; ++i) {
                if (kOrder[i] != kRsp) {
                    set_gpr(kOrder[i], sz, v[i]);
                }
            }
            const std::uint64_t m = sp_mask();
            gpr(kRsp) = (gpr(kRsp) & ~m) | ((gpr(kRsp) + 8 * sz) & m);
            break;
        }
        case ZYDIS_MNEMONIC_XLAT: {
            const unsigned seg = in.seg_override != kSegCount ? in.seg_override : unsigned{kDs};
            const std::uint64_t amask = in.addrsize == 4 ? 0xffffffffULL : 0xffffULL;
            set_gpr(kRax, 1, mem_read(seg, (gpr(kRbx) + al) & amask, 1));
            break;
        }
        case ZYDIS_MNEMONIC_DAA:
        case ZYDIS_MNEMONIC_DAS: {
            const bool add = in.mnemonic == ZYDIS_MNEMONIC_DAA;
            const std::uint8_t old = al;
            bool ncf = false, naf = false;
            if ((al & 0xf) > 9 || af) {
                ncf = cf || (add ? al > 0xf9 : al < 6);
                al = static_cast<std::uint8_t>(add ? al + 6 : al - 6);
                naf = true;
            }
            if (old > 0x99 || cf) {
                al = static_cast<std::uint8_t>(add ? al + 0x60 : al - 0x60);
                ncf = true;
            }
            set_gpr(kRax, 1, al);
            m_cpu.rflags = (f & ~(fl::CF | fl::AF | fl::SF | fl::ZF | fl::PF)) | szp(al) |
                           (ncf ? fl::CF : 0) | (naf ? fl::AF : 0);
            break;
        }
        case ZYDIS_MNEMONIC_AAA:
        case ZYDIS_MNEMONIC_AAS: {
            const bool adjust = (al & 0xf) > 9 || af;
            if (adjust) {
                std::uint16_t ax = static_cast<std::uint16_t>(gpr(kRax));
                ax = static_cast<std::uint16_t>(in.mnemonic == ZYDIS_MNEMONIC_AAA ? ax + 0x106
                                                                                  : ax - 0x106);
                set_gpr(kRax, 2, ax);
            }
            set_gpr(kRax, 1, get_gpr(kRax, 1) & 0xf);
            m_cpu.rflags = (f & ~(fl::CF | fl::AF)) | (adjust ? fl::CF | fl::AF : 0);
            break;
        }
        case ZYDIS_MNEMONIC_AAM: {
            const auto base = static_cast<std::uint8_t>(in.op[0].imm);
            if (base == 0) {
                raise(kDe);
            }
            const auto q = static_cast<std::uint8_t>(al / base),
                       r = static_cast<std::uint8_t>(al % base);
            set_gpr(kRax, 2, static_cast<std::uint16_t>((q << 8) | r));
            m_cpu.rflags = (f & ~(fl::SF | fl::ZF | fl::PF)) | szp(r);
            break;
        }
        case ZYDIS_MNEMONIC_AAD: {
            const auto base = static_cast<std::uint8_t>(in.op[0].imm);
            const auto ah = static_cast<std::uint8_t>(gpr(kRax) >> 8);
            const auto r = static_cast<std::uint8_t>(al + ah * base);
            set_gpr(kRax, 2, r);
            m_cpu.rflags = (f & ~(fl::SF | fl::ZF | fl::PF)) | szp(r);
            break;
        }
        case ZYDIS_MNEMONIC_SALC:
            set_gpr(kRax, 1, cf ? 0xff : 0);
            break;
        default:
            return false;
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
