// Backend-neutral x86-64 register state. Conversions to KVM's structs live in accel/kvm/.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace vireo {

// General-purpose registers, RIP and RFLAGS.
struct Regs {
    std::uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rsp = 0, rbp = 0;
    std::uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
    std::uint64_t rip = 0;
    std::uint64_t rflags = 0x2;  // bit 1 is reserved and always reads as 1 (SDM Vol. 1 §3.4.3)
};

// A segment register with its hidden descriptor cache (SDM Vol. 3 §3.4.5).
struct Segment {
    std::uint64_t base = 0;
    std::uint32_t limit = 0;
    std::uint16_t selector = 0;
    std::uint8_t type = 0;  // descriptor type field, bits 8..11 of the high dword
    std::uint8_t present = 0, dpl = 0, db = 0, s = 0, l = 0, g = 0, avl = 0;
    std::uint8_t unusable = 0;
};

struct DescriptorTable {
    std::uint64_t base = 0;
    std::uint16_t limit = 0;
};

// Control registers, EFER and the segment/descriptor-table state.
struct Sregs {
    Segment cs, ds, es, fs, gs, ss, tr, ldt;
    DescriptorTable gdt, idt;
    std::uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0;
    std::uint64_t efer = 0;
    std::uint64_t apic_base = 0;
};

// Architectural bits used when building initial CPU state.
namespace x86 {
inline constexpr std::uint64_t kCr0Pe = 1ULL << 0;
inline constexpr std::uint64_t kCr0Mp = 1ULL << 1;
inline constexpr std::uint64_t kCr0Et = 1ULL << 4;
inline constexpr std::uint64_t kCr0Ne = 1ULL << 5;
inline constexpr std::uint64_t kCr0Wp = 1ULL << 16;
inline constexpr std::uint64_t kCr0Pg = 1ULL << 31;
inline constexpr std::uint64_t kCr4Pae = 1ULL << 5;
inline constexpr std::uint64_t kEferLme = 1ULL << 8;
inline constexpr std::uint64_t kEferLma = 1ULL << 10;
inline constexpr std::uint64_t kRflagsIoplShift = 12;  // RFLAGS.IOPL, bits 12..13
inline constexpr std::uint32_t kMsrTsc = 0x10;         // IA32_TIME_STAMP_COUNTER
}  // namespace x86

// One model-specific register.
struct MsrEntry {
    std::uint32_t index = 0;
    std::uint64_t data = 0;
};

// x87/SSE state as FXSAVE lays it out (SDM Vol. 1 §10.5.1), the fields a boot sets.
struct FpuState {
    std::uint16_t fcw = 0x37f;     // x87 control word after FINIT: all exceptions masked
    std::uint32_t mxcsr = 0x1f80;  // SSE control/status after reset: all exceptions masked
};

// The local APIC's 1 KiB register page as KVM_GET_LAPIC returns it (register at offset R of the
// xAPIC MMIO page is at byte R here).
struct LapicState {
    std::array<std::uint8_t, 1024> regs{};
    std::uint32_t read(std::size_t offset) const {
        std::uint32_t v = 0;
        std::memcpy(&v, regs.data() + offset, sizeof(v));
        return v;
    }
    void write(std::size_t offset, std::uint32_t v) {
        std::memcpy(regs.data() + offset, &v, sizeof(v));
    }
};

// One CPUID leaf as the accelerator reports or accepts it.
struct CpuidEntry {
    std::uint32_t function = 0;
    std::uint32_t index = 0;
    std::uint32_t flags = 0;  // backend-specific significance flags, carried through unchanged
    std::uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

}  // namespace vireo
