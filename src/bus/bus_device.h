// A device as the I/O and MMIO buses see it: reads and writes at offsets inside the range it was
// registered at. Devices see offsets, not placement (DESIGN.md §6 rule 1).
#pragma once

#include <cstdint>
#include <span>

namespace vireo {

class BusDevice {
public:
    virtual ~BusDevice() = default;
    // `data` is the access (1, 2, 4 or 8 bytes). Called on vCPU threads: implementations lock
    // their own state. A read must fill all of `data`.
    virtual void read(std::uint64_t offset, std::span<std::uint8_t> data) = 0;
    virtual void write(std::uint64_t offset, std::span<const std::uint8_t> data) = 0;
};

}  // namespace vireo
