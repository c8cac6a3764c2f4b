#include "machine/machine_io.h"

#include <algorithm>

namespace vireo {

namespace {
constexpr std::uint64_t kMmioKey = 1ULL << 63;
// Distinct unclaimed addresses remembered; a guest sweeping MMIO must not grow the map forever.
constexpr std::size_t kMaxTracked = 256;
}  // namespace

void MachineIo::count(std::uint64_t key) {
    m_unclaimed_total.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(m_mutex);
    auto it = m_unclaimed.find(key);
    if (it != m_unclaimed.end()) {
        ++it->second;
    } else if (m_unclaimed.size() < kMaxTracked) {
        m_unclaimed.emplace(key, 1);
    }
}

void MachineIo::pio_read(std::uint16_t port, std::span<std::uint8_t> data) {
    if (!m_pio.read(port, data)) {
        std::fill(data.begin(), data.end(), 0xff);
        count(port);
    }
}

void MachineIo::pio_write(std::uint16_t port, std::span<const std::uint8_t> data) {
    if (!m_pio.write(port, data)) {
        count(port);
    }
}

void MachineIo::mmio_read(std::uint64_t address, std::span<std::uint8_t> data) {
    if (!m_mmio.read(address, data)) {
        std::fill(data.begin(), data.end(), 0xff);
        count(address | kMmioKey);
    }
}

void MachineIo::mmio_write(std::uint64_t address, std::span<const std::uint8_t> data) {
    if (!m_mmio.write(address, data)) {
        count(address | kMmioKey);
    }
}

std::map<std::uint64_t, std::uint64_t> MachineIo::unclaimed() const {
    std::lock_guard lock(m_mutex);
    return m_unclaimed;
}

}  // namespace vireo
