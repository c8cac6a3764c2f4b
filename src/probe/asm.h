// A tiny x86 code emitter for probe guests: the handful of instructions synthetic guests need,
// encoded per the SDM Vol. 2 opcode tables. Not a general assembler.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace vireo::probe {

class Asm {
public:
    using Label = std::size_t;

    // Position of the next instruction, usable as a backward jump target.
    Label here() const { return m_code.size(); }

    Asm& mov_al(std::uint8_t imm);              // B0 ib
    Asm& mov_dx(std::uint16_t imm);             // 66 BA iw in 32/64-bit code, BA iw in 16-bit
    Asm& mov_eax(std::uint32_t imm);            // B8 id (66 B8 id in 16-bit code)
    Asm& mov_rax(std::uint64_t imm);            // REX.W B8 io (64-bit code only)
    Asm& mov_rcx(std::uint64_t imm);            // REX.W B9 io (64-bit code only)
    Asm& out_imm8_al(std::uint8_t port);        // E6 ib
    Asm& out_dx_al();                           // EE
    Asm& out_dx_eax();                          // EF (66 EF in 16-bit code)
    Asm& in_al_imm8(std::uint8_t port);         // E4 ib
    Asm& in_al_dx();                            // EC
    Asm& add_al_imm8(std::uint8_t imm);         // 04 ib
    Asm& mov_mem_rax_eax();                     // 89 00: mov [rax], eax (64-bit code)
    Asm& mov_mem_rax_imm32(std::uint32_t imm);  // C7 00 id: mov dword [rax], imm32
    Asm& mov_eax_mem_rax();                     // 8B 00: mov eax, [rax] (64-bit code)
    Asm& mov_ebx_eax();                         // 89 C3
    Asm& mov_eax_ebx();                         // 89 D8
    Asm& mov_mem_rax_ebx();                     // 89 18: mov [rax], ebx (64-bit code)
    Asm& inc_rbx();                             // REX.W FF C3 (64-bit code only)
    Asm& dec_rcx();                             // REX.W FF C9 (64-bit code only)
    Asm& jnz(Label target);                     // 75 rel8; target within -128..127 bytes
    Asm& jmp(Label target);                     // EB rel8
    Asm& hlt();                                 // F4
    Asm& ud2();                                 // 0F 0B: raises #UD
    Asm& byte(std::uint8_t b);

    // 16-bit code (real mode) needs operand-size prefixes where 32/64-bit code does not.
    Asm& code16(bool on) {
        m_code16 = on;
        return *this;
    }

    std::span<const std::uint8_t> code() const { return m_code; }

private:
    Asm& rel8(std::uint8_t opcode, Label target);
    Asm& imm(std::uint64_t value, int bytes);
    std::vector<std::uint8_t> m_code;
    bool m_code16 = false;
};

}  // namespace vireo::probe
