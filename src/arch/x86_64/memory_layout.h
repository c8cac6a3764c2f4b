// The guest-physical memory map of a vireo x86-64 machine.
//
//   0x0         .. 0x9fc00      RAM (real-mode IVT/BDA, boot GDT/page tables, zero page, cmdline)
//   0x9fc00     .. 0xa0000      reserved (EBDA)
//   0xa0000     .. 0xe0000      RAM slot, but legacy VGA/ROM hole in the e820 map
//   0xe0000     .. 0x100000     reserved: RSDP at 0xe0000, ACPI tables after it up to 0xef000,
//                               the VM generation ID (16 bytes) in the page at 0xef000
//   0x100000    .. low_end      RAM: kernel at 1 MiB, initrd at the top
//   0xc0000000  .. 4 GiB        MMIO hole:
//     0xc0000000 .. 0xe0000000    32-bit PCI MMIO window (512 MiB, BARs placed by PciRoot)
//     0xe0000000 .. 0xe0100000    PCI ECAM, bus 0 only (reserved in e820, MCFG end bus 0)
//     0xfec00000                  IOAPIC;  0xfee00000 LAPIC;  0xfffbc000 KVM's TSS pages
//   4 GiB       .. 4 GiB + rest RAM for guests larger than 3 GiB
//   pci_mmio64_base(size) + 64 GiB   64-bit PCI MMIO window, 1 GiB aligned above RAM
#pragma once

#include <cstdint>
#include <vector>

#include "arch/x86_64/e820.h"
#include "memory/guest_memory.h"

namespace vireo::layout {

inline constexpr std::uint64_t kEbdaStart = 0x9fc00;
inline constexpr std::uint64_t kLegacyHoleStart = 0xa0000;
inline constexpr std::uint64_t kAcpiStart = 0xe0000;
inline constexpr std::uint64_t kRsdpAddress = kAcpiStart;
inline constexpr std::uint64_t kAcpiTablesStart = kAcpiStart + 0x40;
// The VM generation ID (devices/platform/vm_gen_id.h) gets a page of its own in the reserved ACPI
// range, the OS leaves it alone there. Below 0xf0000, where Linux scans every 16 bytes for
// SMBIOS/DMI anchors that random bytes could (however unlikely) imitate.
inline constexpr std::uint64_t kVmGenIdAddress = 0xef000;
inline constexpr std::uint64_t kAcpiTablesEnd = kVmGenIdAddress;
inline constexpr std::uint64_t kHighMemoryStart = 0x100000;  // 1 MiB
inline constexpr std::uint64_t kMmioHoleStart = 0xc0000000;  // 3 GiB
inline constexpr std::uint64_t k4GiB = 1ULL << 32;
inline constexpr std::uint64_t kPciMmio32Start = 0xc0000000;
inline constexpr std::uint64_t kPciMmio32Size = 512ULL << 20;
// ECAM for bus 0 only: 1 MiB (32 devices x 8 functions x 4 KiB). Linux accepts an MCFG region
// whose whole range is reserved (e820 early, PNP0C02 _CRS late) whatever its size.
inline constexpr std::uint64_t kPciEcamStart = 0xe0000000;
// The boot-timer device (--boot-timer): outside RAM, the PCI windows and the ECAM.
inline constexpr std::uint64_t kBootTimerAddress = 0xe8000000;
inline constexpr std::uint64_t kPciEcamSize = 1ULL << 20;
inline constexpr std::uint8_t kPciEcamEndBus = 0;
inline constexpr std::uint64_t kPciMmio64Size = 64ULL << 30;
inline constexpr std::uint64_t kPciMmio64Align = 1ULL << 30;
inline constexpr std::uint64_t kIoapicAddress = 0xfec00000;
inline constexpr std::uint64_t kLapicAddress = 0xfee00000;
static_assert(kPciMmio32Start >= kMmioHoleStart &&
              kPciMmio32Start + kPciMmio32Size <= kPciEcamStart);
static_assert(kPciEcamStart + kPciEcamSize <= kIoapicAddress);
static_assert(kAcpiTablesStart < kAcpiTablesEnd && kVmGenIdAddress + 4096 <= kHighMemoryStart);

// Smallest and largest guest RAM vireo accepts.
inline constexpr std::uint64_t kMinMemory = 32ULL << 20;
inline constexpr std::uint64_t kMaxMemory = 1ULL << 40;

// Memory slots for `size` bytes of RAM: one below the hole, one above 4 GiB when needed.
std::vector<MemoryRegionSpec> ram_regions(std::uint64_t size);

// The e820 map the guest gets for the same RAM (the ECAM range is reserved in it).
std::vector<loader::E820Entry> e820_map(std::uint64_t size);

// The 64-bit PCI MMIO window for `size` bytes of RAM: kPciMmio64Size bytes from the first
// 1 GiB-aligned address at or above max(4 GiB, end of the RAM above 4 GiB).
//
// It lies above all RAM, so the guest must be able to address it: the CPU's physical-address
// width (CPUID 0x80000008 EAX[7:0], MAXPHYADDR) must cover pci_mmio64_end(size). That is 37 bits
// for guests up to 3 GiB (window 4-68 GiB) and 41 bits at kMaxMemory (window ends near
// 1 TiB + 65 GiB); x86-64 CPUs since the mid-2000s report 36-52, current ones at least 39.
// A machine whose guest cannot reach it should give PciRoot no 64-bit window: 64-bit BARs then
// go into the 32-bit one.
std::uint64_t pci_mmio64_base(std::uint64_t size);
std::uint64_t pci_mmio64_end(std::uint64_t size);

}  // namespace vireo::layout
