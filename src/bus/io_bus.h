// An address space of device ranges (the port-I/O space or guest-physical MMIO). Ranges are
// registered while the machine is built and never change while vCPUs run, so lookups take no
// lock.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "bus/bus_device.h"

namespace vireo {

class IoBus {
public:
    // Fails if [base, base + length) is empty, wraps or overlaps a registered range.
    Result<void> insert(std::uint64_t base, std::uint64_t length, std::shared_ptr<BusDevice> device,
                        std::string name);
    // What insert() would refuse, without inserting.
    Result<void> check_free(std::uint64_t base, std::uint64_t length,
                            const std::string& name) const;

    // Dispatch an access; false when no device claims `address` (the caller counts and ignores it).
    // An access that starts inside a range but runs past its end is not claimed either.
    bool read(std::uint64_t address, std::span<std::uint8_t> data) const;
    bool write(std::uint64_t address, std::span<const std::uint8_t> data) const;

private:
    struct Range {
        std::uint64_t base;
        std::uint64_t length;
        std::shared_ptr<BusDevice> device;
        std::string name;
    };
    const Range* find(std::uint64_t address, std::size_t size) const;
    std::vector<Range> m_ranges;  // sorted by base, non-overlapping
};

}  // namespace vireo
