#include "snippet_gen.h"

#include <fmt/format.h>

namespace vireo::soft::test {

namespace {

class Gen {
public:
    explicit Gen(std::mt19937_64& rng) : m_rng(rng) {}

    unsigned pick(unsigned n) { return static_cast<unsigned>(m_rng() % n); }
    bool coin() { return (m_rng() & 1) != 0; }

    // A GPR number for a register operand: not RSP (4) or R15; for byte operands without REX,
    // 4..7 are AH..BH and all usable.
    unsigned reg(unsigned size, bool rex) {
        for (;;) {
            const unsigned r = pick(rex ? 15 : 8);
            if (r == 4 && (size != 1 || rex)) {
                continue;
            }
            return r;
        }
    }

    // Emits one ModRM instruction. `digit` >= 0 fixes the reg field (/digit); `mem` picks
    // [R15 + disp8] for r/m; `imm` bytes of immediate follow.
    void modrm(std::vector<std::uint8_t>& out, std::initializer_list<std::uint8_t> opcode,
               unsigned size, int digit, bool mem, unsigned imm, std::uint8_t prefix = 0) {
        // Byte operands: with a REX prefix 4..7 are SPL..DIL, without it AH..BH.
        const bool rex_wanted = size == 8 || mem || (size == 1 ? coin() : pick(4) != 0);
        const unsigned r = digit >= 0 ? static_cast<unsigned>(digit) : reg(size, rex_wanted);
        const unsigned rm = mem ? 15 : reg(size, rex_wanted);
        std::uint8_t rex = 0x40;
        if (size == 8) {
            rex |= 8;
        }
        if (r >= 8) {
            rex |= 4;
        }
        if (rm >= 8) {
            rex |= 1;
        }
        if (size == 2) {
            out.push_back(0x66);
        }
        if (prefix) {
            out.push_back(prefix);
        }
        if (rex_wanted || rex != 0x40) {
            out.push_back(rex);
        }
        out.insert(out.end(), opcode.begin(), opcode.end());
        out.push_back(static_cast<std::uint8_t>((mem ? 0x40 : 0xc0) | ((r & 7) << 3) | (rm & 7)));
        if (mem) {
            out.push_back(static_cast<std::uint8_t>(pick(120)));
        }
        for (unsigned i = 0; i < imm; ++i) {
            out.push_back(static_cast<std::uint8_t>(m_rng()));
        }
    }

