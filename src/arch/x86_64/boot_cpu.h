// The CPU state a Linux kernel expects at its entry point, and the memory it needs for that:
// a GDT, an empty IDT and identity page tables.
//  - 64-bit boot protocol (Documentation/arch/x86/boot.rst "64-bit Boot Protocol"): long mode,
//    paging with the kernel, zero page and command line identity-mapped, CS = __BOOT_CS (0x10),
//    DS/ES/SS = __BOOT_DS (0x18), interrupts off, RSI = zero page.
//  - PVH (xen/include/public/arch-x86/hvm/start_info.h): 32-bit protected mode, paging off,
//    flat CS/DS, EBX = hvm_start_info.
#pragma once

#include <cstdint>
#include <vector>

#include "accel/regs.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace vireo::x86 {

// Low-memory layout of the boot structures (below the zero page at 0x7000, above the BIOS data
// area); the same as Firecracker's, which Linux is known to boot with.
inline constexpr std::uint64_t kBootGdtAddress = 0x500;
inline constexpr std::uint64_t kBootIdtAddress = 0x520;
inline constexpr std::uint64_t kBootStackPointer = 0x8ff0;
inline constexpr std::uint64_t kPml4Address = 0x9000;
inline constexpr std::uint64_t kPdptAddress = 0xa000;
inline constexpr std::uint64_t kPdAddress = 0xb000;  // 4 pages: 0xb000..0xefff
// The identity map covers the first 4 GiB with 2 MiB pages: everything the loader placed.
inline constexpr std::uint64_t kIdentityMapSize = 4ULL << 30;

inline constexpr std::uint16_t kBootCsSelector = 0x10;
inline constexpr std::uint16_t kBootDsSelector = 0x18;
inline constexpr std::uint16_t kBootTssSelector = 0x20;

enum class EntryMode { Long64, Protected32 };

struct BootCpuState {
    Regs regs;
    Sregs sregs;
};

// Writes GDT, IDT and (for Long64) page tables into guest memory and returns the register state
// for the boot vCPU: RIP = entry, RSI = boot_info (Long64) or EBX = boot_info (Protected32).
// `base` is the vCPU's current Sregs (KVM's reset state), kept where the boot does not care.
Result<BootCpuState> setup_boot_cpu(GuestMemory& mem, EntryMode mode, std::uint64_t entry,
                                    std::uint64_t boot_info, const Sregs& base);

// MSR values at boot (as Firecracker sets them): SYSENTER/SYSCALL MSRs zero, TSC 0, fast
// strings on, and MTRRs enabled with write-back as the default type — without that Linux maps
// all RAM uncached and the boot crawls.
std::vector<MsrEntry> boot_msrs();

// The only firmware vireo has: at the real-mode reset vector F000:FFF0 (0xffff0), a stub that
// writes `value` to the reset `port` (the FADT's ACPI reset register) and halts. A guest that
// reboots through the BIOS lands here: Linux does so on hardware-reduced ACPI platforms, where it
// picks the EFI reboot method and falls back to machine_real_restart() without EFI.
Result<void> install_reset_vector(GuestMemory& mem, std::uint16_t port, std::uint8_t value);
inline constexpr std::uint64_t kResetVectorAddress = 0xffff0;

// LAPIC setup before the guest runs: LINT0 as ExtINT (the 8259 PIC's output) and LINT1 as NMI,
// the wiring a PC BIOS leaves (MP spec §3.6.3 "virtual wire mode").
void setup_lapic_lints(LapicState& lapic);

}  // namespace vireo::x86
