#include "devices/platform/debug_exit.h"

#include <algorithm>

namespace vireo {

void DebugExit::read(std::uint64_t /*offset*/, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), 0xff);
}

void DebugExit::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    // QEMU's device answers a write at any offset of its range with the written value.
    if (data.empty() || data.size() > 4 || offset >= kPorts) {
        return;
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < data.size(); ++i) {
        v |= std::uint64_t{data[i]} << (8 * i);
    }
    if (m_exit) {
        m_exit((v << 1) | 1);
    }
}

}  // namespace vireo
