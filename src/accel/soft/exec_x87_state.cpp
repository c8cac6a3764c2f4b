// The x87 register stack (TOP, tags, push/pop, underflow and overflow) and the FNSTENV/FLDENV/
// FNSAVE/FRSTOR environment; the instructions are exec_x87.cpp's.
#include "accel/soft/interpreter_inline.h"
#include "accel/soft/x87_format.h"

namespace vireo::soft {

using namespace x87;

// --- the register stack ---

unsigned Interpreter::x87_top() const {
    return (m_cpu.fsw >> kTopShift) & 7;
}

void Interpreter::x87_set_top(unsigned top) {
    m_cpu.fsw =
        static_cast<std::uint16_t>((m_cpu.fsw & ~(7u << kTopShift)) | ((top & 7) << kTopShift));
}

bool Interpreter::x87_empty(unsigned i) const {
    return (m_cpu.ftw & (1u << ((x87_top() + i) & 7))) == 0;
}

void Interpreter::x87_set_tag(unsigned i, bool valid) {
    const unsigned bit = 1u << ((x87_top() + i) & 7);
    m_cpu.ftw = static_cast<std::uint8_t>(valid ? (m_cpu.ftw | bit) : (m_cpu.ftw & ~bit));
}

long double Interpreter::x87_raw(unsigned i) const {
    f80 v = 0;
    std::memcpy(&v, m_cpu.st[i].data(), 10);
    return v;
}

void Interpreter::x87_put(unsigned i, long double v) {
    m_cpu.st[i].fill(0);
    std::memcpy(m_cpu.st[i].data(), &v, 10);
    x87_set_tag(i, true);
}

// Records the flags an operation raised: exception flags are sticky; an unmasked one sets ES and
// B (the #MF comes at the next waiting instruction).
void Interpreter::x87_flags(std::uint16_t host_sw, std::uint16_t cc_mask) {
    m_cpu.fsw =
        static_cast<std::uint16_t>((m_cpu.fsw & ~cc_mask) | (host_sw & cc_mask) | (host_sw & 0x3f));
    if ((m_cpu.fsw & ~m_cpu.fcw & 0x3f) != 0) {
        m_cpu.fsw |= kFswEs | kFswBusy;
    }
}

// Stack underflow (SDM Vol. 1 §8.5.1.1): IE and SF, C1 = 0.
void Interpreter::x87_underflow() {
    m_cpu.fsw = static_cast<std::uint16_t>((m_cpu.fsw & ~kC1) | kFswIe | kFswSf);
    x87_flags(0, 0);
}

// ST(i) as an operand: an empty register is a stack underflow and reads as the indefinite.
long double Interpreter::x87_get(unsigned i) {
    if (x87_empty(i)) {
        x87_underflow();
        return indefinite();
    }
    return x87_raw(i);
}

// Loads: C1 = 0, or 1 on a stack overflow.
void Interpreter::x87_push(long double v) {
    m_cpu.fsw &= static_cast<std::uint16_t>(~kC1);
    const unsigned top = (x87_top() - 1) & 7;
    const bool overflow = (m_cpu.ftw & (1u << top)) != 0;
    for (unsigned i = 7; i > 0; --i) {
        m_cpu.st[i] = m_cpu.st[i - 1];
    }
    x87_set_top(top);
    if (overflow) {
        // Stack overflow: IE, SF and C1 = 1; the masked response pushes the indefinite.
        m_cpu.fsw |= kFswIe | kFswSf | kC1;
        x87_flags(0, 0);
        v = indefinite();
    }
    x87_put(0, v);
}

void Interpreter::x87_pop() {
    x87_set_tag(0, false);
    const auto st0 = m_cpu.st[0];
    for (unsigned i = 0; i < 7; ++i) {
        m_cpu.st[i] = m_cpu.st[i + 1];
    }
    m_cpu.st[7] = st0;
    x87_set_top(x87_top() + 1);
}

// Waiting x87 instructions first deliver a pending unmasked exception (#MF, SDM Vol. 1 §8.7).
void Interpreter::x87_begin() {
    check_fpu(false);
    if ((m_cpu.fsw & kFswEs) != 0) {
        raise(kMf);
    }
}

// The x87 environment (SDM Vol. 1 §8.1.10, Figures 8-9 to 8-12): 28 bytes with a 32-bit operand
// size (FCW, FSW, FTW, FIP, FCS/FOP, FDP, FDS at 4-byte steps), 14 with a 16-bit one; FNSAVE
// and FRSTOR follow it with ST(0)..ST(7), 10 bytes each. The full tag word has 2 bits per
// physical register: 00 valid, 01 zero, 10 special, 11 empty. FNSTENV then masks every
// exception; FNSAVE then initialises the unit as FNINIT does.
void Interpreter::x87_env(const Insn& in, const Operand& o) {
    const std::uint64_t off = ea(o, in);
    const bool wide = in.opsize != 2;
    const unsigned step = wide ? 4 : 2;
    const unsigned env = wide ? 28 : 14;
    const bool regs = in.mnemonic == ZYDIS_MNEMONIC_FNSAVE || in.mnemonic == ZYDIS_MNEMONIC_FRSTOR;
    std::array<std::uint8_t, 108> img{};
    const unsigned size = env + (regs ? 80 : 0);
    if (in.mnemonic == ZYDIS_MNEMONIC_FNSTENV || in.mnemonic == ZYDIS_MNEMONIC_FNSAVE) {
        std::uint16_t ftw = 0;
        for (unsigned phys = 0; phys < 8; ++phys) {
            unsigned tag = 3;
            if ((m_cpu.ftw & (1u << phys)) != 0) {
                const auto& s = m_cpu.st[(phys - x87_top()) & 7];
                std::uint64_t mant = 0;
                std::uint16_t se = 0;
                std::memcpy(&mant, s.data(), 8);
                std::memcpy(&se, s.data() + 8, 2);
                const unsigned exp = se & 0x7fff;
                if (exp == 0 && mant == 0) {
                    tag = 1;
                } else if (exp == 0x7fff || exp == 0 || (mant >> 63) == 0) {
                    tag = 2;
                } else {
                    tag = 0;
                }
            }
            ftw = static_cast<std::uint16_t>(ftw | (tag << (2 * phys)));
        }
        const std::uint16_t words[3] = {m_cpu.fcw, m_cpu.fsw, ftw};
        for (unsigned i = 0; i < 3; ++i) {
            std::memcpy(img.data() + i * step, &words[i], 2);
            if (wide) {
                img[i * step + 2] = img[i * step + 3] = 0xff;  // reserved, as hardware writes
            }
        }
        if (regs) {
            for (unsigned i = 0; i < 8; ++i) {
                std::memcpy(img.data() + env + 10 * i, m_cpu.st[i].data(), 10);
            }
        }
        m_mmu.write_bytes(linear(o.seg, off), std::span<const std::uint8_t>(img.data(), size),
                          user());
        if (regs) {
            m_cpu.fcw = 0x37f;
            m_cpu.fsw = 0;
            m_cpu.ftw = 0;
            m_cpu.fop = 0;
            m_cpu.fip = m_cpu.fdp = 0;
        } else {
            m_cpu.fcw |= 0x3f;
        }
        return;
    }
    m_mmu.read_bytes(linear(o.seg, off), std::span(img.data(), size), user());
    std::uint16_t fcw = 0, fsw = 0, ftw = 0;
    std::memcpy(&fcw, img.data(), 2);
    std::memcpy(&fsw, img.data() + step, 2);
    std::memcpy(&ftw, img.data() + 2 * step, 2);
    m_cpu.fcw = static_cast<std::uint16_t>(fcw | 0x40);
    m_cpu.fsw = fsw;
    std::uint8_t abridged = 0;
    for (unsigned phys = 0; phys < 8; ++phys) {
        if (((ftw >> (2 * phys)) & 3) != 3) {
            abridged = static_cast<std::uint8_t>(abridged | (1u << phys));
        }
    }
    m_cpu.ftw = abridged;
    if (regs) {
        for (unsigned i = 0; i < 8; ++i) {
            m_cpu.st[i].fill(0);
            std::memcpy(m_cpu.st[i].data(), img.data() + env + 10 * i, 10);
        }
    }
}

}  // namespace vireo::soft
