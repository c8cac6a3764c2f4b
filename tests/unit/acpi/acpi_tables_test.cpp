#include "acpi/acpi_tables.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial8250.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace vireo::acpi {
namespace {

using Bytes = std::vector<std::uint8_t>;

template <typename T>
T le(std::span<const std::uint8_t> b, std::size_t off) {
    T v{};
    EXPECT_LE(off + sizeof(T), b.size());
    if (off + sizeof(T) <= b.size()) {
        std::memcpy(&v, b.data() + off, sizeof(T));
    }
    return v;
}
std::uint8_t u8(std::span<const std::uint8_t> b, std::size_t off) {
    return le<std::uint8_t>(b, off);
}
std::uint16_t u16(std::span<const std::uint8_t> b, std::size_t off) {
    return le<std::uint16_t>(b, off);
}
std::uint32_t u32(std::span<const std::uint8_t> b, std::size_t off) {
    return le<std::uint32_t>(b, off);
}
std::uint64_t u64(std::span<const std::uint8_t> b, std::size_t off) {
    return le<std::uint64_t>(b, off);
}

std::string_view chars(std::span<const std::uint8_t> b, std::size_t off, std::size_t len) {
    return {reinterpret_cast<const char*>(b.data() + off), len};
}

std::uint8_t sum(std::span<const std::uint8_t> b) {
    std::uint8_t s = 0;
    for (auto x : b) {
        s = static_cast<std::uint8_t>(s + x);
    }
    return s;
}

bool contains(std::span<const std::uint8_t> hay, const Bytes& needle) {
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

Bytes seg(std::string_view s) {
    return {s.begin(), s.end()};
}

// Common header checks (§5.2.6): signature, Length == size, sum == 0, vireo's OEM fields.
void expect_valid_table(std::span<const std::uint8_t> t, std::string_view signature) {
    ASSERT_GE(t.size(), 36U);
    EXPECT_EQ(chars(t, 0, 4), signature);
    EXPECT_EQ(u32(t, 4), t.size()) << signature;
    EXPECT_EQ(sum(t), 0) << signature;
    EXPECT_EQ(chars(t, 10, 6), "VIREO ");
    EXPECT_EQ(chars(t, 16, 8), "VIREOVM ");
    EXPECT_EQ(u32(t, 24), 1U);
    EXPECT_EQ(chars(t, 28, 4), "VIRO");
    EXPECT_EQ(u32(t, 32), 1U);
}

PlatformDescription two_com_ports() {
    PlatformDescription d;
    d.num_cpus = 2;
    d.ioapic_id = 2;
    // As the serial ports describe themselves (devices/legacy/serial8250.cpp).
    d.devices = {serial8250_aml(1, 0x3F8, 4), serial8250_aml(2, 0x2F8, 3)};
    return d;
}

TEST(AcpiChecksum, MakesTheSumZero) {
    EXPECT_EQ(checksum({}), 0);
    const Bytes b{1, 2, 3};
    EXPECT_EQ(checksum(b), 0xFA);
    const Bytes c{0x80, 0x80};
    EXPECT_EQ(checksum(c), 0);
}

TEST(AcpiDsdt, DescribesSerialPortsAndS5) {
    const auto desc = two_com_ports();
    auto r = build_dsdt(desc);
    ASSERT_TRUE(r.ok()) << r.error().message();
    const Bytes& t = *r;
    expect_valid_table(t, "DSDT");
    EXPECT_EQ(u8(t, 8), 2);  // revision 2: 64-bit integers
    EXPECT_TRUE(contains(t, seg("COM1")));
    EXPECT_TRUE(contains(t, seg("COM2")));
    Bytes hid = seg("_HID");
    hid.insert(hid.end(), {0x0C, 0x41, 0xD0, 0x05, 0x01});  // DWordConst EisaId("PNP0501")
    EXPECT_TRUE(contains(t, hid));
    EXPECT_TRUE(contains(t, {0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08}));
    EXPECT_TRUE(contains(t, {0x22, 0x10, 0x00}));  // IRQ 4
    EXPECT_TRUE(contains(t, {0x47, 0x01, 0xF8, 0x02, 0xF8, 0x02, 0x01, 0x08}));
    EXPECT_TRUE(contains(t, {0x22, 0x08, 0x00}));  // IRQ 3

    // Walk the top level: Scope(\_SB_) spans exactly up to Name(_S5_, Package(4){5, 5, 0, 0}),
    // which ends the table.
    ASSERT_EQ(t[36], 0x10);    // ScopeOp
    ASSERT_EQ(t[37] >> 6, 1);  // two-byte PkgLength for this body
    const std::size_t scope_len = (t[37] & 0x0Fu) | (std::size_t{t[38]} << 4);
    EXPECT_EQ(chars(t, 39, 5), "\\_SB_");
    const std::size_t after_scope = 37 + scope_len;
    const Bytes s5{0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00};
    ASSERT_EQ(t.size() - after_scope, s5.size());
    EXPECT_TRUE(std::equal(s5.begin(), s5.end(), t.begin() + static_cast<long>(after_scope)));
}

struct NullIrq final : IrqLine {
    void set_level(bool) override {}
};

// The i8042's own description at `port` with `irq`.
std::vector<Aml> i8042_devices(std::uint64_t port, std::uint32_t irq) {
    NullIrq line;
    I8042 kbd(line, [] {});
    return kbd.acpi_devices(Placement{.ports = {{port, I8042::kPorts, nullptr}}, .gsis = {irq}});
}

TEST(AcpiDsdt, DescribesTheKeyboardController) {
    PlatformDescription desc;
    desc.devices = i8042_devices(0x60, 1);
    auto r = build_dsdt(desc);
    ASSERT_TRUE(r.ok()) << r.error().message();
    const Bytes& t = *r;
    expect_valid_table(t, "DSDT");
    EXPECT_TRUE(contains(t, seg("PS2K")));
    Bytes hid = seg("_HID");
    hid.insert(hid.end(), {0x0C, 0x41, 0xD0, 0x03, 0x03});  // DWordConst EisaId("PNP0303")
    EXPECT_TRUE(contains(t, hid));
    EXPECT_TRUE(contains(t, {0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01}));  // IO 0x60
    EXPECT_TRUE(contains(t, {0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01}));  // IO 0x64
    EXPECT_TRUE(contains(t, {0x22, 0x02, 0x00}));                                // IRQ 1
    desc.devices = i8042_devices(0x60, 16);
    EXPECT_FALSE(build_dsdt(desc).ok());
    desc.devices = i8042_devices(0xFFFE, 1);
    EXPECT_FALSE(build_dsdt(desc).ok());
}

TEST(AcpiDsdt, OnlyDescribesWhatExists) {
    PlatformDescription desc;
    desc.s5_sleep_type = 0;
    auto r = build_dsdt(desc);
    ASSERT_TRUE(r.ok());
    expect_valid_table(*r, "DSDT");
    const Bytes body(r->begin() + 36, r->end());
    EXPECT_EQ(body, (Bytes{0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00}));
}

TEST(AcpiDsdt, RejectsSerialPortsAmlCannotDescribe) {
    PlatformDescription desc;
    desc.devices = {serial8250_aml(1, 0x3F8, 16)};
    EXPECT_FALSE(build_dsdt(desc).ok());
    desc.devices = {serial8250_aml(1, 0xFFFC, 4)};
    EXPECT_FALSE(build_dsdt(desc).ok());
    desc.devices = {serial8250_aml(100, 0x3F8, 4)};
    EXPECT_FALSE(build_dsdt(desc).ok());
    // A serial port the PC has no COM number for.
    NullIrq line;
    Serial8250 uart(line, [](std::span<const std::uint8_t>) {});
    desc.devices =
        uart.acpi_devices(Placement{.ports = {{0x500, Serial8250::kPorts, nullptr}}, .gsis = {4}});
    EXPECT_FALSE(build_dsdt(desc).ok());
    desc.devices =
        uart.acpi_devices(Placement{.ports = {{0x2F8, Serial8250::kPorts, nullptr}}, .gsis = {3}});
    auto com2 = build_dsdt(desc);
    ASSERT_TRUE(com2.ok()) << com2.error().message();
    EXPECT_TRUE(contains(*com2, seg("COM2")));
}

TEST(AcpiFadt, FieldsAtTheirOffsets) {
    PlatformDescription desc;
    desc.reset_port = 0x0CF9;
    desc.reset_value = 0x06;
    const auto t = build_fadt(desc, GuestAddress(0xE1000));
    ASSERT_EQ(t.size(), 276U);
    expect_valid_table(t, "FACP");
    EXPECT_EQ(u8(t, 8), 6);            // major revision
    EXPECT_EQ(u8(t, 131), 4);          // minor version
    EXPECT_EQ(u32(t, 36), 0U);         // FIRMWARE_CTRL
    EXPECT_EQ(u32(t, 40), 0xE1000U);   // DSDT
    EXPECT_EQ(u64(t, 140), 0xE1000U);  // X_DSDT
    EXPECT_EQ(u16(t, 46), 0);          // SCI_INT
    EXPECT_EQ(u32(t, 48), 0U);         // SMI_CMD
    EXPECT_EQ(u16(t, 109), 1U << 2);   // IAPC_BOOT_ARCH: VGA Not Present only
    EXPECT_EQ(u32(t, 112), (1U << 20) | (1U << 10) | (1U << 4) | (1U << 5));
    for (std::size_t off = 56; off < 88; off += 4) {
        EXPECT_EQ(u32(t, off), 0U) << off;  // PM1/PM2/PM_TMR/GPE blocks
    }
    for (std::size_t off = 148; off < 244; ++off) {
        EXPECT_EQ(t[off], 0) << off;  // X_ PM/GPE blocks
    }
    // RESET_REG: SystemIO, 8 bits at offset 0, byte access, address 0xCF9.
    EXPECT_EQ(Bytes(t.begin() + 116, t.begin() + 128),
              (Bytes{1, 8, 0, 1, 0xF9, 0x0C, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(u8(t, 128), 0x06);  // RESET_VALUE
    EXPECT_EQ(Bytes(t.begin() + 244, t.begin() + 256),
              (Bytes{1, 8, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0}));  // SLEEP_CONTROL_REG
    EXPECT_EQ(Bytes(t.begin() + 256, t.begin() + 268),
              (Bytes{1, 8, 0, 1, 0x01, 0x06, 0, 0, 0, 0, 0, 0}));  // SLEEP_STATUS_REG
    EXPECT_EQ(chars(t, 268, 8), std::string_view("VIREO\0\0\0", 8));
}

TEST(AcpiFadt, SaysThereIsAn8042WhenThereIsOne) {
    PlatformDescription desc;
    desc.i8042 = true;
    const auto t = build_fadt(desc, GuestAddress(0xE1000));
    EXPECT_EQ(u16(t, 109), (1U << 2) | (1U << 1));  // VGA Not Present, 8042
    EXPECT_EQ(sum(t), 0);
}

TEST(AcpiFadt, DsdtAbove4GiBOnlyInXDsdt) {
    const auto t = build_fadt(PlatformDescription{}, GuestAddress(0x1'0000'0000));
    EXPECT_EQ(u32(t, 40), 0U);
    EXPECT_EQ(u64(t, 140), 0x1'0000'0000U);
    EXPECT_EQ(sum(t), 0);
}

void check_madt(std::uint32_t num_cpus) {
    PlatformDescription desc;
    desc.num_cpus = num_cpus;
    desc.ioapic_id = static_cast<std::uint8_t>(num_cpus);
    ASSERT_TRUE(validate(desc).ok());
    const auto t = build_madt(desc);
    expect_valid_table(t, "APIC");
    EXPECT_EQ(u32(t, 36), 0xFEE00000U);  // Local Interrupt Controller Address
    EXPECT_EQ(u32(t, 40), 1U);           // PCAT_COMPAT

    std::vector<std::uint8_t> lapic_ids;
    int ioapics = 0, isos = 0, nmis = 0;
    std::size_t off = 44;
    while (off < t.size()) {
        const std::uint8_t type = t[off];
        const std::uint8_t len = t[off + 1];
        ASSERT_GE(len, 2);
        ASSERT_LE(off + len, t.size());
        switch (type) {
            case 0:
                ASSERT_EQ(len, 8);
                EXPECT_EQ(t[off + 2], t[off + 3]);  // UID == APIC ID
                EXPECT_EQ(u32(t, off + 4), 1U);     // Enabled
                lapic_ids.push_back(t[off + 3]);
                break;
            case 1:
                ASSERT_EQ(len, 12);
                EXPECT_EQ(t[off + 2], num_cpus);
                EXPECT_EQ(u32(t, off + 4), 0xFEC00000U);
                EXPECT_EQ(u32(t, off + 8), 0U);  // GSI base
                ++ioapics;
                break;
            case 2:
                ASSERT_EQ(len, 10);
                EXPECT_EQ(t[off + 2], 0);        // ISA bus
                EXPECT_EQ(t[off + 3], 0);        // IRQ 0 ...
                EXPECT_EQ(u32(t, off + 4), 2U);  // ... to GSI 2
                EXPECT_EQ(u16(t, off + 8), 0);
                ++isos;
                break;
            case 4:
                ASSERT_EQ(len, 6);
                EXPECT_EQ(t[off + 2], 0xFF);
                EXPECT_EQ(u16(t, off + 3), 0);
                EXPECT_EQ(t[off + 5], 1);  // LINT1
                ++nmis;
                break;
            default:
                ADD_FAILURE() << "unexpected MADT structure type " << int{type};
        }
        off += len;
    }
    EXPECT_EQ(off, t.size());
    ASSERT_EQ(lapic_ids.size(), num_cpus);
    for (std::uint32_t i = 0; i < num_cpus; ++i) {
        EXPECT_EQ(lapic_ids[i], i);
    }
    EXPECT_EQ(ioapics, 1);
    EXPECT_EQ(isos, 1);
    EXPECT_EQ(nmis, 1);
}

TEST(AcpiMadt, OneCpu) {
    check_madt(1);
}
TEST(AcpiMadt, FourCpus) {
    check_madt(4);
}
TEST(AcpiMadt, MaxCpusWith8BitApicIds) {
    check_madt(255);  // APIC IDs 0..254; 0xFF is broadcast, the I/O APIC takes 255 here
}

TEST(AcpiMcfg, OneAllocation) {
    const auto t = build_mcfg({0xB0000000, 0, 0, 0xFF});
    ASSERT_EQ(t.size(), 36U + 8 + 16);
    expect_valid_table(t, "MCFG");
    EXPECT_EQ(u64(t, 36), 0U);
    EXPECT_EQ(u64(t, 44), 0xB0000000U);
    EXPECT_EQ(u16(t, 52), 0);
    EXPECT_EQ(u8(t, 54), 0);
    EXPECT_EQ(u8(t, 55), 0xFF);
    EXPECT_EQ(u32(t, 56), 0U);
}

TEST(AcpiXsdt, SixtyFourBitEntries) {
    const std::vector<std::uint64_t> entries{0x1000, 0x1'2345'6780};
    const auto t = build_xsdt(entries);
    ASSERT_EQ(t.size(), 36U + 16);
    expect_valid_table(t, "XSDT");
    EXPECT_EQ(u64(t, 36), 0x1000U);
    EXPECT_EQ(u64(t, 44), 0x1'2345'6780U);
}

TEST(AcpiRsdp, BothChecksums) {
    const auto r = build_rsdp(GuestAddress(0xE2000));
    ASSERT_EQ(r.size(), 36U);
    EXPECT_EQ(chars(r, 0, 8), "RSD PTR ");
    EXPECT_EQ(sum(std::span(r).first(20)), 0);
    EXPECT_EQ(sum(r), 0);
    EXPECT_EQ(chars(r, 9, 6), "VIREO ");
    EXPECT_EQ(u8(r, 15), 2);
    EXPECT_EQ(u32(r, 16), 0U);
    EXPECT_EQ(u32(r, 20), 36U);
    EXPECT_EQ(u64(r, 24), 0xE2000U);
}

GuestMemory make_memory() {
    const MemoryRegionSpec spec[] = {{GuestAddress(0), 1 << 20}};
    auto m = GuestMemory::create(spec);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message());
    return std::move(m).value();
}

Bytes read_guest(const GuestMemory& mem, std::uint64_t addr, std::size_t len) {
    Bytes b(len);
    EXPECT_TRUE(mem.read(GuestAddress(addr), b).ok()) << std::hex << addr;
    return b;
}

// Reads a whole table through guest memory using its Length field.
Bytes read_table(const GuestMemory& mem, std::uint64_t addr) {
    const auto header = read_guest(mem, addr, 36);
    return read_guest(mem, addr, u32(header, 4));
}

TEST(AcpiWrite, GuestCanFollowThePointers) {
    auto mem = make_memory();
    auto desc = two_com_ports();
    desc.ecam = EcamDesc{0xB0000000, 0, 0, 0xFF};
    auto r = write_acpi_tables(mem, desc, GuestAddress(0xE0000), GuestAddress(0xE0040),
                               GuestAddress(0x100000));
    ASSERT_TRUE(r.ok()) << r.error().message();
    const auto& layout = *r;
    EXPECT_EQ(layout.rsdp, GuestAddress(0xE0000));
    EXPECT_EQ(layout.dsdt, GuestAddress(0xE0040));
    EXPECT_LT(layout.dsdt, layout.fadt);
    EXPECT_LT(layout.fadt, layout.madt);
    ASSERT_TRUE(layout.mcfg.has_value());
    EXPECT_LT(layout.madt, *layout.mcfg);
    EXPECT_LT(*layout.mcfg, layout.xsdt);
    for (auto a : {layout.dsdt, layout.fadt, layout.madt, *layout.mcfg, layout.xsdt}) {
        EXPECT_EQ(a.value % 8, 0U);
    }

    const auto rsdp = read_guest(mem, 0xE0000, 36);
    EXPECT_EQ(chars(rsdp, 0, 8), "RSD PTR ");
    EXPECT_EQ(sum(std::span(rsdp).first(20)), 0);
    EXPECT_EQ(sum(rsdp), 0);

    const auto xsdt = read_table(mem, u64(rsdp, 24));
    expect_valid_table(xsdt, "XSDT");
    EXPECT_EQ(layout.end.value, u64(rsdp, 24) + xsdt.size());
    ASSERT_EQ(xsdt.size(), 36U + 3 * 8);
    Bytes fadt, madt, mcfg;
    for (std::size_t off = 36; off < xsdt.size(); off += 8) {
        auto t = read_table(mem, u64(xsdt, off));
        const auto sig = chars(t, 0, 4);
        expect_valid_table(t, sig);
        (sig == "FACP" ? fadt : sig == "APIC" ? madt : mcfg) = std::move(t);
    }
    EXPECT_EQ(chars(mcfg, 0, 4), "MCFG");
    ASSERT_EQ(fadt.size(), 276U);
    EXPECT_EQ(u32(madt, 36), 0xFEE00000U);
    EXPECT_EQ(u64(fadt, 140), u32(fadt, 40));

    const auto dsdt = read_table(mem, u64(fadt, 140));
    expect_valid_table(dsdt, "DSDT");
    EXPECT_TRUE(contains(dsdt, seg("COM1")));
    EXPECT_TRUE(contains(dsdt, seg("_S5_")));
}

TEST(AcpiWrite, NoMcfgWithoutEcam) {
    auto mem = make_memory();
    PlatformDescription desc;
    desc.ioapic_id = 1;
    auto r = write_acpi_tables(mem, desc, GuestAddress(0xF0000), GuestAddress(0xE0000),
                               GuestAddress(0xF0000));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(r->mcfg.has_value());
    const auto xsdt = read_table(mem, r->xsdt.value);
    ASSERT_EQ(xsdt.size(), 36U + 2 * 8);
    EXPECT_EQ(u64(xsdt, 36), r->fadt.value);
    EXPECT_EQ(u64(xsdt, 44), r->madt.value);
}

TEST(AcpiWrite, UnalignedStartIsRoundedUp) {
    auto mem = make_memory();
    PlatformDescription desc;
    desc.ioapic_id = 1;
    auto r = write_acpi_tables(mem, desc, GuestAddress(0xE0000), GuestAddress(0xE0101),
                               GuestAddress(0xF0000));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->dsdt, GuestAddress(0xE0108));
}

bool all_zero(const GuestMemory& mem, std::uint64_t addr, std::size_t len) {
    const auto b = read_guest(mem, addr, len);
    return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
}

TEST(AcpiWrite, TablesThatDoNotFitWriteNothing) {
    auto mem = make_memory();
    PlatformDescription desc;
    desc.ioapic_id = 1;
    EXPECT_FALSE(write_acpi_tables(mem, desc, GuestAddress(0xE0000), GuestAddress(0xE1000),
                                   GuestAddress(0xE1100))
                     .ok());
    // Past the end of guest RAM, though within the caller's bounds.
    EXPECT_FALSE(write_acpi_tables(mem, desc, GuestAddress(0xE0000), GuestAddress(0xFFF00),
                                   GuestAddress(0x200000))
                     .ok());
    EXPECT_TRUE(all_zero(mem, 0xE0000, 0x20000));
}

TEST(AcpiWrite, RejectsInvalidDescriptions) {
    auto mem = make_memory();
    auto attempt = [&](const PlatformDescription& d) {
        return write_acpi_tables(mem, d, GuestAddress(0xE0000), GuestAddress(0xE1000),
                                 GuestAddress(0x100000))
            .ok();
    };
    PlatformDescription d;
    d.ioapic_id = 1;
    ASSERT_TRUE(validate(d).ok());
    d.num_cpus = 0;
    EXPECT_FALSE(attempt(d));
    d.num_cpus = 256;
    d.ioapic_id = 255;
    EXPECT_FALSE(attempt(d));
    d.num_cpus = 4;
    d.ioapic_id = 3;  // clashes with CPU 3's APIC ID
    EXPECT_FALSE(attempt(d));
    d.ioapic_id = 4;
    d.lapic_address = 0x1'0000'0000;
    EXPECT_FALSE(attempt(d));
    d.lapic_address = 0xFEE00000;
    d.s5_sleep_type = 8;
    EXPECT_FALSE(attempt(d));
    d.s5_sleep_type = 5;
    d.ecam = EcamDesc{0xB0000000, 0, 10, 9};
    EXPECT_FALSE(attempt(d));
    d.ecam = EcamDesc{~std::uint64_t{0xFFFFF}, 0, 0, 1};  // wraps
    EXPECT_FALSE(attempt(d));
    d.ecam.reset();
    d.devices = {serial8250_aml(1, 0x3F8, 16)};  // a device whose AML carries an error
    EXPECT_FALSE(attempt(d));
    EXPECT_TRUE(all_zero(mem, 0xE0000, 0x20000));
}

TEST(AcpiWrite, RejectsBadRsdpPlacement) {
    auto mem = make_memory();
    PlatformDescription desc;
    desc.ioapic_id = 1;
    // Not 16-byte aligned.
    EXPECT_FALSE(write_acpi_tables(mem, desc, GuestAddress(0xE0008), GuestAddress(0xE1000),
                                   GuestAddress(0x100000))
                     .ok());
    // Inside the tables.
    EXPECT_FALSE(write_acpi_tables(mem, desc, GuestAddress(0xE1010), GuestAddress(0xE1000),
                                   GuestAddress(0x100000))
                     .ok());
    EXPECT_TRUE(all_zero(mem, 0xE0000, 0x20000));
}

}  // namespace
}  // namespace vireo::acpi
