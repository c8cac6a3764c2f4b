#include "devices/pci/pci_host_bridge_acpi.h"

#include <fmt/format.h>

namespace vireo {

using acpi::Aml;
using acpi::EcamDesc;
using namespace acpi;  // the resource descriptor builders

namespace {

constexpr std::uint64_t kEcamBusSize = std::uint64_t{1} << 20;  // PCI Firmware 3.2 §4.1.2
constexpr std::uint64_t k4GiB = std::uint64_t{1} << 32;
constexpr std::size_t kMaxPciRoutes = 255;  // a Package holds at most 255 elements

// [base, base + size) is non-empty and ends at or below `limit` (which may be 2^64 - 1 to mean
// "does not wrap").
bool range_ok(std::uint64_t base, std::uint64_t size, std::uint64_t limit) {
    return size != 0 && base <= limit && size - 1 <= limit - base;
}

// The part of the ECAM region the bus range uses: the MCFG base is that of bus 0 (§4.1.2).
struct EcamRange {
    std::uint64_t base;
    std::uint64_t size;
};
EcamRange ecam_range(const EcamDesc& ecam) {
    return {ecam.base + ecam.start_bus * kEcamBusSize,
            (std::uint64_t{ecam.end_bus} - ecam.start_bus + 1) * kEcamBusSize};
}

}  // namespace

Result<void> validate(const PciHostBridgeDesc& pci) {
    if (pci.ecam.start_bus > pci.ecam.end_bus) {
        return Error("PCI ECAM start bus is after end bus");
    }
    const auto ecam = ecam_range(pci.ecam);
    if (!range_ok(pci.ecam.base, ecam.base - pci.ecam.base + ecam.size, UINT64_MAX)) {
        return Error(fmt::format("PCI ECAM at {:#x} wraps", pci.ecam.base));
    }
    if (!range_ok(pci.mmio32_base, pci.mmio32_size, k4GiB - 1)) {
        return Error(fmt::format("PCI 32-bit window {:#x}+{:#x} is empty or not below 4 GiB",
                                 pci.mmio32_base, pci.mmio32_size));
    }
    if (pci.mmio64_size != 0 && !range_ok(pci.mmio64_base, pci.mmio64_size, UINT64_MAX)) {
        return Error(
            fmt::format("PCI 64-bit window {:#x}+{:#x} wraps", pci.mmio64_base, pci.mmio64_size));
    }
    if (pci.routing.size() > kMaxPciRoutes) {
        return Error(fmt::format("acpi: {} PCI interrupt routes, at most {}", pci.routing.size(),
                                 kMaxPciRoutes));
    }
    for (const auto& r : pci.routing) {
        if (r.slot >= 32 || r.pin >= 4) {
            return Error(
                fmt::format("PCI route slot {} pin {} (need slot < 32, pin < 4)", r.slot, r.pin));
        }
    }
    return ok();
}

namespace {

// Device(PCI0): the host bridge and the resources it decodes (PCI Firmware 3.2 §4.1, ACPI 6.4
// §6.1.5 _HID, §6.5.6 _SEG, §6.5.5 _BBN, §6.2.2 _CRS, §6.2.13 _PRT).
Aml host_bridge_device(const PciHostBridgeDesc& pci) {
    std::vector<std::vector<std::uint8_t>> crs{
        word_address_space_descriptor(AddressSpaceType::BusNumber, false, 0, pci.ecam.start_bus,
                                      pci.ecam.end_bus),
        // CONFIG_ADDRESS/CONFIG_DATA, consumed by the bridge itself.
        io_port_descriptor(true, 0x0CF8, 0x0CF8, 1, 8),
        // Every other port goes down to the bus (the legacy devices live there, as on a PC).
        word_address_space_descriptor(AddressSpaceType::Io, false, kIoEntireRange, 0x0000, 0x0CF7),
        word_address_space_descriptor(AddressSpaceType::Io, false, kIoEntireRange, 0x0D00, 0xFFFF),
        // Non-cacheable (not prefetchable): Linux refuses to claim a non-prefetchable BAR inside
        // a prefetchable window, while prefetchable BARs may use either kind.
        dword_address_space_descriptor(
            AddressSpaceType::Memory, false, kMemoryReadWrite,
            static_cast<std::uint32_t>(pci.mmio32_base),
            static_cast<std::uint32_t>(pci.mmio32_base + pci.mmio32_size - 1)),
    };
    if (pci.mmio64_size != 0) {
        crs.push_back(qword_address_space_descriptor(AddressSpaceType::Memory, false,
                                                     kMemoryReadWrite, pci.mmio64_base,
                                                     pci.mmio64_base + pci.mmio64_size - 1));
    }
    std::vector<Aml> prt;
    for (const auto& r : pci.routing) {
        // {Address: device in the high word, 0xFFFF = any function; Pin; Source 0 = the next
        // field is a GSI; Source Index = GSI}.
        prt.push_back(Aml::package({Aml::integer((std::uint64_t{r.slot} << 16) | 0xFFFF),
                                    Aml::integer(r.pin), Aml::integer(0), Aml::integer(r.gsi)}));
    }
    return Aml::device(
        "PCI0",
        {Aml::name("_HID", Aml::eisa_id("PNP0A08")),  // PCI Express root
         Aml::name("_CID", Aml::eisa_id("PNP0A03")),  // PCI root
         Aml::name("_SEG", Aml::integer(pci.ecam.segment)),
         Aml::name("_BBN", Aml::integer(pci.ecam.start_bus)), Aml::name("_UID", Aml::integer(0)),
         Aml::name("_CRS", Aml::resource_template(crs)), Aml::name("_PRT", Aml::package(prt))});
}

// Device(PRES): a motherboard resource (PNP0C02) reserving the ECAM range; Linux looks for the
// MCFG region in the _CRS of PNP0C01/PNP0C02 devices before it trusts it.
Aml ecam_reservation(const EcamDesc& ecam) {
    const auto r = ecam_range(ecam);
    const auto descriptor =
        r.base + r.size <= k4GiB
            ? memory32_fixed_descriptor(true, static_cast<std::uint32_t>(r.base),
                                        static_cast<std::uint32_t>(r.size))
            : qword_address_space_descriptor(AddressSpaceType::Memory, true, kMemoryReadWrite,
                                             r.base, r.base + r.size - 1);
    return Aml::device("PRES", {Aml::name("_HID", Aml::eisa_id("PNP0C02")),
                                Aml::name("_CRS", Aml::resource_template({descriptor}))});
}

}  // namespace

std::vector<Aml> pci_host_bridge_aml(const PciHostBridgeDesc& pci) {
    if (auto r = validate(pci); !r) {
        return {Aml::failed(r.error())};
    }
    return {host_bridge_device(pci), ecam_reservation(pci.ecam)};
}

}  // namespace vireo
