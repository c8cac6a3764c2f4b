#include "machine/component_registry.h"

#include <algorithm>

#include <fmt/format.h>

namespace vireo {

namespace {

// Section names are written into state files: short, printable, no spaces.
bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > kSnapshotMaxNameSize) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    });
}

bool overlap(const BusRange& a, const BusRange& b) {
    return a.base < b.base + b.size && b.base < a.base + a.size;
}

// Ranges of one registration must not overlap each other either.
Result<void> check_own(const std::string& name, const std::vector<BusRange>& ranges,
                       const char* space) {
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        for (std::size_t j = i + 1; j < ranges.size(); ++j) {
            if (overlap(ranges[i], ranges[j])) {
                return Error(fmt::format("component {}: its {} ranges {:#x} and {:#x} overlap",
                                         name, space, ranges[i].base, ranges[j].base));
            }
        }
    }
    return ok();
}

}  // namespace

Result<void> ComponentRegistry::add(std::string name, std::shared_ptr<Component> component,
                                    Placement placement) {
    if (!valid_name(name)) {
        return Error(fmt::format("component name '{}' is not a valid section name", name));
    }
    if (component == nullptr) {
        return Error(fmt::format("component {}: no component", name));
    }
    if (find(name) != nullptr) {
        return Error(fmt::format("component {} is registered twice", name));
    }
    for (const auto& e : m_entries) {
        for (auto gsi : placement.gsis) {
            if (std::find(e.placement.gsis.begin(), e.placement.gsis.end(), gsi) !=
                e.placement.gsis.end()) {
                return Error(
                    fmt::format("component {}: GSI {} is already {}'s", name, gsi, e.name));
            }
        }
        if (placement.pci_slot && e.placement.pci_slot == placement.pci_slot) {
            return Error(fmt::format("component {}: PCI slot {} is already {}'s", name,
                                     *placement.pci_slot, e.name));
        }
    }
    for (auto r :
         {check_own(name, placement.ports, "port"), check_own(name, placement.mmio, "MMIO")}) {
        if (!r) {
            return r;
        }
    }
    for (const auto& r : placement.ports) {
        if (auto free = m_ports.check_free(r.base, r.size, name); !free) {
            return free;
        }
    }
    for (const auto& r : placement.mmio) {
        if (auto free = m_mmio.check_free(r.base, r.size, name); !free) {
            return free;
        }
    }
    // Checked above: none of these can fail now, so a refused add changes nothing.
    for (const auto& r : placement.ports) {
        static_cast<void>(m_ports.insert(r.base, r.size, r.device, name));
    }
    for (const auto& r : placement.mmio) {
        static_cast<void>(m_mmio.insert(r.base, r.size, r.device, name));
    }
    m_entries.push_back({std::move(name), std::move(component), std::move(placement)});
    return ok();
}

Component* ComponentRegistry::find(std::string_view name) const {
    for (const auto& e : m_entries) {
        if (e.name == name) {
            return e.component.get();
        }
    }
    return nullptr;
}

std::vector<acpi::Aml> ComponentRegistry::acpi_devices() const {
    std::vector<acpi::Aml> out;
    for (const auto& e : m_entries) {
        for (auto& aml : e.component->acpi_devices(e.placement)) {
            out.push_back(std::move(aml));
        }
    }
    return out;
}

Result<void> ComponentRegistry::save(SnapshotContents& out) const {
    for (const auto& e : m_entries) {
        const auto version = e.component->state_version();
        if (version == 0) {
            continue;
        }
        auto bytes = e.component->save_section();
        if (!bytes) {
            return bytes.error().wrap(fmt::format("saving {}", e.name));
        }
        out.add(e.name, std::move(bytes).value(), version);
    }
    return ok();
}

Result<void> ComponentRegistry::restore(
    const SnapshotContents& in, const std::function<bool(std::string_view)>& machine_owned) const {
    for (const auto& s : in.sections) {
        if (!machine_owned(s.name) && find(s.name) == nullptr) {
            return Error(fmt::format(
                "the snapshot has a section '{}' that no component of this configuration claims "
                "(the snapshot's hardware differs)",
                s.name));
        }
    }
    for (const auto& e : m_entries) {
        const auto version = e.component->state_version();
        if (version == 0) {
            continue;
        }
        const SnapshotSection* s = in.find(e.name);
        if (s == nullptr) {
            return Error(fmt::format("the snapshot has no '{}' section", e.name));
        }
        if (s->version == 0 || s->version > version) {
            return Error(
                fmt::format("section '{}' has version {}; this vireo reads versions 1 to {}",
                            e.name, s->version, version));
        }
        if (auto r = e.component->restore_section(s->data, s->version); !r) {
            return r.error().wrap(fmt::format("section '{}'", e.name));
        }
    }
    return ok();
}

void ComponentRegistry::pause_all() const {
    for (const auto& e : m_entries) {
        e.component->pause();
    }
}

void ComponentRegistry::resume_all() const {
    for (const auto& e : m_entries) {
        e.component->resume();
    }
}

void ComponentRegistry::reset_all() const {
    for (const auto& e : m_entries) {
        e.component->reset();
    }
}

std::string ComponentRegistry::metrics_json() const {
    std::string out;
    for (const auto& e : m_entries) {
        const auto members = e.component->metrics_json();
        if (members.empty()) {
            continue;
        }
        out += fmt::format("{}{{\"name\":\"{}\",{}}}", out.empty() ? "" : ",", e.name, members);
    }
    return out;
}

}  // namespace vireo
