// Guest writes that only need to wake a device thread (a virtqueue notify) can skip the vCPU
// exit path entirely: the accelerator signals an eventfd itself (KVM_IOEVENTFD). Devices see an
// IoEventRegistry and never the accelerator (DESIGN.md §2). Without one, the device's own
// write() handler signals the same eventfd, so device threads wait on one thing either way.
#pragma once

#include <cstdint>
#include <optional>

#include "base/result.h"

namespace vireo {

struct IoEventAddress {
    bool mmio = true;  // false: a port
    std::uint64_t address = 0;
    std::uint32_t length = 0;                // 1, 2, 4 or 8
    std::optional<std::uint64_t> datamatch;  // only writes of this value, when set

    bool operator==(const IoEventAddress&) const = default;
};

class IoEventRegistry {
public:
    virtual ~IoEventRegistry() = default;
    virtual Result<void> add_ioevent(const IoEventAddress& where, int eventfd) = 0;
    virtual Result<void> remove_ioevent(const IoEventAddress& where, int eventfd) = 0;
};

}  // namespace vireo
