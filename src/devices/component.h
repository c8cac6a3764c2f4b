// One part of the machine as the component registry (machine/component_registry.h) sees it: what
// the snapshot saves of it, what the DSDT says about it, what it counts, and how it is paused.
// Where it sits (ports, MMIO ranges, interrupt lines, PCI slot) is the machine's choice, given at
// registration: a device sees offsets, not placement (DESIGN.md §6), and is told its placement
// only to describe it in ACPI.
//
// Adding a device to vireo: the device's files (its class implementing Component, its state
// struct with persist(), its AML) and one registration line in machine/.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "acpi/aml.h"
#include "base/result.h"
#include "base/state_archive.h"
#include "bus/bus_device.h"

namespace vireo {

// A range on the port-I/O or MMIO bus and the bus device that answers it (the component itself
// or one of its parts, e.g. the PCI root's CONFIG_ADDRESS/DATA ports and its ECAM window).
struct BusRange {
    std::uint64_t base = 0;
    std::uint64_t size = 0;
    std::shared_ptr<BusDevice> device;
};

struct Placement {
    std::vector<BusRange> ports{};
    std::vector<BusRange> mmio{};
    // Interrupt inputs (GSIs) the component drives. No two components may name the same GSI: a
    // component that shares a line among its own parts (the PCI root's INTx) names it once.
    std::vector<std::uint32_t> gsis{};
    std::optional<std::uint8_t> pci_slot{};  // on the root bus
};

class Component {
public:
    virtual ~Component() = default;

    // Device objects for the DSDT's \_SB_ scope, describing the component where it was placed.
    virtual std::vector<acpi::Aml> acpi_devices(const Placement& /*placement*/) const { return {}; }

    // The version of the encoding save_section() writes; 0: the component saves nothing (it is
    // rebuilt from the configuration, or made anew on restore as the VM generation ID is).
    virtual std::uint32_t state_version() const { return 0; }
    // Only while the machine is paused.
    virtual Result<std::vector<std::uint8_t>> save_section() { return std::vector<std::uint8_t>{}; }
    // `version` is between 1 and state_version(): a component reads every encoding it ever
    // wrote. The bytes are input (a file from anywhere): decode with caps, refuse bad values.
    virtual Result<void> restore_section(std::span<const std::uint8_t> /*bytes*/,
                                         std::uint32_t /*version*/) {
        return ok();
    }

    // The VMM's pause and resume of any thread the component runs (the device thread of a
    // virtio device). From the machine's control thread.
    virtual void pause() {}
    virtual void resume() {}
    // Back to the state the driver found at power-on, and any thread the component runs
    // stopped: what the machine does before it is torn down (ComponentRegistry::reset_all), so
    // no device thread outlives the vCPUs, interrupt lines and VM it uses, whatever the order
    // the owners are destroyed in. A virtio function resets as when its driver writes status 0.
    // Components without a thread or driver-programmed state that matters past the machine's
    // life need nothing (the default): vireo exits on a guest reset, as Firecracker does, so
    // there is no in-place reboot for their registers to survive.
    virtual void reset() {}

    // Counters for the metrics line as JSON members without braces, or empty for none.
    virtual std::string metrics_json() const { return {}; }
};

// Component's state methods for a device whose whole state is one State struct with persist(),
// read back by `restore_state(const State&)` (returning void or Result<void>): the device
// declares `class Dev : ..., public StateComponent<Dev, DevState>` and gets version 1 of its
// section. A device that changes State's encoding overrides state_version() and
// restore_section() to keep reading version 1.
template <typename Device, typename State>
class StateComponent : public Component {
public:
    std::uint32_t state_version() const override { return 1; }
    Result<std::vector<std::uint8_t>> save_section() override {
        return save_to_bytes(static_cast<Device&>(*this).save_state());
    }
    Result<void> restore_section(std::span<const std::uint8_t> bytes,
                                 std::uint32_t /*version*/) override {
        auto state = load_from_bytes<State>(bytes);
        if (!state) {
            return state.error();
        }
        auto& self = static_cast<Device&>(*this);
        if constexpr (std::is_void_v<decltype(self.restore_state(*state))>) {
            self.restore_state(*state);
            return ok();
        } else {
            return self.restore_state(*state);
        }
    }
};

}  // namespace vireo
