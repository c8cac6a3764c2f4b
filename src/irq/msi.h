// Message-signalled interrupts (PCI Local Bus 3.0 §6.8, x86: Intel SDM vol. 3 §11.11): a device
// raises an interrupt by writing `data` to `address`. Devices hold an MsiRoute per vector and never
// know which accelerator is behind it (DESIGN.md §2); KVM implements a route as a GSI in the
// routing table (KVM_SET_GSI_ROUTING) fed by an irqfd.
#pragma once

#include <cstdint>
#include <memory>

#include "base/result.h"

namespace vireo {

struct MsiMessage {
    std::uint64_t address = 0;  // 0xfeeXXXXX on x86: destination APIC ID in bits 19:12
    std::uint32_t data = 0;     // vector in bits 7:0, delivery mode in bits 10:8

    bool operator==(const MsiMessage&) const = default;
};

class MsiRoute {
public:
    virtual ~MsiRoute() = default;
    // Points the route at `message`. Called when the guest programs an MSI-X table entry;
    // takes effect for every later trigger().
    virtual Result<void> set_message(const MsiMessage& message) = 0;
    // Raises the interrupt once (edge). Callable from any thread, never blocks for long.
    virtual void trigger() = 0;
};

class MsiController {
public:
    virtual ~MsiController() = default;
    virtual Result<std::unique_ptr<MsiRoute>> create_msi_route() = 0;
};

}  // namespace vireo
