// The guest-physical memory map of a vireo x86-64 machine.
//
//   0x0         .. 0x9fc00      RAM (real-mode IVT/BDA, boot GDT/page tables, zero page, cmdline)
//   0x9fc00     .. 0xa0000      reserved (EBDA)
//   0xa0000     .. 0xe0000      RAM slot, but legacy VGA/ROM hole in the e820 map
//   0xe0000     .. 0x100000     reserved: RSDP at 0xe0000, ACPI tables after it
//   0x100000    .. low_end      RAM: kernel at 1 MiB, initrd at the top
//   0xc0000000  .. 4 GiB        MMIO hole: PCI windows (later), IOAPIC 0xfec00000,
//                               LAPIC 0xfee00000, KVM's TSS pages at 0xfffbc000
//   4 GiB       .. 4 GiB + rest RAM for guests larger than 3 GiB
#pragma once

#include <cstdint>
#include <vector>

#include "loader/e820.h"
#include "memory/guest_memory.h"

namespace vireo::layout {

inline constexpr std::uint64_t kEbdaStart = 0x9fc00;
inline constexpr std::uint64_t kLegacyHoleStart = 0xa0000;
inline constexpr std::uint64_t kAcpiStart = 0xe0000;
inline constexpr std::uint64_t kRsdpAddress = kAcpiStart;
inline constexpr std::uint64_t kAcpiTablesStart = kAcpiStart + 0x40;
inline constexpr std::uint64_t kHighMemoryStart = 0x100000;  // 1 MiB
inline constexpr std::uint64_t kMmioHoleStart = 0xc0000000;  // 3 GiB
inline constexpr std::uint64_t k4GiB = 1ULL << 32;
inline constexpr std::uint64_t kIoapicAddress = 0xfec00000;
inline constexpr std::uint64_t kLapicAddress = 0xfee00000;

// Smallest and largest guest RAM vireo accepts.
inline constexpr std::uint64_t kMinMemory = 32ULL << 20;
inline constexpr std::uint64_t kMaxMemory = 1ULL << 40;

// Memory slots for `size` bytes of RAM: one below the hole, one above 4 GiB when needed.
std::vector<MemoryRegionSpec> ram_regions(std::uint64_t size);

// The e820 map the guest gets for the same RAM.
std::vector<loader::E820Entry> e820_map(std::uint64_t size);

}  // namespace vireo::layout
