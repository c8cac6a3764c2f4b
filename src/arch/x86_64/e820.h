// The guest's physical memory map in BIOS E820 form, as the loader hands it to the kernel: in the
// zero page's e820_table (zero-page.rst, 0x2d0) for bzImage and as hvm_memmap_table_entry records
// for PVH (the Xen XEN_HVM_MEMMAP_TYPE_* values are the E820 type numbers).
#pragma once

#include <cstdint>

namespace vireo::loader {

enum class E820Type : std::uint32_t { Ram = 1, Reserved = 2, Acpi = 3, Nvs = 4 };

struct E820Entry {
    std::uint64_t addr;
    std::uint64_t size;
    E820Type type;
};

}  // namespace vireo::loader
