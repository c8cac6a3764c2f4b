// The VM Generation ID and Generic Event Device in the DSDT, checked byte for byte against
// encodings worked out by hand from ACPI 6.4 §20 (AML) and §6.4.3.6 (Extended Interrupt
// Descriptor); plus what validate() and write_acpi_tables() refuse. The expected DSDT body is
// also what `iasl -f -on` (force past its complaint about the "VMGENCTR" _HID, no name-path
// optimisation) makes of the ASL in the comments below.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "acpi/acpi_tables.h"

namespace vireo::acpi {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes str(std::string_view chars) {
    return Bytes(chars.begin(), chars.end());
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

// Name (seg, "text"): NameOp, NameSeg, String (0D ... 00).
Bytes name_str(std::string_view seg, std::string_view text) {
    return cat({{0x08}, str(seg), {0x0D}, str(text), {0x00}});
}

bool contains(std::span<const std::uint8_t> hay, const Bytes& needle) {
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

PlatformDescription with_vm_gen_id(std::uint64_t address = 0xEF000, std::uint32_t gsi = 5) {
    PlatformDescription desc;
    desc.ioapic_id = 1;
    desc.vm_gen_id = VmGenIdDesc{address, gsi};
    return desc;
}

// Device (VGEN) {
//     Name (_HID, "VMGENCTR")
//     Name (_CID, "VM_Gen_Counter")
//     Name (_DDN, "VM_Gen_Counter")
//     Method (ADDR, 0, NotSerialized) { Return (Package (2) { 0xEF000, 0 }) }
// }
Bytes expected_vgen() {
    return cat({
        {0x5B, 0x82, 0x40, 0x05, 'V', 'G', 'E', 'N'},  // DeviceOp, PkgLength 0x50 (2 bytes)
        name_str("_HID", "VMGENCTR"),
        name_str("_CID", "VM_Gen_Counter"),
        name_str("_DDN", "VM_Gen_Counter"),
        {0x14, 0x10, 'A', 'D', 'D', 'R', 0x00},  // MethodOp, PkgLength 16, no args, not serialized
        {0xA4, 0x12, 0x08, 0x02},                // ReturnOp, PackageOp, PkgLength 8, 2 elements
        {0x0C, 0x00, 0xF0, 0x0E, 0x00},          // DWordConst 0x000EF000
        {0x00},                                  // ZeroOp: the high half
    });
}

// Device (GED0) {
//     Name (_HID, "ACPI0013")
//     Name (_UID, 0)
//     Name (_CRS, ResourceTemplate () {
//         Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, , , ) { 5 } })
//     Method (_EVT, 1, Serialized) { If (LEqual (Arg0, 5)) { Notify (\_SB.VGEN, 0x80) } }
// }
Bytes expected_ged0() {
    return cat({
        {0x5B, 0x82, 0x49, 0x04, 'G', 'E', 'D', '0'},  // DeviceOp, PkgLength 0x49 (2 bytes)
        name_str("_HID", "ACPI0013"),
        {0x08, '_', 'U', 'I', 'D', 0x00},                        // Name (_UID, Zero)
        {0x08, '_', 'C', 'R', 'S', 0x11, 0x0E, 0x0A, 0x0B},      // Buffer, PkgLength 14, 11
        {0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00},  // consumer|edge, 1 GSI: 5
        {0x79, 0x00},                                            // End Tag
        {0x14, 0x19, '_', 'E', 'V', 'T', 0x09},  // MethodOp, PkgLength 25, 1 arg, serialized
        {0xA0, 0x12},                            // IfOp, PkgLength 18
        {0x93, 0x68, 0x0A, 0x05},                // LEqual (Arg0, 5)
        {0x86, 0x5C, 0x2E, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N'},  // Notify (\_SB_.VGEN,
        {0x0A, 0x80},                                                //         0x80)
    });
}

TEST(AcpiVmGenId, DsdtHoldsBothDevicesInSb) {
    auto dsdt = build_dsdt(with_vm_gen_id());
    ASSERT_TRUE(dsdt.ok()) << dsdt.error().message();
    const Bytes vgen = expected_vgen();
    const Bytes ged0 = expected_ged0();
    ASSERT_EQ(vgen.size(), 82U);
    ASSERT_EQ(ged0.size(), 75U);
    // Scope (\_SB_) { VGEN GED0 }: ScopeOp, PkgLength 2 + 5 + 82 + 75 = 164 = 0xA4 (2 bytes).
    const Bytes scope{0x10, 0x44, 0x0A, 0x5C, '_', 'S', 'B', '_'};
    Bytes body = scope;
    body.insert(body.end(), vgen.begin(), vgen.end());
    body.insert(body.end(), ged0.begin(), ged0.end());
    const Bytes s5{0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00};
    body.insert(body.end(), s5.begin(), s5.end());
    EXPECT_EQ(Bytes(dsdt->begin() + 36, dsdt->end()), body);
}

TEST(AcpiVmGenId, AddressAbove4GiBSplitsIntoTwoIntegers) {
    auto dsdt = build_dsdt(with_vm_gen_id(0x1'2345'6780ULL));
    ASSERT_TRUE(dsdt.ok()) << dsdt.error().message();
    // Package (2) { 0x23456780, 1 }: PkgLength 8 as before, OneOp for the high half.
    EXPECT_TRUE(contains(*dsdt, {0x12, 0x08, 0x02, 0x0C, 0x80, 0x67, 0x45, 0x23, 0x01}));
}

TEST(AcpiVmGenId, GedGsiIsInCrsAndEvt) {
    auto dsdt = build_dsdt(with_vm_gen_id(0xEF000, 23));
    ASSERT_TRUE(dsdt.ok()) << dsdt.error().message();
    EXPECT_TRUE(contains(*dsdt, {0x89, 0x06, 0x00, 0x03, 0x01, 0x17, 0x00, 0x00, 0x00}));
    EXPECT_TRUE(contains(*dsdt, {0x93, 0x68, 0x0A, 0x17}));
}

TEST(AcpiVmGenId, AbsentWithoutDescription) {
    PlatformDescription desc;
    auto dsdt = build_dsdt(desc);
    ASSERT_TRUE(dsdt.ok());
    EXPECT_FALSE(contains(*dsdt, str("VGEN")));
    EXPECT_FALSE(contains(*dsdt, str("GED0")));
}

TEST(AcpiVmGenId, ValidateRejectsBadAddressesAndTakenGsis) {
    EXPECT_TRUE(validate(with_vm_gen_id()).ok());
    EXPECT_TRUE(validate(with_vm_gen_id(0xEFFF0)).ok());             // last 16 bytes of the page
    EXPECT_FALSE(validate(with_vm_gen_id(0xEF004)).ok());            // not 8-byte aligned
    EXPECT_FALSE(validate(with_vm_gen_id(0xEFFF8)).ok());            // crosses into the next page
    EXPECT_FALSE(validate(with_vm_gen_id(~std::uint64_t{7})).ok());  // would wrap
    EXPECT_FALSE(validate(with_vm_gen_id(0xEF000, 24)).ok());        // no such I/O APIC input
    EXPECT_FALSE(validate(with_vm_gen_id(0xEF000, 0)).ok());         // PIT
    EXPECT_FALSE(validate(with_vm_gen_id(0xEF000, 2)).ok());         // PIT, overridden

    auto desc = with_vm_gen_id(0xEF000, 4);
    EXPECT_TRUE(validate(desc).ok());
    desc.serial_ports = {{0x3F8, 4}};
    EXPECT_FALSE(validate(desc).ok());
    EXPECT_FALSE(build_dsdt(desc).ok());

    desc = with_vm_gen_id(0xEF000, 1);
    desc.i8042_irq = 1;
    EXPECT_FALSE(validate(desc).ok());

    desc = with_vm_gen_id(0xEF000, 17);
    PciHostBridgeDesc pci;
    pci.ecam = {0xE0000000, 0, 0, 0};
    pci.mmio32_base = 0xC0000000;
    pci.mmio32_size = 0x10000000;
    pci.routing = {{1, 0, 17}};
    desc.pci = pci;
    EXPECT_FALSE(validate(desc).ok());
    desc.pci->routing = {{1, 0, 18}};
    EXPECT_TRUE(validate(desc).ok());
}

GuestMemory make_memory() {
    const MemoryRegionSpec spec[] = {{GuestAddress(0), 1 << 20}};
    auto m = GuestMemory::create(spec);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message());
    return std::move(m).value();
}

TEST(AcpiVmGenId, WriteTablesKeepsTheIdClearOfTheTables) {
    auto mem = make_memory();
    auto write = [&](std::uint64_t id, std::uint64_t rsdp = 0xE0000) {
        return write_acpi_tables(mem, with_vm_gen_id(id), GuestAddress(rsdp), GuestAddress(0xE0040),
                                 GuestAddress(0xEF000));
    };
    auto r = write(0xEF000);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_LE(r->end, GuestAddress(0xEF000));
    EXPECT_FALSE(write(0xE0048).ok());           // inside the DSDT
    EXPECT_FALSE(write(0xE0010).ok());           // inside the RSDP
    EXPECT_FALSE(write(0xEF000, 0xEF000).ok());  // the RSDP placed on it
    EXPECT_FALSE(write(0x200000).ok());          // not guest RAM
    EXPECT_TRUE(write(0xE0028).ok());            // between the RSDP (36 bytes) and the tables
}

}  // namespace
}  // namespace vireo::acpi
