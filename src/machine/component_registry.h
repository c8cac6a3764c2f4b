// Every component of a machine, registered once with its name and placement (devices/component.h).
// Snapshot, restore, the DSDT's devices, pause/resume and metrics walk this list, in
// registration order; so restore puts devices back in the order they were registered (the PCI
// root after the functions on it, so that it decodes the BARs they hold).
//
// Section names are the component names. A snapshot section that no component claims and that
// the machine does not own itself (its RAM layout, platform state and vCPUs) is an error, as is a
// component whose section is missing: the snapshot and the configuration describe different
// hardware.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bus/io_bus.h"
#include "devices/component.h"
#include "snapshot/snapshot_file.h"

namespace vireo {

class ComponentRegistry {
public:
    struct Entry {
        std::string name;
        std::shared_ptr<Component> component;
        Placement placement;
    };

    ComponentRegistry(IoBus& ports, IoBus& mmio) : m_ports(ports), m_mmio(mmio) {}

    // Puts the component's ranges on the buses. Refused, with nothing changed, when the name is
    // taken or not a valid section name, a range overlaps another, or a GSI or PCI slot is
    // already another component's.
    Result<void> add(std::string name, std::shared_ptr<Component> component,
                     Placement placement = {});

    Component* find(std::string_view name) const;
    const std::vector<Entry>& entries() const { return m_entries; }

    // Every component's Device objects, for the DSDT.
    std::vector<acpi::Aml> acpi_devices() const;
    // One section per component with state (state_version() > 0). Only while paused.
    Result<void> save(SnapshotContents& out) const;
    // Gives each component its section. `machine_owned` says which other section names the
    // caller handles itself.
    Result<void> restore(const SnapshotContents& in,
                         const std::function<bool(std::string_view)>& machine_owned) const;
    void pause_all() const;
    void resume_all() const;
    // Every component's reset(), in registration order (the functions on the PCI root before
    // the root).
    void reset_all() const;
    // {"name":"<component>",<its members>} for each component that counts something, joined
    // with commas (the metrics line's "devices" array).
    std::string metrics_json() const;

private:
    IoBus& m_ports;
    IoBus& m_mmio;
    std::vector<Entry> m_entries;
};

}  // namespace vireo
