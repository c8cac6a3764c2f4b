#include "probe/asm.h"

#include <cassert>

namespace vireo::probe {

Asm& Asm::byte(std::uint8_t b) {
    m_code.push_back(b);
    return *this;
}

Asm& Asm::imm(std::uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) {
        byte(static_cast<std::uint8_t>(value >> (8 * i)));  // little-endian
    }
    return *this;
}

Asm& Asm::mov_al(std::uint8_t v) {
    return byte(0xb0).byte(v);
}

Asm& Asm::mov_dx(std::uint16_t v) {
    if (!m_code16) {
        byte(0x66);
    }
    return byte(0xba).imm(v, 2);
}

Asm& Asm::mov_eax(std::uint32_t v) {
    if (m_code16) {
        byte(0x66);
    }
    return byte(0xb8).imm(v, 4);
}

Asm& Asm::mov_rax(std::uint64_t v) {
    return byte(0x48).byte(0xb8).imm(v, 8);
}
Asm& Asm::mov_rcx(std::uint64_t v) {
    return byte(0x48).byte(0xb9).imm(v, 8);
}
Asm& Asm::out_imm8_al(std::uint8_t port) {
    return byte(0xe6).byte(port);
}
Asm& Asm::out_dx_al() {
    return byte(0xee);
}

Asm& Asm::out_dx_eax() {
    if (m_code16) {
        byte(0x66);
    }
    return byte(0xef);
}

Asm& Asm::in_al_imm8(std::uint8_t port) {
    return byte(0xe4).byte(port);
}
Asm& Asm::in_al_dx() {
    return byte(0xec);
}
Asm& Asm::add_al_imm8(std::uint8_t v) {
    return byte(0x04).byte(v);
}
Asm& Asm::mov_mem_rax_eax() {
    return byte(0x89).byte(0x00);
}
Asm& Asm::mov_mem_rax_imm32(std::uint32_t v) {
    return byte(0xc7).byte(0x00).imm(v, 4);
}
Asm& Asm::mov_eax_mem_rax() {
    return byte(0x8b).byte(0x00);
}
Asm& Asm::mov_ebx_eax() {
    return byte(0x89).byte(0xc3);
}
Asm& Asm::mov_eax_ebx() {
    return byte(0x89).byte(0xd8);
}
Asm& Asm::mov_mem_rax_ebx() {
    return byte(0x89).byte(0x18);
}
Asm& Asm::inc_rbx() {
    return byte(0x48).byte(0xff).byte(0xc3);
}
Asm& Asm::dec_rcx() {
    return byte(0x48).byte(0xff).byte(0xc9);
}
Asm& Asm::hlt() {
    return byte(0xf4);
}
Asm& Asm::ud2() {
    return byte(0x0f).byte(0x0b);
}
Asm& Asm::jnz(Label target) {
    return rel8(0x75, target);
}
Asm& Asm::jmp(Label target) {
    return rel8(0xeb, target);
}

Asm& Asm::rel8(std::uint8_t opcode, Label target) {
    // rel8 is relative to the end of this 2-byte instruction.
    const auto next = static_cast<std::int64_t>(m_code.size()) + 2;
    const std::int64_t disp = static_cast<std::int64_t>(target) - next;
    assert(disp >= -128 && disp <= 127);
    return byte(opcode).byte(static_cast<std::uint8_t>(static_cast<std::int8_t>(disp)));
}

}  // namespace vireo::probe
