// Entry point of the loader layer: sniff the kernel image format and load it into guest memory.
#pragma once

#include <cstdint>
#include <span>

#include "arch/x86_64/boot_config.h"
#include "arch/x86_64/bzimage.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/elf_pvh.h"
#include "arch/x86_64/multiboot.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace vireo::loader {

// ELF magic ("\x7fELF" at 0) -> ElfPvh (validated by the loader), or Multiboot when the ELF has
// no PVH note but a multiboot header; boot_flag 0xAA55 at 0x1fe and "HdrS" at 0x202 (boot.rst)
// -> BzImage; otherwise a multiboot header (multiboot.h) -> Multiboot; anything else is an error.
Result<KernelFormat> detect_kernel_format(std::span<const std::uint8_t> image);

// detect_kernel_format, then load_bzimage, load_elf_pvh or load_multiboot.
Result<LoadedKernel> load_kernel(GuestMemory& mem, std::span<const std::uint8_t> image,
                                 const BootConfig& config);

}  // namespace vireo::loader
