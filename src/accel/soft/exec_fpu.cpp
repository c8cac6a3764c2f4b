// x87 control and the FXSAVE area (SDM Vol. 1 §8.1, §10.5; Vol. 2: FNINIT, FWAIT, FNSTCW,
// FLDCW, FNSTSW, FNCLEX, FXSAVE, FXRSTOR, LDMXCSR, STMXCSR); x87 arithmetic is exec_x87.cpp's.
// #NM follows CR0.TS/EM (SDM Vol. 3 §2.5, Table 2-2), so a guest's
// lazy FPU switching works.
#include "accel/soft/interpreter_inline.h"

namespace vireo::soft {

namespace {

// MXCSR bits this CPU implements (DAZ included): others set by LDMXCSR/FXRSTOR are #GP.
constexpr std::uint32_t kMxcsrMask = 0xffff;

}  // namespace

void Interpreter::check_fpu(bool sse) {
    if (sse && (m_cpu.cr4 & cr::kCr4Osfxsr) == 0) {
        raise(kUd);
    }
    if ((m_cpu.cr0 & cr::kCr0Em) != 0) {
        if (sse) {
            raise(kUd);
        }
        raise(kNm);
    }
    if ((m_cpu.cr0 & cr::kCr0Ts) != 0) {
        raise(kNm);
    }
}

bool Interpreter::exec_fpu(const Insn& in) {
    const Operand& d = in.op[0];
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_FWAIT:
            // #NM only when both MP and TS are set; no unmasked x87 exception can be pending.
            if ((m_cpu.cr0 & (cr::kCr0Mp | cr::kCr0Ts)) == (cr::kCr0Mp | cr::kCr0Ts)) {
                raise(kNm);
            }
            if ((m_cpu.fsw & 0x80) != 0) {
                raise(kMf);  // FSW.ES: an unmasked x87 exception is pending
            }
            break;
        case ZYDIS_MNEMONIC_FNINIT:
            check_fpu(false);
            m_cpu.fcw = 0x37f;
            m_cpu.fsw = 0;
            m_cpu.ftw = 0;
            m_cpu.fop = 0;
            m_cpu.fip = m_cpu.fdp = 0;
            break;
        case ZYDIS_MNEMONIC_FNCLEX:
            check_fpu(false);
            m_cpu.fsw &= 0x7f00;  // clears PE UE OE ZE DE IE, SF, ES and B
            break;
        case ZYDIS_MNEMONIC_FNSTCW:
            check_fpu(false);
            mem_write(d.seg, ea(d, in), 2, m_cpu.fcw);
            break;
        case ZYDIS_MNEMONIC_FLDCW:
            check_fpu(false);
            m_cpu.fcw = static_cast<std::uint16_t>(mem_read(d.seg, ea(d, in), 2) | 0x40);
            break;
        case ZYDIS_MNEMONIC_FNSTSW:
            check_fpu(false);
            wr(d, in, m_cpu.fsw);
            break;
        case ZYDIS_MNEMONIC_LDMXCSR:
        case ZYDIS_MNEMONIC_STMXCSR:
            check_fpu(true);
            if (in.mnemonic == ZYDIS_MNEMONIC_STMXCSR) {
                mem_write(d.seg, ea(d, in), 4, m_cpu.mxcsr);
            } else {
                const auto v = static_cast<std::uint32_t>(mem_read(d.seg, ea(d, in), 4));
                if ((v & ~kMxcsrMask) != 0) {
                    raise(kGp, 0);
                }
                m_cpu.mxcsr = v;
            }
            break;
        case ZYDIS_MNEMONIC_FXSAVE:
        case ZYDIS_MNEMONIC_FXSAVE64:
        case ZYDIS_MNEMONIC_FXRSTOR:
        case ZYDIS_MNEMONIC_FXRSTOR64: {
            // Needs CR0.TS/EM clear (#NM) but not CR4.OSFXSR; the area is 512 bytes, 16-aligned.
            if ((m_cpu.cr0 & (cr::kCr0Ts | cr::kCr0Em)) != 0) {
                raise(kNm);
            }
            const std::uint64_t off = ea(d, in);
            if ((linear(d.seg, off) & 15) != 0) {
                raise(kGp, 0);
            }
            // The FXSAVE image (SDM Vol. 1 Table 10-2): FCW 0, FSW 2, FTW 4, FOP 6, FIP 8, FDP 16,
            // MXCSR 24, MXCSR_MASK 28, ST0-7 at 32 (16 bytes each), XMM0-15 at 160.
            std::array<std::uint8_t, 512> img{};
            const bool save =
                in.mnemonic == ZYDIS_MNEMONIC_FXSAVE || in.mnemonic == ZYDIS_MNEMONIC_FXSAVE64;
            auto put = [&](std::size_t at, std::uint64_t v, std::size_t n) {
                std::memcpy(img.data() + at, &v, n);
            };
            auto get = [&](std::size_t at, std::size_t n) {
                std::uint64_t v = 0;
                std::memcpy(&v, img.data() + at, n);
                return v;
            };
            const unsigned nxmm = long64() ? 16 : 8;
            if (save) {
                put(0, m_cpu.fcw, 2);
                put(2, m_cpu.fsw, 2);
                put(4, m_cpu.ftw, 1);
                put(6, m_cpu.fop, 2);
                put(8, m_cpu.fip, 8);
                put(16, m_cpu.fdp, 8);
                put(24, m_cpu.mxcsr, 4);
                put(28, kMxcsrMask, 4);
                for (unsigned i = 0; i < 8; ++i) {
                    std::memcpy(img.data() + 32 + 16 * i, m_cpu.st[i].data(), 16);
                }
                for (unsigned i = 0; i < nxmm; ++i) {
                    std::memcpy(img.data() + 160 + 16 * i, m_cpu.xmm[i].data(), 16);
                }
                m_mmu.write_bytes(linear(d.seg, off),
                                  std::span<const std::uint8_t>(img.data(), 416), user());
            } else {
                m_mmu.read_bytes(linear(d.seg, off), std::span(img.data(), 416), user());
                const auto mx = static_cast<std::uint32_t>(get(24, 4));
                if ((mx & ~kMxcsrMask) != 0) {
                    raise(kGp, 0);
                }
                m_cpu.fcw = static_cast<std::uint16_t>(get(0, 2));
                m_cpu.fsw = static_cast<std::uint16_t>(get(2, 2));
                m_cpu.ftw = static_cast<std::uint8_t>(get(4, 1));
                m_cpu.fop = static_cast<std::uint16_t>(get(6, 2));
                m_cpu.fip = get(8, 8);
                m_cpu.fdp = get(16, 8);
                m_cpu.mxcsr = mx;
                for (unsigned i = 0; i < 8; ++i) {
                    std::memcpy(m_cpu.st[i].data(), img.data() + 32 + 16 * i, 16);
                }
                for (unsigned i = 0; i < nxmm; ++i) {
                    std::memcpy(m_cpu.xmm[i].data(), img.data() + 160 + 16 * i, 16);
                }
            }
            break;
        }
        case ZYDIS_MNEMONIC_EMMS:
            check_fpu(false);
            m_cpu.ftw = 0;
            break;
        default:
            return exec_x87(in);
    }
    m_cpu.rip = next_rip(in);
    return true;
}

}  // namespace vireo::soft
