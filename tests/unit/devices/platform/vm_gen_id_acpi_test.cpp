// The VM Generation ID and Generic Event Device in the DSDT, checked byte for byte against
// encodings worked out by hand from ACPI 6.4 §20 (AML) and §6.4.3.6 (Extended Interrupt
// Descriptor), as the device describes itself (VmGenId::acpi_devices); plus what the device and
// write_acpi_tables() refuse. Which GSIs other devices hold is the registry's check
// (component_registry_test). The expected DSDT body is
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
#include "devices/platform/vm_gen_id.h"

namespace vireo {
using namespace acpi;
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

struct NullIrq final : IrqLine {
    void set_level(bool) override {}
};

// Guest RAM around the ID's address: the first MiB, or a page wherever the address is.
GuestMemory memory_for(std::uint64_t address) {
    const std::uint64_t base = address < (1 << 20) ? 0 : address & ~std::uint64_t{0xFFF};
    const MemoryRegionSpec spec[] = {
        {GuestAddress(base), address < (1 << 20) ? std::uint64_t{1} << 20 : std::uint64_t{0x1000}}};
    auto m = GuestMemory::create(spec);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message());
    return std::move(m).value();
}

Result<void> zeros(std::span<std::uint8_t> out) {
    std::fill(out.begin(), out.end(), 0);
    return ok();
}

// The device's Device objects for a GED on `gsi`, as build_dsdt puts them in \_SB_.
Result<std::vector<std::uint8_t>> dsdt_with_vm_gen_id(std::uint64_t address = 0xEF000,
                                                      std::uint32_t gsi = 5) {
    static NullIrq irq;
    auto mem = memory_for(address);
    auto dev = VmGenId::create(mem, GuestAddress(address), irq, zeros);
    if (!dev) {
        return dev.error();
    }
    PlatformDescription desc;
    desc.ioapic_id = 1;
    desc.devices = (*dev)->acpi_devices(Placement{.gsis = {gsi}});
    return build_dsdt(desc);
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
    auto dsdt = dsdt_with_vm_gen_id();
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
    auto dsdt = dsdt_with_vm_gen_id(0x1'2345'6780ULL);
    ASSERT_TRUE(dsdt.ok()) << dsdt.error().message();
    // Package (2) { 0x23456780, 1 }: PkgLength 8 as before, OneOp for the high half.
    EXPECT_TRUE(contains(*dsdt, {0x12, 0x08, 0x02, 0x0C, 0x80, 0x67, 0x45, 0x23, 0x01}));
}

TEST(AcpiVmGenId, GedGsiIsInCrsAndEvt) {
    auto dsdt = dsdt_with_vm_gen_id(0xEF000, 23);
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

TEST(AcpiVmGenId, RefusesBadAddressesAndGsis) {
    EXPECT_TRUE(dsdt_with_vm_gen_id().ok());
    EXPECT_TRUE(dsdt_with_vm_gen_id(0xEFFF0).ok());       // last 16 bytes of the page
    EXPECT_FALSE(dsdt_with_vm_gen_id(0xEF004).ok());      // not 8-byte aligned
    EXPECT_FALSE(dsdt_with_vm_gen_id(0xEFFF8).ok());      // crosses into the next page
    EXPECT_FALSE(dsdt_with_vm_gen_id(0xEF000, 24).ok());  // no such I/O APIC input
    EXPECT_FALSE(dsdt_with_vm_gen_id(0xEF000, 0).ok());   // PIT
    EXPECT_FALSE(dsdt_with_vm_gen_id(0xEF000, 2).ok());   // PIT, overridden
    EXPECT_TRUE(dsdt_with_vm_gen_id(0xEF000, 4).ok());
    NullIrq irq;
    auto mem = memory_for(0xEF000);
    auto dev = VmGenId::create(mem, GuestAddress(0xEF000), irq, zeros);
    ASSERT_TRUE(dev);
    PlatformDescription desc;
    desc.ioapic_id = 1;
    desc.devices = (*dev)->acpi_devices(Placement{});  // no interrupt for the GED
    EXPECT_FALSE(build_dsdt(desc).ok());
}

TEST(AcpiVmGenId, WriteTablesKeepsTheIdClearOfTheTables) {
    auto mem = memory_for(0);
    auto write = [&](std::uint64_t id, std::uint64_t rsdp = 0xE0000) {
        PlatformDescription desc;
        desc.ioapic_id = 1;
        desc.keep_clear = {{id, VmGenId::kSize, "VM generation ID"}};
        return write_acpi_tables(mem, desc, GuestAddress(rsdp), GuestAddress(0xE0040),
                                 GuestAddress(0xEF000));
    };
    auto r = write(0xEF000);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_LE(r->end, GuestAddress(0xEF000));
    EXPECT_FALSE(write(0xE0048).ok());           // inside the DSDT
    EXPECT_FALSE(write(0xE0010).ok());           // inside the RSDP
    EXPECT_FALSE(write(0xEF000, 0xEF000).ok());  // the RSDP placed on it
    EXPECT_TRUE(write(0xE0028).ok());            // between the RSDP (36 bytes) and the tables
}

}  // namespace
}  // namespace vireo
