// What a vCPU calls for port I/O and MMIO it cannot complete itself (DESIGN.md §2). Called on the
// vCPU's own thread; implementations must be thread-safe when several vCPUs share one.
#pragma once

#include <cstdint>
#include <span>

namespace vireo {

class IoHandler {
public:
    virtual ~IoHandler() = default;
    // `data` has the access width (1, 2 or 4 bytes for ports; up to 8 for MMIO). Reads fill it.
    virtual void pio_read(std::uint16_t port, std::span<std::uint8_t> data) = 0;
    virtual void pio_write(std::uint16_t port, std::span<const std::uint8_t> data) = 0;
    virtual void mmio_read(std::uint64_t address, std::span<std::uint8_t> data) = 0;
    virtual void mmio_write(std::uint64_t address, std::span<const std::uint8_t> data) = 0;
};

}  // namespace vireo
