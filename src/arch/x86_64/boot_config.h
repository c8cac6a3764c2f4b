// What the machine layer asks of the kernel loader (BootConfig) and what it gets back
// (LoadedKernel): the guest-physical layout of everything the loader writes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arch/x86_64/e820.h"
#include "memory/guest_address.h"

namespace vireo::loader {

enum class KernelFormat { BzImage, ElfPvh, Multiboot };

// Default low-memory layout (all below the 1 MiB kernel, in conventional RAM):
//   0x6000  PVH only: hvm_start_info + modlist + memmap, at most one page (see elf_pvh.h)
//   0x7000  bzImage only: boot_params, the "zero page" (4 KiB)
//   0x20000 kernel command line, NUL-terminated (up to 64 KiB)
//   0x100000 protected-mode kernel (bzImage) / kernel segments at their p_paddr (PVH)
struct BootConfig {
    std::string cmdline;
    std::span<const std::uint8_t> initrd;  // may be empty
    std::vector<E820Entry> e820;           // the guest's memory map, provided by the caller
    std::uint64_t rsdp_address = 0;        // boot_params.acpi_rsdp_addr (0x070) / PVH rsdp_paddr
    GuestAddress zero_page{0x7000};        // boot_params
    GuestAddress cmdline_address{0x20000};
    std::uint64_t cmdline_max = 0x10000 - 1;  // bytes available at cmdline_address, minus NUL
    GuestAddress kernel_address{0x100000};    // protected-mode kernel load address (1 MiB)
    GuestAddress pvh_start_info{0x6000};      // hvm_start_info + modlist + memmap, PVH only
};

struct LoadedKernel {
    KernelFormat format;
    // BzImage: kernel_address + 0x200 (startup_64, boot.rst "64-bit Boot Protocol");
    // PVH: the XEN_ELFNOTE_PHYS32_ENTRY address, entered in 32-bit protected mode;
    // Multiboot: the ELF's e_entry or the header's entry_addr, likewise.
    GuestAddress entry;
    // BzImage: the zero page (goes in RSI); PVH: hvm_start_info (goes in EBX); Multiboot: the
    // multiboot information (goes in EBX).
    GuestAddress boot_info;
    // EAX at the entry: the multiboot bootloader magic 0x2BADB002, else 0.
    std::uint32_t entry_eax = 0;
    // First byte after the kernel's reserved memory (see bzimage.h / elf_pvh.h).
    GuestAddress kernel_end;
    std::optional<GuestAddress> initrd_address;
};

}  // namespace vireo::loader
