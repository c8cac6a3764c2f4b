// The PCI root's ACPI description (the DSDT's \_SB_.PCI0 and \_SB_.PRES), written beside the PCI
// root as every device's AML is (machine/component_registry collects them).
#pragma once

#include <cstdint>
#include <vector>

#include "acpi/acpi_tables.h"
#include "acpi/aml.h"
#include "base/result.h"

namespace vireo {

// One _PRT entry (ACPI 6.4 §6.2.13): INTx `pin` (0 = INTA#) of PCI device `slot` on the root bus
// is wired to global system interrupt `gsi` (Source 0: a GSI, not a link device).
struct PciRoutingEntry {
    std::uint8_t slot;
    std::uint8_t pin;
    std::uint32_t gsi;
};

// A PCI Express host bridge (PNP0A08, compatible PNP0A03) for the DSDT: \_SB_.PCI0 with _SEG,
// _BBN, _UID, _CRS (bus numbers; ports 0xCF8-0xCFF consumed; I/O windows 0x0000-0x0CF7 and
// 0x0D00-0xFFFF; the MMIO windows) and _PRT; plus \_SB_.PRES (PNP0C02) reserving the ECAM range,
// without which Linux refuses MMCONFIG ("not reserved in ACPI motherboard resources"). Its
// `ecam` is also what the MCFG table describes (PlatformDescription::ecam).
struct PciHostBridgeDesc {
    acpi::EcamDesc ecam;
    std::uint64_t mmio32_base = 0;  // window below 4 GiB
    std::uint64_t mmio32_size = 0;
    std::uint64_t mmio64_base = 0;  // size 0: no 64-bit window
    std::uint64_t mmio64_size = 0;
    std::vector<PciRoutingEntry> routing;  // at most 255 entries (a Package's limit)
};

// Error unless the ECAM's start_bus <= end_bus without wrapping, the windows are non-empty and
// do not wrap (the 32-bit one below 4 GiB), and the routing has at most 255 entries with
// slot < 32 and pin < 4.
Result<void> validate(const PciHostBridgeDesc& pci);

// Device(PCI0) and Device(PRES); Aml values carrying the error when validate() refuses.
std::vector<acpi::Aml> pci_host_bridge_aml(const PciHostBridgeDesc& pci);

}  // namespace vireo
