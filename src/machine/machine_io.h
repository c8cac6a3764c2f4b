// The machine's IoHandler: routes vCPU port I/O and MMIO to the buses. Accesses no device claims
// are counted and ignored, reads returning all-ones (DESIGN.md §3) — a guest probing absent
// hardware is normal, never fatal.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>

#include "accel/io_handler.h"
#include "bus/io_bus.h"

namespace vireo {

class MachineIo final : public IoHandler {
public:
    MachineIo(const IoBus& pio, const IoBus& mmio) : m_pio(pio), m_mmio(mmio) {}

    void pio_read(std::uint16_t port, std::span<std::uint8_t> data) override;
    void pio_write(std::uint16_t port, std::span<const std::uint8_t> data) override;
    void mmio_read(std::uint64_t address, std::span<std::uint8_t> data) override;
    void mmio_write(std::uint64_t address, std::span<const std::uint8_t> data) override;

    // Unclaimed accesses so far, by port (MMIO addresses are keyed with bit 63 set).
    std::map<std::uint64_t, std::uint64_t> unclaimed() const;
    std::uint64_t unclaimed_total() const { return m_unclaimed_total.load(); }

private:
    void count(std::uint64_t key);

    const IoBus& m_pio;
    const IoBus& m_mmio;
    std::atomic<std::uint64_t> m_unclaimed_total{0};
    mutable std::mutex m_mutex;
    std::map<std::uint64_t, std::uint64_t> m_unclaimed;  // bounded: see count()
};

}  // namespace vireo
