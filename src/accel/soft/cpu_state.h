// The architectural state of one soft vCPU: what the interpreter reads and writes, and what
// save_state() encodes. Field meanings follow the SDM; the neutral Regs/Sregs convert 1:1.
#pragma once

#include <array>
#include <cstdint>

#include "accel/regs.h"

namespace vireo::soft {

// GPR numbering is the hardware encoding (SDM Vol. 2 §2.1.5, Table 2-2): RAX=0 ... R15=15.
enum Gpr : std::uint8_t {
    kRax = 0,
    kRcx,
    kRdx,
    kRbx,
    kRsp,
    kRbp,
    kRsi,
    kRdi,
    kR8,
    kR9,
    kR10,
    kR11,
    kR12,
    kR13,
    kR14,
    kR15,
};

// Segment register numbering as in the ModRM reg field of MOV Sreg (SDM Vol. 2, MOV).
enum SegReg : std::uint8_t { kEs = 0, kCs, kSs, kDs, kFs, kGs, kSegCount };

// Execution modes: they select the decoder and the default operand/address sizes.
enum class CpuMode : std::uint8_t { Real16, Prot16, Prot32, Compat16, Compat32, Long64 };

// RFLAGS bits (SDM Vol. 1 §3.4.3).
namespace fl {
inline constexpr std::uint64_t CF = 1u << 0, PF = 1u << 2, AF = 1u << 4, ZF = 1u << 6, SF = 1u << 7,
                               TF = 1u << 8, IF = 1u << 9, DF = 1u << 10, OF = 1u << 11,
                               IOPL = 3u << 12, NT = 1u << 14, RF = 1u << 16, VM = 1u << 17,
                               AC = 1u << 18, VIF = 1u << 19, VIP = 1u << 20, ID = 1u << 21;
inline constexpr std::uint64_t kArith = CF | PF | AF | ZF | SF | OF;
inline constexpr std::uint64_t kFixed1 = 1u << 1;
// What POPF/IRET may change at all (VM/VIF/VIP are not supported: no virtual-8086 mode).
inline constexpr std::uint64_t kWritable = kArith | TF | IF | DF | IOPL | NT | RF | AC | ID;
}  // namespace fl

// Control register and EFER bits used by the interpreter (SDM Vol. 3 §2.5, §2.2.1).
namespace cr {
inline constexpr std::uint64_t kCr0Pe = 1u << 0, kCr0Mp = 1u << 1, kCr0Em = 1u << 2,
                               kCr0Ts = 1u << 3, kCr0Et = 1u << 4, kCr0Ne = 1u << 5,
                               kCr0Wp = 1u << 16, kCr0Am = 1u << 18, kCr0Nw = 1u << 29,
                               kCr0Cd = 1u << 30, kCr0Pg = 1u << 31;
inline constexpr std::uint64_t kCr4Pse = 1u << 4, kCr4Pae = 1u << 5, kCr4Pge = 1u << 7,
                               kCr4Osfxsr = 1u << 9, kCr4Osxmmexcpt = 1u << 10;
// CR4 bits a qemu64-like CPU accepts; the rest #GP (no SMEP/SMAP/PCID/FSGSBASE/LA57/PKE).
inline constexpr std::uint64_t kCr4Allowed = 0x1 | 0x2 | 0x4 | 0x8 | kCr4Pse | kCr4Pae | 0x40 |
                                             kCr4Pge | 0x100 | kCr4Osfxsr | kCr4Osxmmexcpt;
inline constexpr std::uint64_t kEferSce = 1u << 0, kEferLme = 1u << 8, kEferLma = 1u << 10,
                               kEferNxe = 1u << 11;
inline constexpr std::uint64_t kEferAllowed = kEferSce | kEferLme | kEferLma | kEferNxe;
}  // namespace cr

// A segment register with its descriptor cache; the neutral Segment layout.
using SegmentCache = Segment;

// MSRs kept as plain storage (SDM Vol. 4 §2.1 for the numbers).
struct MsrFile {
    std::uint64_t star = 0, lstar = 0, cstar = 0, sfmask = 0, kernel_gs_base = 0;
    std::uint64_t sysenter_cs = 0, sysenter_esp = 0, sysenter_eip = 0;
    std::uint64_t pat = 0x0007040600070406ULL;  // power-up value (SDM Vol. 3 §11.12.4)
    std::uint64_t tsc_aux = 0, misc_enable = 1, mtrr_def_type = 0;
    std::uint64_t apic_base = 0xfee00900ULL;     // BSP, xAPIC enabled, at the default base
    std::array<std::uint64_t, 16> mtrr_var{};    // IA32_MTRR_PHYSBASE0..PHYSMASK7 (0x200..0x20f)
    std::array<std::uint64_t, 11> mtrr_fixed{};  // 0x250, 0x258, 0x259, 0x268..0x26f
    std::uint64_t mcg_status = 0;
    // kvmclock (kvm_clock.h): MSR_KVM_SYSTEM_TIME_NEW and MSR_KVM_WALL_CLOCK_NEW as written.
    std::uint64_t kvm_system_time = 0, kvm_wall_clock = 0;
};

struct CpuState {
    std::array<std::uint64_t, 16> gpr{};
    std::uint64_t rip = 0;
    std::uint64_t rflags = fl::kFixed1;
    std::array<SegmentCache, kSegCount> seg{};
    SegmentCache tr, ldt;
    DescriptorTable gdt, idt;
    std::uint64_t cr0 = 0x60000010, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, efer = 0;
    std::array<std::uint64_t, 8> dr{0, 0, 0, 0, 0, 0, 0xffff0ff0, 0x400};
    MsrFile msr;
    std::int64_t tsc_offset = 0;  // guest TSC = host TSC + offset
    std::uint8_t cpl = 0;
    bool halted = false;
    // The STI / MOV SS shadow: interrupts are held off until after the next instruction
    // (SDM Vol. 3 §6.8.3). Holds the RIP the shadow ends at.
    bool int_shadow = false;
    // x87/SSE state in FXSAVE terms (SDM Vol. 1 §10.5.1): st[i] is ST(i) (stack order, the
    // 80-bit value in its first 10 bytes), TOP is in fsw, and ftw has one bit per physical
    // register (exec_x87.cpp).
    std::uint16_t fcw = 0x37f, fsw = 0, fop = 0;
    std::uint8_t ftw = 0;  // abridged tag word: 1 bit per register, 1 = valid
    std::uint64_t fip = 0, fdp = 0;
    std::uint32_t mxcsr = 0x1f80;
    std::array<std::array<std::uint8_t, 16>, 8> st{};
    std::array<std::array<std::uint8_t, 16>, 16> xmm{};
};

}  // namespace vireo::soft
