#include "devices/platform/fw_cfg.h"

#include <algorithm>

namespace vireo {

namespace {

template <typename T>
std::vector<std::uint8_t> little_endian(T v) {
    std::vector<std::uint8_t> out(sizeof(T));
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * i));
    }
    return out;
}

}  // namespace

std::vector<std::uint8_t> FwCfg::item(std::uint16_t key) const {
    switch (key) {
        case kSignature:
            return {'Q', 'E', 'M', 'U'};
        case kId:
            return little_endian<std::uint32_t>(1);
        case kRamSize:
            return little_endian<std::uint64_t>(m_ram);
        case kNbCpus:
        case kMaxCpus:
            return little_endian<std::uint16_t>(m_cpus);
        default:
            return {};
    }
}

void FwCfg::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
    if (offset != 1) {
        return;  // the selector reads as 0 (write-only)
    }
    std::lock_guard lock(m_mutex);
    // Each byte of a wider access is the next data byte, as QEMU's port reads do.
    for (auto& b : data) {
        if (m_offset < m_item.size()) {
            b = m_item[m_offset];
        }
        ++m_offset;
    }
}

void FwCfg::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (offset != 0 || data.empty()) {
        return;  // the data port is read-only without DMA
    }
    std::uint16_t key = data[0];
    if (data.size() >= 2) {
        key = static_cast<std::uint16_t>(key | (data[1] << 8));
    }
    std::lock_guard lock(m_mutex);
    m_item = item(key);
    m_offset = 0;
}

}  // namespace vireo
