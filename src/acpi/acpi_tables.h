// ACPI tables for x86-64 Linux guests (ACPI 6.4): RSDP -> XSDT -> {FADT -> DSDT, MADT, [MCFG]},
// built as byte strings and placed in guest memory. The platform is hardware-reduced ACPI (§4.1):
// no PM1/GPE blocks, no SCI, no FACS; sleep and reset go through 8-bit System I/O registers.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "memory/guest_address.h"
#include "memory/guest_memory.h"

namespace vireo::acpi {

struct SerialPortDesc {
    std::uint16_t base;  // 8 I/O ports from here
    std::uint8_t irq;    // ISA IRQ 0-15 (an IRQ descriptor mask is 16 bits)
};

struct EcamDesc {
    std::uint64_t base;  // ECAM base address for bus 0 of the segment
    std::uint16_t segment;
    std::uint8_t start_bus;
    std::uint8_t end_bus;
};

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
// `ecam` also yields the MCFG table.
struct PciHostBridgeDesc {
    EcamDesc ecam;
    std::uint64_t mmio32_base = 0;  // window below 4 GiB
    std::uint64_t mmio32_size = 0;
    std::uint64_t mmio64_base = 0;  // size 0: no 64-bit window
    std::uint64_t mmio64_size = 0;
    std::vector<PciRoutingEntry> routing;  // at most 255 entries (a Package's limit)
};

// A Virtual Machine Generation ID (Microsoft, "Virtual Machine Generation ID", 2012; the device
// Linux's drivers/virt/vmgenid.c and Windows drive) and the Generic Event Device (ACPI 6.4
// §5.6.9) that tells the guest it changed: a hardware-reduced platform has no GPE block to raise
// the SCI with, so the notification is an interrupt whose handler is AML. In \_SB_:
//   Device(VGEN): _HID "VMGENCTR" (the id Linux matches), _CID and _DDN "VM_Gen_Counter" (the
//     spec's; ACPICA upper-cases a _CID string, which Linux also matches), Method ADDR returning
//     Package {low 32 bits, high 32 bits} of the guest-physical address of the 16-byte ID.
//     "VMGENCTR" is not a well-formed ACPI ID (iASL wants 4 hex digits after the vendor part)
//     but no OS checks that at run time; QEMU's "QEMUVGID" and Firecracker's "FCVMGID" are alike.
//   Device(GED0): _HID "ACPI0013", _UID 0, _CRS Interrupt(ResourceConsumer, Edge, ActiveHigh,
//     Exclusive) {ged_gsi}, Method _EVT(1) { If (Arg0 == ged_gsi) { Notify(\_SB_.VGEN, 0x80) } }.
// Linux's GED driver (drivers/acpi/evged.c) requests the interrupt from _CRS and runs _EVT with
// the GSI on each edge; Notify 0x80 makes the vmgenid driver re-read the ID. Edge-triggered
// because the GED has no register to acknowledge a level with. No MADT Interrupt Source Override
// is needed: a GSI below 16 is ISA IRQ n identity-mapped, whose default is edge, active-high.
struct VmGenIdDesc {
    std::uint64_t guid_address;  // 8-byte aligned; the 16 bytes stay inside one 4 KiB page
    std::uint32_t ged_gsi;       // an I/O APIC input no other device of the description uses
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
    // Each becomes Device(COMn) (n = 1..99) PNP0501 in \_SB_ with IO + IRQ in _CRS.
    std::vector<SerialPortDesc> serial_ports;
    // When set: Device(PS2K) PNP0303 in \_SB_, an i8042 keyboard controller at ports 0x60 and
    // 0x64 with this IRQ (< 16) in _CRS; no mouse device (Linux then sets i8042.noaux itself).
    // On a hardware-reduced platform Linux has no legacy PIC and maps an ISA IRQ only when a
    // device's _CRS names it: without this device the i8042 driver cannot request IRQ 1.
    std::optional<std::uint8_t> i8042_irq;
    // When set, an MCFG table is added to the XSDT. With `pci` set too, both must agree; `pci`
    // alone also adds the MCFG.
    std::optional<EcamDesc> ecam;
    std::optional<PciHostBridgeDesc> pci;
    std::optional<VmGenIdDesc> vm_gen_id;
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
// s5_sleep_type <= 7, at most 99 serial ports each with irq < 16 and base <= 0xfff8, an i8042 irq
// < 16, ecam
// start_bus <= end_bus, and a PCI host bridge whose windows are non-empty and do not wrap (the
// 32-bit one below 4 GiB), whose routing has at most 255 entries with slot < 32 and pin < 4,
// and whose ECAM equals `ecam` when both are given; a VM generation ID whose address is 8-byte
// aligned with its 16 bytes inside one page, and whose GED GSI is below 24 (the I/O APIC's
// inputs), not 0 or 2 (the PIT's ISA IRQ and the I/O APIC pin it is routed to) and not used by a
// serial port, the i8042 or a PCI route.
Result<void> validate(const PlatformDescription& desc);

// Writes the RSDP at `rsdp_address` (16-byte aligned) and the other tables packed from
// `tables_start` upward, each 8-byte aligned, in the order DSDT, FADT, MADT, [MCFG], XSDT.
// Nothing is written when the description is invalid, the tables would pass `tables_end`, the
// RSDP overlaps them, or any of them is not inside guest RAM; nor when the VM generation ID's
// 16 bytes (which its device writes, not this function) overlap a table or are not in guest RAM.
Result<AcpiLayout> write_acpi_tables(GuestMemory& mem, const PlatformDescription& desc,
                                     GuestAddress rsdp_address, GuestAddress tables_start,
                                     GuestAddress tables_end);

// The byte that makes `bytes` (with the checksum field holding 0) sum to zero mod 256.
std::uint8_t checksum(std::span<const std::uint8_t> bytes);

// Table builders, exposed for tests. Each returns the complete table with length and checksum
// filled in. The ones taking a description expect it to have passed validate(); build_dsdt
// re-checks the serial ports because AML cannot express out-of-range ones.
Result<std::vector<std::uint8_t>> build_dsdt(const PlatformDescription& desc);
// The ECAM the MCFG describes: `ecam`, else the PCI host bridge's, else none.
std::optional<EcamDesc> mcfg_ecam(const PlatformDescription& desc);
std::vector<std::uint8_t> build_fadt(const PlatformDescription& desc, GuestAddress dsdt);
std::vector<std::uint8_t> build_madt(const PlatformDescription& desc);
std::vector<std::uint8_t> build_mcfg(const EcamDesc& ecam);
std::vector<std::uint8_t> build_xsdt(std::span<const std::uint64_t> entries);
std::vector<std::uint8_t> build_rsdp(GuestAddress xsdt);

}  // namespace vireo::acpi
