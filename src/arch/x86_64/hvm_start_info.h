// The Xen PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h), which Linux implements for
// an uncompressed vmlinux (arch/x86/platform/pvh). The kernel advertises a 32-bit entry point in an
// ELF note (name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY, xen/include/public/elfnote.h); it is entered
// in 32-bit protected mode, paging off, with EBX = physical address of struct hvm_start_info.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vireo::loader {

inline constexpr std::uint32_t kXenElfNotePhys32Entry = 18;  // XEN_ELFNOTE_PHYS32_ENTRY
inline constexpr std::uint32_t kHvmStartMagic = 0x336ec578;  // XEN_HVM_START_MAGIC_VALUE
inline constexpr std::uint32_t kHvmStartInfoVersion = 1;     // version 1 adds the memmap

// struct hvm_start_info, version 1: 56 bytes.
struct HvmStartInfo {
    std::uint32_t magic;           // XEN_HVM_START_MAGIC_VALUE
    std::uint32_t version;         // 1
    std::uint32_t flags;           // SIF_xxx; 0
    std::uint32_t nr_modules;      // entries at modlist_paddr; the first is the initrd
    std::uint64_t modlist_paddr;   // hvm_modlist_entry[nr_modules]
    std::uint64_t cmdline_paddr;   // NUL-terminated command line
    std::uint64_t rsdp_paddr;      // ACPI RSDP, 0 when none
    std::uint64_t memmap_paddr;    // hvm_memmap_table_entry[memmap_entries] (version >= 1)
    std::uint32_t memmap_entries;  // 0 means no map provided
    std::uint32_t reserved;        // must be 0
};
static_assert(sizeof(HvmStartInfo) == 56);
static_assert(offsetof(HvmStartInfo, nr_modules) == 12);
static_assert(offsetof(HvmStartInfo, modlist_paddr) == 16);
static_assert(offsetof(HvmStartInfo, cmdline_paddr) == 24);
static_assert(offsetof(HvmStartInfo, rsdp_paddr) == 32);
static_assert(offsetof(HvmStartInfo, memmap_paddr) == 40);
static_assert(offsetof(HvmStartInfo, memmap_entries) == 48);

// struct hvm_modlist_entry: 32 bytes.
struct HvmModlistEntry {
    std::uint64_t paddr;
    std::uint64_t size;
    std::uint64_t cmdline_paddr;  // 0: no module command line
    std::uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);
static_assert(offsetof(HvmModlistEntry, size) == 8);
static_assert(offsetof(HvmModlistEntry, cmdline_paddr) == 16);

// struct hvm_memmap_table_entry: 24 bytes; type is XEN_HVM_MEMMAP_TYPE_* (= the E820 types).
struct HvmMemmapTableEntry {
    std::uint64_t addr;
    std::uint64_t size;
    std::uint32_t type;
    std::uint32_t reserved;
};
static_assert(sizeof(HvmMemmapTableEntry) == 24);
static_assert(offsetof(HvmMemmapTableEntry, type) == 16);

}  // namespace vireo::loader
