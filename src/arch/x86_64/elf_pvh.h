// PVH boot of an uncompressed ELF vmlinux (Xen PVH ABI, as Linux implements it in
// arch/x86/platform/pvh/head.S): PT_LOAD segments go to their p_paddr, the loader writes struct
// hvm_start_info, and the vCPU starts at the XEN_ELFNOTE_PHYS32_ENTRY address in 32-bit protected
// mode with EBX = the hvm_start_info address.
//
// Layout of the start-info area at BootConfig::pvh_start_info (at most one 4 KiB page, below 4 GiB;
// with the defaults it is the page below the bzImage zero page):
//   +0x000  struct hvm_start_info (56 bytes, version 1)
//   +0x040  struct hvm_modlist_entry[1] (32 bytes): the initrd, when there is one
//   +0x060  struct hvm_memmap_table_entry[n] (24 bytes each): the E820 map, n <= 166
// kernel_end is the highest p_paddr + p_memsz; the initrd goes above it, below 4 GiB.
#pragma once

#include <cstdint>
#include <span>

#include "arch/x86_64/boot_config.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace vireo::loader {

inline constexpr std::uint64_t kPvhModlistOffset = 0x40;
inline constexpr std::uint64_t kPvhMemmapOffset = 0x60;
inline constexpr std::uint64_t kPvhAreaSize = 0x1000;
inline constexpr std::uint64_t kPvhMaxMemmapEntries = (kPvhAreaSize - kPvhMemmapOffset) / 24;

// Validates the whole image and layout before writing anything to guest memory.
Result<LoadedKernel> load_elf_pvh(GuestMemory& mem, std::span<const std::uint8_t> image,
                                  const BootConfig& config);

}  // namespace vireo::loader
