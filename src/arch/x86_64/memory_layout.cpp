#include "arch/x86_64/memory_layout.h"

#include <algorithm>

namespace vireo::layout {

std::vector<MemoryRegionSpec> ram_regions(std::uint64_t size) {
    std::vector<MemoryRegionSpec> regions;
    const std::uint64_t low = std::min(size, kMmioHoleStart);
    regions.push_back({GuestAddress(0), low});
    if (size > low) {
        regions.push_back({GuestAddress(k4GiB), size - low});
    }
    return regions;
}

std::vector<loader::E820Entry> e820_map(std::uint64_t size) {
    using loader::E820Type;
    const std::uint64_t low = std::min(size, kMmioHoleStart);
    std::vector<loader::E820Entry> map = {
        {0, kEbdaStart, E820Type::Ram},
        {kEbdaStart, kLegacyHoleStart - kEbdaStart, E820Type::Reserved},
        {kAcpiStart, kHighMemoryStart - kAcpiStart, E820Type::Reserved},
        {kHighMemoryStart, low - kHighMemoryStart, E820Type::Ram},
    };
    // Early in boot Linux only uses an MCFG region that e820 reserves (pci_mmcfg_reserved).
    map.push_back({kPciEcamStart, kPciEcamSize, E820Type::Reserved});
    if (size > low) {
        map.push_back({k4GiB, size - low, E820Type::Ram});
    }
    return map;
}

std::uint64_t pci_mmio64_base(std::uint64_t size) {
    const std::uint64_t low = std::min(size, kMmioHoleStart);
    const std::uint64_t ram_end = k4GiB + (size - low);  // == 4 GiB without high RAM
    return (ram_end + kPciMmio64Align - 1) & ~(kPciMmio64Align - 1);
}

std::uint64_t pci_mmio64_end(std::uint64_t size) {
    return pci_mmio64_base(size) + kPciMmio64Size;
}

}  // namespace vireo::layout