    unsigned size() {
        static constexpr unsigned kSizes[] = {1, 2, 4, 8};
        return kSizes[pick(4)];
    }
    unsigned wide_size() {
        static constexpr unsigned kSizes[] = {2, 4, 8};
        return kSizes[pick(3)];
    }
    static unsigned imm_z(unsigned size) { return size == 2 ? 2 : 4; }

private:
    std::mt19937_64& m_rng;
};

void alu(Gen& g, Snippet& s) {
    const auto op = static_cast<std::uint8_t>(g.pick(8));  // ADD OR ADC SBB AND SUB XOR CMP
    const unsigned size = g.size();
    const bool mem = g.pick(3) == 0;
    const std::uint8_t lock = (mem && op != 7 && g.coin()) ? 0xf0 : 0;
    const std::uint8_t w = size == 1 ? 0 : 1;
    switch (g.pick(7)) {
        case 0:  // op r/m, r
            g.modrm(s.code, {static_cast<std::uint8_t>(op * 8 + w)}, size, -1, mem, 0, lock);
            break;
        case 1:  // op r, r/m
            g.modrm(s.code, {static_cast<std::uint8_t>(op * 8 + 2 + w)}, size, -1, mem, 0);
            break;
        case 2:  // op r/m, imm
            if (size == 1) {
                g.modrm(s.code, {0x80}, 1, op, mem, 1, lock);
            } else if (g.coin()) {
                g.modrm(s.code, {0x83}, size, op, mem, 1, lock);
            } else {
                g.modrm(s.code, {0x81}, size, op, mem, Gen::imm_z(size), lock);
            }
            break;
        case 3:  // TEST r/m, r | TEST r/m, imm
            if (g.coin()) {
                g.modrm(s.code, {static_cast<std::uint8_t>(0x84 + w)}, size, -1, mem, 0);
            } else {
                g.modrm(s.code, {static_cast<std::uint8_t>(0xf6 + w)}, size, 0, mem,
                        size == 1 ? 1 : Gen::imm_z(size));
            }
            break;
        case 4:  // NOT / NEG
            g.modrm(s.code, {static_cast<std::uint8_t>(0xf6 + w)}, size,
                    2 + static_cast<int>(g.pick(2)), mem, 0, mem && g.coin() ? 0xf0 : 0);
            break;
        case 5:  // INC / DEC
            g.modrm(s.code, {static_cast<std::uint8_t>(0xfe + w)}, size,
                    static_cast<int>(g.pick(2)), mem, 0, mem && g.coin() ? 0xf0 : 0);
            break;
        default:  // op AL/eAX, imm
            if (size == 2) {
                s.code.push_back(0x66);
            } else if (size == 8) {
                s.code.push_back(0x48);
            }
            s.code.push_back(static_cast<std::uint8_t>(op * 8 + 4 + w));
            for (unsigned i = 0; i < (size == 1 ? 1 : Gen::imm_z(size)); ++i) {
                s.code.push_back(static_cast<std::uint8_t>(g.pick(256)));
            }
            break;
    }
}

void shift(Gen& g, Snippet& s) {
    const unsigned size = g.size();
    const bool mem = g.pick(3) == 0;
    const std::uint8_t w = size == 1 ? 0 : 1;
    static constexpr int kOps[] = {0, 1, 2, 3, 4, 5, 7};
    const int op = kOps[g.pick(7)];
    switch (g.pick(4)) {
        case 0:
            g.modrm(s.code, {static_cast<std::uint8_t>(0xc0 + w)}, size, op, mem, 1);
            break;
        case 1:
            g.modrm(s.code, {static_cast<std::uint8_t>(0xd0 + w)}, size, op, mem, 0);
            break;
        case 2:
            g.modrm(s.code, {static_cast<std::uint8_t>(0xd2 + w)}, size, op, mem, 0);
            break;
        default: {
            const unsigned ws = g.wide_size();
            const std::uint8_t opc =
                static_cast<std::uint8_t>((g.coin() ? 0xa4 : 0xac) + (g.coin() ? 1 : 0));
            g.modrm(s.code, {0x0f, opc}, ws, -1, mem, (opc & 1) ? 0 : 1);
            break;
        }
    }
}

void muldiv(Gen& g, Snippet& s) {
    const unsigned size = g.size();
    const bool mem = g.pick(3) == 0;
    switch (g.pick(3)) {
        case 0: {
            const int op = 4 + static_cast<int>(g.pick(4));  // MUL IMUL DIV IDIV
            g.modrm(s.code, {static_cast<std::uint8_t>(size == 1 ? 0xf6 : 0xf7)}, size, op, mem, 0);
            s.divide = op >= 6;
            break;
        }
        case 1:
            g.modrm(s.code, {0x0f, 0xaf}, g.wide_size(), -1, mem, 0);
            break;
        default: {
            const unsigned ws = g.wide_size();
            if (g.coin()) {
                g.modrm(s.code, {0x6b}, ws, -1, mem, 1);
            } else {
                g.modrm(s.code, {0x69}, ws, -1, mem, Gen::imm_z(ws));
            }
            break;
        }
    }
}

void bits(Gen& g, Snippet& s) {
    const unsigned ws = g.wide_size();
    const bool mem = g.pick(3) == 0;
    switch (g.pick(3)) {
        case 0: {  // BT/BTS/BTR/BTC r/m, r (register destination only: a register bit offset
                   // would address outside the scratch buffer)
            static constexpr std::uint8_t kOps[] = {0xa3, 0xab, 0xb3, 0xbb};
            g.modrm(s.code, {0x0f, kOps[g.pick(4)]}, ws, -1, false, 0);
            break;
        }
        case 1:  // BT/BTS/BTR/BTC r/m, imm8
            g.modrm(s.code, {0x0f, 0xba}, ws, 4 + static_cast<int>(g.pick(4)), mem, 1,
                    mem && g.coin() ? 0xf0 : 0);
            break;
        default:  // BSF / BSR
            g.modrm(s.code, {0x0f, static_cast<std::uint8_t>(0xbc + g.pick(2))}, ws, -1, mem, 0);
            break;
    }
}

void move(Gen& g, Snippet& s) {
    const unsigned size = g.size();
    const unsigned ws = g.wide_size();
    const bool mem = g.pick(3) == 0;
    const std::uint8_t w = size == 1 ? 0 : 1;
    switch (g.pick(15)) {
        case 0:
            g.modrm(s.code, {static_cast<std::uint8_t>(0x88 + w + 2 * g.pick(2))}, size, -1, mem,
                    0);
            break;
        case 1:
            g.modrm(s.code, {static_cast<std::uint8_t>(0xc6 + w)}, size, 0, mem,
                    size == 1 ? 1 : Gen::imm_z(size));
            break;
        case 2:
            g.modrm(s.code, {0x0f, static_cast<std::uint8_t>(0xb6 + g.pick(2) + 8 * g.pick(2))}, ws,
                    -1, mem, 0);
            break;
        case 3:
            g.modrm(s.code, {0x63}, 8, -1, mem, 0);
            break;
        case 4:
            g.modrm(s.code, {static_cast<std::uint8_t>(0x86 + w)}, size, -1, mem, 0);
            break;
        case 5:
            g.modrm(s.code, {0x0f, static_cast<std::uint8_t>(0xb0 + w)}, size, -1, mem, 0,
                    mem && g.coin() ? 0xf0 : 0);
            break;
        case 6:
            g.modrm(s.code, {0x0f, static_cast<std::uint8_t>(0xc0 + w)}, size, -1, mem, 0,
                    mem && g.coin() ? 0xf0 : 0);
            break;
        case 7:
            g.modrm(s.code, {0x0f, static_cast<std::uint8_t>(0x40 + g.pick(16))}, ws, -1, mem, 0);
            break;
        case 8:
            g.modrm(s.code, {0x0f, static_cast<std::uint8_t>(0x90 + g.pick(16))}, 1, 0, mem, 0);
            break;
        case 9: {  // BSWAP r32/r64
            const unsigned r = g.reg(4, true);
            s.code.push_back(
                static_cast<std::uint8_t>(0x40 | (g.coin() ? 8 : 0) | (r >= 8 ? 1 : 0)));
            s.code.push_back(0x0f);
            s.code.push_back(static_cast<std::uint8_t>(0xc8 + (r & 7)));
            break;
        }
        case 10: {  // CBW/CWDE/CDQE, CWD/CDQ/CQO
            if (ws == 2) {
                s.code.push_back(0x66);
            } else if (ws == 8) {
                s.code.push_back(0x48);
            }
            s.code.push_back(static_cast<std::uint8_t>(0x98 + g.pick(2)));
            break;
        }
        case 11: {  // SAHF LAHF CMC CLC STC
            static constexpr std::uint8_t kOps[] = {0x9e, 0x9f, 0xf5, 0xf8, 0xf9};
            s.code.push_back(kOps[g.pick(5)]);
            break;
        }
        case 12: {  // LEA r, [base + disp] with a base other than RSP/R12 (SIB) and R15
            unsigned base;
            do {
                base = g.pick(15);
            } while (base == 4 || base == 12);
            const unsigned r = g.reg(8, true);
            const bool d32 = g.coin();
            if (ws == 2) {
                s.code.push_back(0x66);
            }
            s.code.push_back(static_cast<std::uint8_t>(0x40 | (ws == 8 ? 8 : 0) | (r >= 8 ? 4 : 0) |
                                                       (base >= 8 ? 1 : 0)));
            s.code.push_back(0x8d);
            s.code.push_back(
                static_cast<std::uint8_t>((d32 ? 0x80 : 0x40) | ((r & 7) << 3) | (base & 7)));
            for (unsigned i = 0; i < (d32 ? 4u : 1u); ++i) {
                s.code.push_back(static_cast<std::uint8_t>(g.pick(256)));
            }
            break;
        }
        case 13: {  // [LOCK] CMPXCHG8B / CMPXCHG16B [R15 + disp8]
            s.wide = g.coin();
            const unsigned disp = s.wide ? (g.pick(8) == 0 ? 8 : 16 * g.pick(7)) : g.pick(15) * 8;
            if (g.coin()) {
                s.code.push_back(0xf0);
            }
            s.code.insert(s.code.end(), {static_cast<std::uint8_t>(s.wide ? 0x49 : 0x41), 0x0f,
                                         0xc7, 0x4f, static_cast<std::uint8_t>(disp)});
            s.cmpxchg_disp = static_cast<int>(disp);
            break;
        }
        default: {  // MOV r, imm (B8+r), imm64 with REX.W
            const unsigned r = g.reg(4, true);
            const bool wide = g.coin();
            s.code.push_back(static_cast<std::uint8_t>(0x40 | (wide ? 8 : 0) | (r >= 8 ? 1 : 0)));
            s.code.push_back(static_cast<std::uint8_t>(0xb8 + (r & 7)));
            for (unsigned i = 0; i < (wide ? 8u : 4u); ++i) {
                s.code.push_back(static_cast<std::uint8_t>(g.pick(256)));
            }
            break;
        }
    }
}

void string_op(Gen& g, Snippet& s) {
    s.string_op = true;
    static constexpr std::uint8_t kOps[] = {0xa4, 0xaa, 0xac, 0xa6,
                                            0xae};  // MOVS STOS LODS CMPS SCAS
    const std::uint8_t op = kOps[g.pick(5)];
    const unsigned size = g.size();
    if (size == 2) {
        s.code.push_back(0x66);
    }
    const unsigned rep = g.pick(3);
    if (rep == 1) {
        s.code.push_back(0xf3);
    } else if (rep == 2) {
        s.code.push_back(0xf2);
    }
    if (size == 8) {
        s.code.push_back(0x48);
    }
    s.code.push_back(static_cast<std::uint8_t>(op + (size == 1 ? 0 : 1)));
}

// Balanced stack sequences: what goes on the stack comes off again, so RSP (the harness's own
// stack natively, the guest stack in the interpreter) ends where it started.
void stack(Gen& g, Snippet& s) {
    auto reg_byte = [&](std::uint8_t base, unsigned r) {
        if (r >= 8) {
            s.code.push_back(0x41);
        }
        s.code.push_back(static_cast<std::uint8_t>(base + (r & 7)));
    };
    switch (g.pick(6)) {
        case 0:  // push r; pop r2
            reg_byte(0x50, g.reg(8, true));
            reg_byte(0x58, g.reg(8, true));
            break;
        case 1:  // push imm8/imm32; pop r
            if (g.coin()) {
                s.code.insert(s.code.end(), {0x6a, static_cast<std::uint8_t>(g.pick(256))});
            } else {
                s.code.push_back(0x68);
                for (int i = 0; i < 4; ++i) {
                    s.code.push_back(static_cast<std::uint8_t>(g.pick(256)));
                }
            }
            reg_byte(0x58, g.reg(8, true));
            break;
        case 2:  // pushfq; pop r
            s.code.push_back(0x9c);
            reg_byte(0x58, g.reg(8, true));
            break;
        case 3:  // push qword [r15+d]; pop qword [r15+d2]
            s.code.insert(s.code.end(), {0x41, 0xff, 0x77, static_cast<std::uint8_t>(g.pick(120))});
            s.code.insert(s.code.end(), {0x41, 0x8f, 0x47, static_cast<std::uint8_t>(g.pick(120))});
            break;
        case 4:  // 66 push r16; 66 pop r16
            s.code.push_back(0x66);
            reg_byte(0x50, g.reg(8, true));
            s.code.push_back(0x66);
            reg_byte(0x58, g.reg(8, true));
            break;
        default: {  // push r; push r2; xchg r3, [rsp]; pop r4; pop r5
            reg_byte(0x50, g.reg(8, true));
            reg_byte(0x50, g.reg(8, true));
            const unsigned r3 = g.reg(8, true);
            s.code.insert(s.code.end(), {static_cast<std::uint8_t>(0x48 | (r3 >= 8 ? 4 : 0)), 0x87,
                                         static_cast<std::uint8_t>(0x04 | ((r3 & 7) << 3)), 0x24});
            reg_byte(0x58, g.reg(8, true));
            reg_byte(0x58, g.reg(8, true));
            break;
        }
    }
}

// SSE2 moves and integer/logic operations: [66|F3] [REX] 0F op ModRM [disp8] [imm8], XMM
// registers 0-15 and [R15 + disp8] (16-aligned most of the time; a misaligned legacy-SSE
// operand must #GP on both sides).
void sse(Gen& g, Snippet& s) {
    struct Op {
        std::uint8_t prefix, opcode;
        bool imm8;
        int gpr;  // 0: reg and r/m are XMM; 1: r/m may be a GPR (MOVD/MOVQ); 2: reg is a GPR
    };
    static constexpr Op kOps[] = {
        {0x66, 0x6f, false, 0},
        {0xf3, 0x6f, false, 0},
        {0x66, 0x7f, false, 0},
        {0xf3, 0x7f, false, 0},
        {0x00, 0x28, false, 0},
        {0x00, 0x29, false, 0},
        {0x00, 0x10, false, 0},
        {0x00, 0x11, false, 0},
        {0x66, 0x28, false, 0},
        {0x66, 0x10, false, 0},
        {0x66, 0x6e, false, 1},
        {0x66, 0x7e, false, 1},
        {0xf3, 0x7e, false, 0},
        {0x66, 0xd6, false, 0},
        {0x66, 0xef, false, 0},
        {0x00, 0x57, false, 0},
        {0x66, 0x57, false, 0},
        {0x66, 0xdb, false, 0},
        {0x00, 0x54, false, 0},
        {0x66, 0xeb, false, 0},
        {0x00, 0x56, false, 0},
        {0x66, 0xdf, false, 0},
        {0x00, 0x55, false, 0},
        {0x66, 0x74, false, 0},
        {0x66, 0x75, false, 0},
        {0x66, 0x76, false, 0},
        {0x66, 0xd7, false, 2},
        {0x66, 0xfc, false, 0},
        {0x66, 0xfd, false, 0},
        {0x66, 0xfe, false, 0},
        {0x66, 0xd4, false, 0},
        {0x66, 0xf8, false, 0},
        {0x66, 0xf9, false, 0},
        {0x66, 0xfa, false, 0},
        {0x66, 0xfb, false, 0},
        {0x66, 0x70, true, 0},
        {0x66, 0x60, false, 0},
        {0x66, 0x61, false, 0},
        {0x66, 0x62, false, 0},
        {0x66, 0x6c, false, 0},
        {0x66, 0xda, false, 0},
        {0x66, 0xde, false, 0},
        // exec_sse_fp.cpp: FP arithmetic, conversions, unpacks, the integer rest, shuffles,
        // (U)COMISS/SD.
        {0x00, 0x58, false, 0},
        {0x66, 0x58, false, 0},
        {0xf3, 0x58, false, 0},
        {0xf2, 0x58, false, 0},
        {0x00, 0x59, false, 0},
        {0x66, 0x59, false, 0},
        {0xf3, 0x59, false, 0},
        {0xf2, 0x59, false, 0},
        {0x00, 0x5c, false, 0},
        {0x66, 0x5c, false, 0},
        {0xf3, 0x5c, false, 0},
        {0xf2, 0x5c, false, 0},
        {0x00, 0x5d, false, 0},
        {0x66, 0x5d, false, 0},
        {0xf3, 0x5d, false, 0},
        {0xf2, 0x5d, false, 0},
        {0x00, 0x5e, false, 0},
        {0x66, 0x5e, false, 0},
        {0xf3, 0x5e, false, 0},
        {0xf2, 0x5e, false, 0},
        {0x00, 0x5f, false, 0},
        {0x66, 0x5f, false, 0},
        {0xf3, 0x5f, false, 0},
        {0xf2, 0x5f, false, 0},
        {0x00, 0x51, false, 0},
        {0x66, 0x51, false, 0},
        {0xf3, 0x51, false, 0},
        {0xf2, 0x51, false, 0},
        {0x00, 0x5a, false, 0},
        {0x66, 0x5a, false, 0},
        {0xf3, 0x5a, false, 0},
        {0xf2, 0x5a, false, 0},
        {0x00, 0x5b, false, 0},
        {0x66, 0x5b, false, 0},
        {0xf3, 0x5b, false, 0},
        {0x66, 0xe6, false, 0},
        {0xf3, 0xe6, false, 0},
        {0xf2, 0xe6, false, 0},
        {0x00, 0x14, false, 0},
        {0x00, 0x15, false, 0},
        {0x66, 0x14, false, 0},
        {0x66, 0x15, false, 0},
        {0x66, 0x68, false, 0},
        {0x66, 0x69, false, 0},
        {0x66, 0x6a, false, 0},
        {0x66, 0x6d, false, 0},
        {0x66, 0x64, false, 0},
        {0x66, 0x65, false, 0},
        {0x66, 0x66, false, 0},
        {0x66, 0xee, false, 0},
        {0x66, 0xea, false, 0},
        {0x66, 0xdc, false, 0},
        {0x66, 0xdd, false, 0},
        {0x66, 0xd8, false, 0},
        {0x66, 0xd9, false, 0},
        {0x66, 0xec, false, 0},
        {0x66, 0xed, false, 0},
        {0x66, 0xe8, false, 0},
        {0x66, 0xe9, false, 0},
        {0x66, 0x67, false, 0},
        {0x66, 0x63, false, 0},
        {0x66, 0x6b, false, 0},
        {0x66, 0xd5, false, 0},
        {0x66, 0xe5, false, 0},
        {0x66, 0xe4, false, 0},
        {0x66, 0xf4, false, 0},
        {0x66, 0xf5, false, 0},
        {0x66, 0xe0, false, 0},
        {0x66, 0xe3, false, 0},
        {0x66, 0xf6, false, 0},
        {0x66, 0xd1, false, 0},
        {0x66, 0xd2, false, 0},
        {0x66, 0xd3, false, 0},
        {0x66, 0xf1, false, 0},
        {0x66, 0xf2, false, 0},
        {0x66, 0xf3, false, 0},
        {0x66, 0xe1, false, 0},
        {0x66, 0xe2, false, 0},
        {0x00, 0xc6, true, 0},
        {0x66, 0xc6, true, 0},
        {0xf2, 0x70, true, 0},
        {0xf3, 0x70, true, 0},
        {0x00, 0x2e, false, 0},
        {0x66, 0x2e, false, 0},
        {0x00, 0x2f, false, 0},
        {0x66, 0x2f, false, 0},
        // Partial moves, immediate shifts, GPR conversions, MOVMSKPS/PD, PEXTRW/PINSRW.
        {0xf3, 0x10, false, 0},
        {0xf3, 0x11, false, 0},
        {0xf2, 0x10, false, 0},
        {0xf2, 0x11, false, 0},
        {0x00, 0x12, false, 0},
        {0x00, 0x13, false, 0},
        {0x00, 0x16, false, 0},
        {0x00, 0x17, false, 0},
        {0x66, 0x12, false, 0},
        {0x66, 0x13, false, 0},
        {0x66, 0x16, false, 0},
        {0x66, 0x17, false, 0},
        {0x66, 0x71, true, 0},
        {0x66, 0x72, true, 0},
        {0x66, 0x73, true, 0},
        {0xf3, 0x2a, false, 1},
        {0xf2, 0x2a, false, 1},
        {0xf3, 0x2c, false, 2},
        {0xf3, 0x2d, false, 2},
        {0xf2, 0x2c, false, 2},
        {0xf2, 0x2d, false, 2},
        {0x00, 0x50, false, 2},
        {0x66, 0x50, false, 2},
        {0x66, 0xc5, true, 2},
        {0x66, 0xc4, true, 1},
    };
    const Op& op = kOps[g.pick(std::size(kOps))];
    const bool mem = op.gpr != 2 && g.pick(3) == 0;
    const unsigned reg = op.gpr == 2 ? g.reg(4, true) : g.pick(16);
    const unsigned rm = mem ? 15 : (op.gpr == 1 ? g.reg(8, true) : g.pick(16));
    const bool w = op.gpr == 1 && g.coin();  // MOVQ with a GPR or m64
    if (op.prefix) {
        s.code.push_back(op.prefix);
    }
    const std::uint8_t rex =
        static_cast<std::uint8_t>(0x40 | (w ? 8 : 0) | (reg >= 8 ? 4 : 0) | (rm >= 8 ? 1 : 0));
    if (rex != 0x40) {
        s.code.push_back(rex);
    }
    s.code.insert(s.code.end(), {0x0f, op.opcode});
    s.code.push_back(static_cast<std::uint8_t>((mem ? 0x40 : 0xc0) | ((reg & 7) << 3) | (rm & 7)));
    if (mem) {
        s.code.push_back(static_cast<std::uint8_t>(g.pick(8) == 0 ? g.pick(112) : 16 * g.pick(7)));
    }
    if (op.imm8) {
        s.code.push_back(static_cast<std::uint8_t>(g.pick(256)));
    }
}

// x87: FNINIT; sometimes FLDCW with a random rounding and precision control (exceptions masked);
// two loads of random buffer bytes in a random format (m32/m64/m80 real, m16/m32/m64 integer) or
// a constant; one operation (arithmetic in every form, compare, unary, transcendental, FXCH,
// FCMOVcc, stores to memory, FFREE, FINCSTP/FDECSTP) on ST(0), ST(1) or the empty ST(2); FNSTSW
// AX (condition codes, exception flags, TOP); two FSTP m80 of what is left (the values, bit for
// bit, or the indefinite of an underflow); FNINIT, so the host process gets its x87 back.
// Memory at [R15 + 0..63] is read, [R15 + 64..95] written.
void x87(Gen& g, Snippet& s) {
    auto& c = s.code;
    auto mem_op = [&](std::uint8_t opcode, unsigned digit, unsigned disp) {
        c.insert(c.end(), {0x41, opcode, static_cast<std::uint8_t>(0x47 | (digit << 3)),
                           static_cast<std::uint8_t>(disp)});
    };
    auto load = [&] {
        // (opcode, /digit): FLD m32, m64, m80; FILD m16, m32, m64.
        static constexpr std::uint8_t kLoads[][2] = {{0xd9, 0}, {0xdd, 0}, {0xdb, 5},
                                                     {0xdf, 0}, {0xdb, 0}, {0xdf, 5}};
        if (g.pick(8) == 0) {
            c.insert(c.end(), {0xd9, static_cast<std::uint8_t>(0xe8 + g.pick(7))});  // FLD1..FLDZ
            return;
        }
        const auto& l = kLoads[g.pick(6)];
        mem_op(l[0], l[1], 8 * g.pick(7));
    };
    c.insert(c.end(), {0xdb, 0xe3});  // fninit
    if (g.coin()) {
        static constexpr unsigned kPc[] = {0, 2, 3};
        const unsigned cw = 0x3f | (kPc[g.pick(3)] << 8) | (g.pick(4) << 10);
        // mov word [r15 + 88], cw; fldcw [r15 + 88]
        c.insert(c.end(), {0x66, 0x41, 0xc7, 0x47, 88, static_cast<std::uint8_t>(cw),
                           static_cast<std::uint8_t>(cw >> 8)});
        mem_op(0xd9, 5, 88);
    }
    load();
    load();
    const auto i = static_cast<std::uint8_t>(g.pick(3));  // ST(i), ST(2) empty
    switch (g.pick(10)) {
        case 0:
        case 1: {
            // D8 (ST(0) op= ST(i)), DC (ST(i) op= ST(0)), DE (the same and pop): /0 add, /1 mul,
            // /2 com, /3 comp (D8 only), /4-7 sub, subr, div, divr.
            static constexpr std::uint8_t kOps[] = {0xd8, 0xdc, 0xde};
            const std::uint8_t op = kOps[g.pick(3)];
            unsigned digit = g.pick(8);
            if (op != 0xd8 && (digit == 2 || digit == 3)) {
                digit = 0;
            }
            c.insert(c.end(), {op, static_cast<std::uint8_t>(0xc0 | (digit << 3) | i)});
            break;
        }
        case 2: {
            // Memory operand: D8 m32, DC m64, DA m32int, DE m16int, /0-/7 as above.
            static constexpr std::uint8_t kOps[] = {0xd8, 0xdc, 0xda, 0xde};
            mem_op(kOps[g.pick(4)], g.pick(8), 8 * g.pick(7));
            break;
        }
        case 3:
        case 4: {
            // D9 E0-FF but the reserved E2, E3, E6, E7, EF: FCHS ... FCOS.
            static constexpr std::uint8_t kOps[] = {
                0xe0, 0xe1, 0xe4, 0xe5, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xf0, 0xf1, 0xf2,
                0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff};
            c.insert(c.end(), {0xd9, kOps[g.pick(std::size(kOps))]});
            break;
        }
        case 5: {
            // Compares: FUCOM(P) DD E0/E8, FUCOMPP DA E9, FCOMPP DE D9, F(U)COMI(P) DB/DF E8/F0.
            static constexpr std::uint8_t kOps[][2] = {{0xdd, 0xe0}, {0xdd, 0xe8}, {0xdb, 0xe8},
                                                       {0xdb, 0xf0}, {0xdf, 0xe8}, {0xdf, 0xf0}};
            if (g.pick(4) == 0) {
                if (g.coin()) {
                    c.insert(c.end(), {0xda, 0xe9});
                } else {
                    c.insert(c.end(), {0xde, 0xd9});
                }
            } else {
                const auto& o = kOps[g.pick(6)];
                c.insert(c.end(), {o[0], static_cast<std::uint8_t>(o[1] + i)});
            }
            break;
        }
        case 6: {
            // FCMOVcc: DA C0-DF, DB C0-DF.
            c.insert(c.end(), {g.coin() ? std::uint8_t{0xda} : std::uint8_t{0xdb},
                               static_cast<std::uint8_t>(0xc0 + 8 * g.pick(4) + i)});
            break;
        }
        case 7: {
            // Stores: FST/FSTP m32 (D9 /2 /3), m64 (DD /2 /3); FIST/FISTP m16 (DF /2 /3),
            // m32 (DB /2 /3), FISTP m64 (DF /7), FISTTP m16/m32/m64 (DF /1, DB /1, DD /1).
            static constexpr std::uint8_t kStores[][2] = {
                {0xd9, 2}, {0xd9, 3}, {0xdd, 2}, {0xdd, 3}, {0xdf, 2}, {0xdf, 3},
                {0xdb, 2}, {0xdb, 3}, {0xdf, 7}, {0xdf, 1}, {0xdb, 1}, {0xdd, 1}};
            const auto& st = kStores[g.pick(12)];
            mem_op(st[0], st[1], 64 + 8 * g.pick(2));
            break;
        }
        case 8: {
            // Register moves: FLD ST(i) D9 C0, FXCH D9 C8, FST DD D0, FSTP DD D8, FFREE DD C0.
            static constexpr std::uint8_t kOps[][2] = {
                {0xd9, 0xc0}, {0xd9, 0xc8}, {0xdd, 0xd0}, {0xdd, 0xd8}, {0xdd, 0xc0}};
            const auto& o = kOps[g.pick(5)];
            c.insert(c.end(), {o[0], static_cast<std::uint8_t>(o[1] + i)});
            break;
        }
        default:
            // FCOM/FCOMP ST(i): D8 D0+i, D8 D8+i.
            c.insert(c.end(), {0xd8, static_cast<std::uint8_t>((g.coin() ? 0xd0 : 0xd8) + i)});
            break;
    }
    c.insert(c.end(), {0xdf, 0xe0});  // fnstsw ax
    mem_op(0xdb, 7, 72);              // fstp m80 [r15 + 72]
    mem_op(0xdb, 7, 82);              // fstp m80 [r15 + 82]
    c.insert(c.end(), {0xdb, 0xe3});  // fninit
}

}  // namespace

Snippet generate(Group grp, std::mt19937_64& rng) {
    Gen g(rng);
    Snippet s;
    switch (grp) {
        case Group::Alu:
            alu(g, s);
            break;
        case Group::Shift:
            shift(g, s);
            break;
        case Group::MulDiv:
            muldiv(g, s);
            break;
        case Group::Bits:
            bits(g, s);
            break;
        case Group::Move:
            move(g, s);
            break;
        case Group::String:
            string_op(g, s);
            break;
        case Group::Stack:
            stack(g, s);
            break;
        case Group::Sse:
            sse(g, s);
            break;
        case Group::X87:
            x87(g, s);
            break;
    }
    return s;
}

std::string to_string(Group g) {
    static const char* kNames[] = {"alu",    "shift", "muldiv", "bits", "move",
                                   "string", "stack", "sse",    "x87"};
    return kNames[static_cast<int>(g)];
}

std::string hex(const std::vector<std::uint8_t>& code) {
    std::string out;
    for (auto b : code) {
        out += fmt::format("{:02x} ", b);
    }
    return out;
}

}  // namespace vireo::soft::test
