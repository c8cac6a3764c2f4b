#include "machine/memory_layout.h"

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
    if (size > low) {
        map.push_back({k4GiB, size - low, E820Type::Ram});
    }
    return map;
}

}  // namespace vireo::layout
