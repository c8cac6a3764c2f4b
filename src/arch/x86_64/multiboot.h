// Multiboot v1 (the Multiboot Specification 0.6.96, GNU GRUB's): the loader QEMU's `-kernel`
// offers for small test kernels (the KVM project's x86 unit tests, hobby kernels).
//
// The image carries a header in its first 8192 bytes, 4-byte aligned: magic 0x1BADB002, flags,
// checksum (magic + flags + checksum = 0 mod 2^32). Flags bits 0-15 are requirements: a loader
// that cannot meet one must refuse the image. vireo meets bit 0 (modules page-aligned) and bit 1
// (memory information), not bit 2 (a video mode: there is no display). Bit 16 says the header's
// address fields give the layout (the "a.out kludge"); without it the image must be an ELF (32-
// or 64-bit) loaded by its PT_LOAD program headers at their physical addresses.
//
// The machine state at entry (spec §3.2): 32-bit protected mode, paging off, flat 4 GiB CS and
// data segments, interrupts off, EAX = 0x2BADB002, EBX = the multiboot information structure.
// Layout of what vireo writes, in the page at BootConfig::pvh_start_info (unused by this format
// otherwise), below 4 GiB:
//   +0x000  struct multiboot_info (88 bytes written: through the VBE fields, which are unset)
//   +0x080  the module list: one entry (16 bytes) for the initrd, when there is one
//   +0x090  the module's string "initrd" and the boot loader name "vireo"
//   +0x0a0  the memory map: 24-byte entries (size = 20, base, length, type), at most 164
// The command line goes to BootConfig::cmdline_address; the module (initrd) above the kernel,
// page-aligned, below 4 GiB.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "arch/x86_64/boot_config.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace vireo::loader {

inline constexpr std::uint32_t kMultibootHeaderMagic = 0x1BADB002;
inline constexpr std::uint32_t kMultibootBootloaderMagic = 0x2BADB002;  // EAX at entry
inline constexpr std::size_t kMultibootSearchLimit = 8192;

// Header flags (spec §3.1.2).
inline constexpr std::uint32_t kMbPageAlignModules = 1U << 0;
inline constexpr std::uint32_t kMbMemoryInfo = 1U << 1;
inline constexpr std::uint32_t kMbVideoMode = 1U << 2;
inline constexpr std::uint32_t kMbAoutKludge = 1U << 16;

// multiboot_info flags (spec §3.3): which fields vireo fills.
inline constexpr std::uint32_t kMbInfoMemory = 1U << 0;
inline constexpr std::uint32_t kMbInfoCmdline = 1U << 2;
inline constexpr std::uint32_t kMbInfoMods = 1U << 3;
inline constexpr std::uint32_t kMbInfoMmap = 1U << 6;
inline constexpr std::uint32_t kMbInfoLoaderName = 1U << 9;

inline constexpr std::uint64_t kMbModsOffset = 0x80;
inline constexpr std::uint64_t kMbStringsOffset = 0x90;
inline constexpr std::uint64_t kMbMmapOffset = 0xa0;
inline constexpr std::uint64_t kMbAreaSize = 0x1000;
inline constexpr std::uint64_t kMbMaxMmapEntries = (kMbAreaSize - kMbMmapOffset) / 24;

struct MultibootHeader {
    std::uint32_t magic;
    std::uint32_t flags;
    std::uint32_t checksum;
    // Only with kMbAoutKludge: where the header itself is loaded, the first and the end of the
    // loaded bytes (0: to the end of the file), the end of the zeroed bss (0: none), the entry.
    std::uint32_t header_addr;
    std::uint32_t load_addr;
    std::uint32_t load_end_addr;
    std::uint32_t bss_end_addr;
    std::uint32_t entry_addr;
};
static_assert(sizeof(MultibootHeader) == 32);

// The file offset of the first valid multiboot header (magic and checksum) in the first 8192
// bytes, if any.
std::optional<std::size_t> find_multiboot_header(std::span<const std::uint8_t> image);

// Validates the whole image and layout before writing anything to guest memory. The result's
// boot_info is the multiboot_info address (EBX), entry_eax the bootloader magic (EAX).
Result<LoadedKernel> load_multiboot(GuestMemory& mem, std::span<const std::uint8_t> image,
                                    const BootConfig& config);

}  // namespace vireo::loader
