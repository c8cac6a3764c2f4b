// bzImage loading for the x86 64-bit boot protocol (Documentation/arch/x86/boot.rst).
//
// A bzImage is the real-mode setup ((setup_sects + 1) * 512 bytes: boot sector + setup code, with
// the setup header at 0x1f1) followed by the protected-mode kernel (the compressed kernel plus its
// decompressor). For the 64-bit protocol only the protected-mode part is loaded; the loader builds
// boot_params (the zero page) itself and enters at load address + 0x200 (startup_64) in long mode
// with RSI = zero page.
//
// Memory the kernel claims ("kernel_end"): the decompressor (arch/x86/boot/compressed/head_64.S)
// decompresses to its runtime address, which for a relocatable kernel is the load address rounded
// up to kernel_alignment but never below pref_address (LOAD_PHYSICAL_ADDR), and for a
// non-relocatable kernel is pref_address; it needs init_size bytes from there (boot.rst
// "init_size"). The loader reserves [min(load, runtime), max(load + file part, load + init_size,
// runtime + init_size)): all of it must be RAM, and the initrd goes above it.
#pragma once

#include <cstdint>
#include <span>

#include "arch/x86_64/boot_config.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace vireo::loader {

// From the real-mode setup header (boot.rst "The real-mode kernel header").
struct BzImageInfo {
    std::uint16_t protocol;          // 0x206 version; >= 0x20c (2.12, for xloadflags)
    std::uint32_t setup_size;        // ((setup_sects ? setup_sects : 4) + 1) * 512
    std::uint64_t kernel_offset;     // == setup_size: start of the protected-mode kernel
    std::uint64_t kernel_size;       // file size - setup_size
    std::uint32_t init_size;         // 0x260: memory the kernel needs from its runtime address
    std::uint32_t kernel_alignment;  // 0x230
    bool relocatable;                // 0x234 relocatable_kernel
    std::uint64_t pref_address;      // 0x258
    std::uint32_t initrd_addr_max;   // 0x22c: highest byte address the initrd may occupy
    std::uint32_t cmdline_size;      // 0x238: max cmdline length, excluding NUL
    std::uint16_t xloadflags;        // 0x236: has XLF_KERNEL_64 (bit 0)
    std::uint8_t loadflags;          // 0x211: has LOADED_HIGH (bit 0)
};

// Validates the setup header of an untrusted image; every read is bounds-checked.
Result<BzImageInfo> parse_bzimage(std::span<const std::uint8_t> image);

// Loads the protected-mode kernel at config.kernel_address and writes the command line, the
// initrd and boot_params. Validates everything before writing anything to guest memory.
Result<LoadedKernel> load_bzimage(GuestMemory& mem, std::span<const std::uint8_t> image,
                                  const BootConfig& config);

}  // namespace vireo::loader
