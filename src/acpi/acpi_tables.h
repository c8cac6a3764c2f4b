// ACPI tables for x86-64 Linux guests (ACPI 6.4): RSDP -> XSDT -> {FADT -> DSDT, MADT, [MCFG]},
// built as byte strings and placed in guest memory. The platform is hardware-reduced ACPI (§4.1):
// no PM1/GPE blocks, no SCI, no FACS; sleep and reset go through 8-bit System I/O registers.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "acpi/aml.h"
#include "base/result.h"
#include "memory/guest_address.h"
#include "memory/guest_memory.h"

namespace vireo::acpi {

// The ECAM region of one PCI segment: the MCFG table's one allocation (PCI Firmware 3.2 §4.1.2).
struct EcamDesc {
    std::uint64_t base;  // ECAM base address for bus 0 of the segment
    std::uint16_t segment;
    std::uint8_t start_bus;
    std::uint8_t end_bus;
};

// A guest-physical range the tables must not overlap (e.g. the VM generation ID's 16 bytes,
// which its device writes into the same reserved area).
struct KeepClear {
    std::uint64_t address;
    std::uint64_t size;
    const char* what;
};

struct PlatformDescription {
    std::uint32_t num_cpus = 1;  // LAPIC IDs 0..num_cpus-1, ACPI processor UIDs the same
    std::uint64_t lapic_address = 0xfee00000;   // must fit the MADT's 32-bit field
    std::uint64_t ioapic_address = 0xfec00000;  // must fit the I/O APIC structure's 32-bit field
    std::uint8_t ioapic_id = 0;  // caller passes num_cpus (must not clash with APIC IDs)
    // Hardware-reduced ACPI (FADT flag HW_REDUCED_ACPI): sleep control/status registers and the
    // reset register are 8-bit System I/O ports.
    std::uint16_t sleep_control_port = 0x600;
    std::uint16_t sleep_status_port = 0x601;
    std::uint16_t reset_port = 0x602;
    std::uint8_t reset_value = 0x1;
    // Value of the \_S5_ package elements (SLP_TYP, 3 bits); the guest writes (type << 2) | 0x20
    // (SLP_EN) to the sleep control register (§4.8.3.7).
    std::uint8_t s5_sleep_type = 5;
    // The 8042 flag of the FADT's IA-PC boot architecture flags: a keyboard controller is there.
    bool i8042 = false;
    // When set, an MCFG table describes this ECAM region.
    std::optional<EcamDesc> ecam;
    // The devices' own descriptions, Device objects for \_SB_, in order (each device writes its
    // AML beside its code; machine/component_registry collects them). An Aml carrying an error
    // fails build_dsdt().
    std::vector<Aml> devices;
    std::vector<KeepClear> keep_clear;
};

// Where write_acpi_tables() put each table; `end` is one past the last table byte.
struct AcpiLayout {
    GuestAddress rsdp;
    GuestAddress xsdt;
    GuestAddress fadt;
    GuestAddress dsdt;
    GuestAddress madt;
    std::optional<GuestAddress> mcfg;
    GuestAddress end;
};

// Error unless 1 <= num_cpus <= 255, ioapic_id >= num_cpus, both APIC addresses < 4 GiB,
// s5_sleep_type <= 7, and the ECAM's start_bus <= end_bus without wrapping. The devices' AML
// checks itself (an Aml carries its first error).
Result<void> validate(const PlatformDescription& desc);

// Writes the RSDP at `rsdp_address` (16-byte aligned) and the other tables packed from
// `tables_start` upward, each 8-byte aligned, in the order DSDT, FADT, MADT, [MCFG], XSDT.
// Nothing is written when the description is invalid, the tables would pass `tables_end`, the
// RSDP overlaps them, or any of them is not inside guest RAM or overlaps a `keep_clear` range.
Result<AcpiLayout> write_acpi_tables(GuestMemory& mem, const PlatformDescription& desc,
                                     GuestAddress rsdp_address, GuestAddress tables_start,
                                     GuestAddress tables_end);

// The byte that makes `bytes` (with the checksum field holding 0) sum to zero mod 256.
std::uint8_t checksum(std::span<const std::uint8_t> bytes);

// Table builders, exposed for tests. Each returns the complete table with length and checksum
// filled in. The ones taking a description expect it to have passed validate().
Result<std::vector<std::uint8_t>> build_dsdt(const PlatformDescription& desc);
std::vector<std::uint8_t> build_fadt(const PlatformDescription& desc, GuestAddress dsdt);
std::vector<std::uint8_t> build_madt(const PlatformDescription& desc);
std::vector<std::uint8_t> build_mcfg(const EcamDesc& ecam);
std::vector<std::uint8_t> build_xsdt(std::span<const std::uint64_t> entries);
std::vector<std::uint8_t> build_rsdp(GuestAddress xsdt);

}  // namespace vireo::acpi
