#include "bus/io_bus.h"

#include <algorithm>

#include <fmt/format.h>

namespace vireo {

Result<void> IoBus::insert(std::uint64_t base, std::uint64_t length,
                           std::shared_ptr<BusDevice> device, std::string name) {
    if (auto r = check_free(base, length, name); !r) {
        return r;
    }
    auto it = std::lower_bound(m_ranges.begin(), m_ranges.end(), base,
                               [](const Range& r, std::uint64_t b) { return r.base < b; });
    m_ranges.insert(it, Range{base, length, std::move(device), std::move(name)});
    return ok();
}

Result<void> IoBus::check_free(std::uint64_t base, std::uint64_t length,
                               const std::string& name) const {
    if (length == 0 || base + length < base) {
        return Error(
            fmt::format("bus: range {} at {:#x}+{:#x} is empty or wraps", name, base, length));
    }
    auto it = std::lower_bound(m_ranges.begin(), m_ranges.end(), base,
                               [](const Range& r, std::uint64_t b) { return r.base < b; });
    if (it != m_ranges.end() && it->base < base + length) {
        return Error(fmt::format("bus: {} at {:#x} overlaps {}", name, base, it->name));
    }
    if (it != m_ranges.begin()) {
        const Range& prev = *(it - 1);
        if (prev.base + prev.length > base) {
            return Error(fmt::format("bus: {} at {:#x} overlaps {}", name, base, prev.name));
        }
    }
    return ok();
}

const IoBus::Range* IoBus::find(std::uint64_t address, std::size_t size) const {
    auto it = std::upper_bound(m_ranges.begin(), m_ranges.end(), address,
                               [](std::uint64_t a, const Range& r) { return a < r.base; });
    if (it == m_ranges.begin()) {
        return nullptr;
    }
    const Range& r = *(it - 1);
    const std::uint64_t offset = address - r.base;
    if (offset >= r.length || size > r.length - offset) {
        return nullptr;
    }
    return &r;
}

bool IoBus::read(std::uint64_t address, std::span<std::uint8_t> data) const {
    const Range* r = find(address, data.size());
    if (r == nullptr) {
        return false;
    }
    r->device->read(address - r->base, data);
    return true;
}

bool IoBus::write(std::uint64_t address, std::span<const std::uint8_t> data) const {
    const Range* r = find(address, data.size());
    if (r == nullptr) {
        return false;
    }
    r->device->write(address - r->base, data);
    return true;
}

}  // namespace vireo
