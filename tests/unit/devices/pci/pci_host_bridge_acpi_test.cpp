// The PCI host bridge in the DSDT, read back with a small independent AML reader.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "acpi/acpi_tables.h"
#include "devices/legacy/serial8250.h"
#include "devices/pci/pci_host_bridge_acpi.h"

namespace vireo {
using namespace acpi;
namespace {

using Bytes = std::vector<std::uint8_t>;

std::uint8_t sum(std::span<const std::uint8_t> b) {
    std::uint8_t s = 0;
    for (auto x : b) {
        s = static_cast<std::uint8_t>(s + x);
    }
    return s;
}

std::uint64_t le(std::span<const std::uint8_t> b, std::size_t off, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n && off + i < b.size(); ++i) {
        v |= std::uint64_t{b[off + i]} << (8 * i);
    }
    return v;
}

// Position of `needle` at or after `from`, or nullopt.
std::optional<std::size_t> find_bytes(std::span<const std::uint8_t> hay, const Bytes& needle,
                                      std::size_t from = 0) {
    if (from > hay.size()) {
        return std::nullopt;
    }
    const auto it =
        std::search(hay.begin() + static_cast<long>(from), hay.end(), needle.begin(), needle.end());
    if (it == hay.end()) {
        return std::nullopt;
    }
    return static_cast<std::size_t>(it - hay.begin());
}

Bytes name_op(std::string_view seg, const Bytes& value = {}) {
    Bytes b;
    b.reserve(1 + seg.size() + value.size());
    b.push_back(0x08);
    for (char c : seg) {
        b.push_back(static_cast<std::uint8_t>(c));
    }
    for (auto v : value) {
        b.push_back(v);
    }
    return b;
}

// PkgLength (ACPI 6.4 §20.2.4) at `pos`: returns the value and advances past the field.
std::size_t pkg_length(std::span<const std::uint8_t> b, std::size_t& pos) {
    const std::size_t follow = b[pos] >> 6;
    std::size_t value = follow == 0 ? (b[pos] & 0x3Fu) : (b[pos] & 0x0Fu);
    for (std::size_t i = 1; i <= follow; ++i) {
        value |= std::size_t{b[pos + i]} << (4 + 8 * (i - 1));
    }
    pos += follow + 1;
    return value;
}

// ComputationalData integer (§20.2.3) at `pos`, advancing past it.
std::optional<std::uint64_t> integer(std::span<const std::uint8_t> b, std::size_t& pos) {
    const std::uint8_t op = b[pos++];
    switch (op) {
        case 0x00:
            return 0;
        case 0x01:
            return 1;
        case 0x0A:
            pos += 1;
            return le(b, pos - 1, 1);
        case 0x0B:
            pos += 2;
            return le(b, pos - 2, 2);
        case 0x0C:
            pos += 4;
            return le(b, pos - 4, 4);
        case 0x0E:
            pos += 8;
            return le(b, pos - 8, 8);
        default:
            return std::nullopt;
    }
}

// The resource descriptors of Name(<seg>, ResourceTemplate() {...}) found after `from`; checks
// that they end with an End Tag exactly at the end of the buffer.
std::vector<Bytes> resources(std::span<const std::uint8_t> t, std::string_view seg,
                             std::size_t from) {
    std::vector<Bytes> out;
    const auto at = find_bytes(t, name_op(seg), from);
    EXPECT_TRUE(at.has_value()) << seg;
    if (!at) {
        return out;
    }
    std::size_t pos = *at + 5;
    EXPECT_EQ(t[pos], 0x11) << "BufferOp";
    ++pos;
    const std::size_t start = pos;
    const std::size_t length = pkg_length(t, pos);
    const std::size_t end = start + length;
    const auto size = integer(t, pos);
    EXPECT_EQ(size, std::optional<std::uint64_t>(end - pos));
    while (pos < end) {
        const std::uint8_t tag = t[pos];
        const std::size_t n = (tag & 0x80) ? 3 + le(t, pos + 1, 2) : 1 + (tag & 0x07u);
        out.emplace_back(t.begin() + static_cast<long>(pos),
                         t.begin() + static_cast<long>(pos + n));
        pos += n;
        if (tag == 0x79) {
            EXPECT_EQ(pos, end) << "End Tag is not last";
            break;
        }
    }
    EXPECT_FALSE(out.empty());
    EXPECT_EQ(out.back(), (Bytes{0x79, 0x00}));
    return out;
}

struct Prt {
    std::uint64_t address, pin, source, gsi;
    bool operator==(const Prt&) const = default;
};

std::vector<Prt> prt(std::span<const std::uint8_t> t, std::size_t from) {
    std::vector<Prt> out;
    const auto at = find_bytes(t, name_op("_PRT"), from);
    EXPECT_TRUE(at.has_value());
    if (!at) {
        return out;
    }
    std::size_t pos = *at + 5;
    EXPECT_EQ(t[pos++], 0x12) << "PackageOp";
    pkg_length(t, pos);
    const std::size_t count = t[pos++];
    for (std::size_t i = 0; i < count; ++i) {
        EXPECT_EQ(t[pos++], 0x12);
        pkg_length(t, pos);
        EXPECT_EQ(t[pos++], 4);
        Prt p{};
        p.address = integer(t, pos).value_or(~0ULL);
        p.pin = integer(t, pos).value_or(~0ULL);
        p.source = integer(t, pos).value_or(~0ULL);
        p.gsi = integer(t, pos).value_or(~0ULL);
        out.push_back(p);
    }
    return out;
}

PciHostBridgeDesc test_pci() {
    PciHostBridgeDesc pci;
    pci.ecam = EcamDesc{0xE0000000, 0, 0, 0};
    pci.mmio32_base = 0xC0000000;
    pci.mmio32_size = 0x20000000;
    pci.mmio64_base = 0x10'0000'0000;
    pci.mmio64_size = 0x10'0000'0000;
    pci.routing = {{1, 0, 17}, {1, 1, 18}, {1, 2, 19}, {1, 3, 20}, {2, 0, 18}};
    return pci;
}

// A platform with COM1 and a PCI host bridge as the machine describes it: the bridge's own AML
// (pci_host_bridge_aml) among the devices, and its ECAM for the MCFG.
struct PciPlatform {
    PlatformDescription base;
    std::optional<PciHostBridgeDesc> pci;
    PlatformDescription desc() const {
        PlatformDescription d = base;
        d.devices = {serial8250_aml(1, 0x3F8, 4)};
        if (pci) {
            for (auto& aml : pci_host_bridge_aml(*pci)) {
                d.devices.push_back(std::move(aml));
            }
            d.ecam = pci->ecam;
        }
        return d;
    }
};

PciPlatform with_pci() {
    PciPlatform p;
    p.base.num_cpus = 2;
    p.base.ioapic_id = 2;
    p.pci = test_pci();
    return p;
}

const Bytes kPnp0a08{0x0C, 0x41, 0xD0, 0x0A, 0x08};  // DWordConst EisaId("PNP0A08")
const Bytes kPnp0a03{0x0C, 0x41, 0xD0, 0x0A, 0x03};
const Bytes kPnp0c02{0x0C, 0x41, 0xD0, 0x0C, 0x02};

TEST(AcpiPci, DsdtDescribesTheHostBridge) {
    auto r = build_dsdt(with_pci().desc());
    ASSERT_TRUE(r.ok()) << r.error().message();
    const Bytes& t = *r;
    ASSERT_EQ(le(t, 4, 4), t.size());
    EXPECT_EQ(sum(t), 0);

    // Scope(\_SB_) { COM1, PCI0, PRES } then _S5_ closes the table, as without PCI.
    ASSERT_EQ(t[36], 0x10);
    std::size_t pos = 37;
    const std::size_t scope_end = 37 + pkg_length(t, pos);
    EXPECT_EQ(Bytes(t.begin() + static_cast<long>(pos), t.begin() + static_cast<long>(pos + 5)),
              (Bytes{'\\', '_', 'S', 'B', '_'}));
    EXPECT_EQ(t[scope_end], 0x08);
    EXPECT_EQ(Bytes(t.begin() + static_cast<long>(scope_end + 1),
                    t.begin() + static_cast<long>(scope_end + 5)),
              (Bytes{'_', 'S', '5', '_'}));

    const auto pci0_name = find_bytes(t, {'P', 'C', 'I', '0'});
    ASSERT_TRUE(pci0_name.has_value());
    const std::size_t p = *pci0_name;
    const auto hid = name_op("_HID", kPnp0a08);
    const auto cid = name_op("_CID", kPnp0a03);
    EXPECT_EQ(find_bytes(t, hid, p), std::optional<std::size_t>(p + 4));
    EXPECT_EQ(find_bytes(t, cid, p), std::optional<std::size_t>(p + 14));
    EXPECT_TRUE(find_bytes(t, {0x08, '_', 'S', 'E', 'G', 0x00}, p).has_value());
    EXPECT_TRUE(find_bytes(t, {0x08, '_', 'B', 'B', 'N', 0x00}, p).has_value());
    EXPECT_TRUE(find_bytes(t, {0x08, '_', 'U', 'I', 'D', 0x00}, p).has_value());

    const auto crs = resources(t, "_CRS", p);
    ASSERT_EQ(crs.size(), 7U);
    EXPECT_EQ(crs[0], (Bytes{0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                             0x00, 0x00, 0x01, 0x00}));  // WordBusNumber 0-0
    EXPECT_EQ(crs[1], (Bytes{0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08}));  // IO CF8/8
    EXPECT_EQ(crs[2], (Bytes{0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x00, 0xF7, 0x0C,
                             0x00, 0x00, 0xF8, 0x0C}));  // WordIO 0-CF7
    EXPECT_EQ(crs[3], (Bytes{0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x0D, 0xFF, 0xFF,
                             0x00, 0x00, 0x00, 0xF3}));  // WordIO D00-FFFF
    // DWordMemory producer, read-write, non-cacheable: min, max, length.
    ASSERT_EQ(crs[4].size(), 26U);
    EXPECT_EQ(Bytes(crs[4].begin(), crs[4].begin() + 6),
              (Bytes{0x87, 0x17, 0x00, 0x00, 0x0C, 0x01}));
    EXPECT_EQ(le(crs[4], 10, 4), 0xC0000000U);
    EXPECT_EQ(le(crs[4], 14, 4), 0xDFFFFFFFU);
    EXPECT_EQ(le(crs[4], 22, 4), 0x20000000U);
    // QWordMemory producer: 64 GiB from 64 GiB.
    ASSERT_EQ(crs[5].size(), 46U);
    EXPECT_EQ(Bytes(crs[5].begin(), crs[5].begin() + 6),
              (Bytes{0x8A, 0x2B, 0x00, 0x00, 0x0C, 0x01}));
    EXPECT_EQ(le(crs[5], 14, 8), 0x10'0000'0000U);
    EXPECT_EQ(le(crs[5], 22, 8), 0x1F'FFFF'FFFFU);
    EXPECT_EQ(le(crs[5], 38, 8), 0x10'0000'0000U);

    const auto routes = prt(t, p);
    ASSERT_EQ(routes.size(), 5U);
    EXPECT_EQ(routes[0], (Prt{0x1FFFF, 0, 0, 17}));
    EXPECT_EQ(routes[3], (Prt{0x1FFFF, 3, 0, 20}));
    EXPECT_EQ(routes[4], (Prt{0x2FFFF, 0, 0, 18}));

    // PRES: a PNP0C02 motherboard resource reserving the ECAM (bus 0: 1 MiB).
    const auto pres = find_bytes(t, {'P', 'R', 'E', 'S'});
    ASSERT_TRUE(pres.has_value());
    const auto pres_hid = name_op("_HID", kPnp0c02);
    EXPECT_EQ(find_bytes(t, pres_hid, *pres), std::optional<std::size_t>(*pres + 4));
    const auto reserved = resources(t, "_CRS", *pres);
    ASSERT_EQ(reserved.size(), 2U);
    EXPECT_EQ(reserved[0], (Bytes{0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xE0, 0x00, 0x00, 0x10,
                                  0x00}));  // Memory32Fixed(ReadWrite, 0xE0000000, 1 MiB)
}

TEST(AcpiPci, NoPciNoHostBridge) {
    PciPlatform d = with_pci();
    d.pci.reset();
    auto r = build_dsdt(d.desc());
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(find_bytes(*r, {'P', 'C', 'I', '0'}).has_value());
    EXPECT_FALSE(find_bytes(*r, kPnp0c02).has_value());
}

TEST(AcpiPci, EcamAbove4GiBIsReservedWithAQWordDescriptor) {
    PciPlatform d = with_pci();
    d.pci->ecam = EcamDesc{0x40'0000'0000, 0, 1, 2};
    d.pci->mmio64_size = 0;  // and no 64-bit window
    auto r = build_dsdt(d.desc());
    ASSERT_TRUE(r.ok()) << r.error().message();
    const auto pci0 = find_bytes(*r, {'P', 'C', 'I', '0'});
    ASSERT_TRUE(pci0.has_value());
    const auto crs = resources(*r, "_CRS", *pci0);
    ASSERT_EQ(crs.size(), 6U);        // no QWordMemory window
    EXPECT_EQ(le(crs[0], 8, 2), 1U);  // bus range 1-2
    EXPECT_EQ(le(crs[0], 10, 2), 2U);
    const auto pres = find_bytes(*r, {'P', 'R', 'E', 'S'});
    ASSERT_TRUE(pres.has_value());
    const auto reserved = resources(*r, "_CRS", *pres);
    ASSERT_EQ(reserved.size(), 2U);
    ASSERT_EQ(reserved[0].size(), 46U);
    EXPECT_EQ(reserved[0][4] & 1, 1);                    // consumer
    EXPECT_EQ(le(reserved[0], 14, 8), 0x40'0010'0000U);  // bus 1's ECAM
    EXPECT_EQ(le(reserved[0], 38, 8), 0x20'0000U);       // 2 buses
}

TEST(AcpiPci, ValidateRejectsWhatAmlCannotSay) {
    auto check = [](auto mutate) {
        PciPlatform d = with_pci();
        mutate(d);
        return validate(*d.pci).ok() && validate(d.desc()).ok() && build_dsdt(d.desc()).ok();
    };
    EXPECT_TRUE(check([](PciPlatform&) {}));
    EXPECT_FALSE(check([](PciPlatform& d) { d.pci->mmio32_size = 0; }));
    EXPECT_FALSE(check([](PciPlatform& d) { d.pci->mmio32_base = 0xF0000000; }));
    EXPECT_FALSE(check([](PciPlatform& d) { d.pci->mmio64_base = ~0ULL; }));
    EXPECT_FALSE(check([](PciPlatform& d) { d.pci->ecam.start_bus = 1; }));  // > end
    EXPECT_FALSE(check([](PciPlatform& d) { d.pci->routing.push_back({32, 0, 16}); }));
    EXPECT_FALSE(check([](PciPlatform& d) { d.pci->routing.push_back({3, 4, 16}); }));
    EXPECT_FALSE(check([](PciPlatform& d) {
        d.pci->routing.assign(256, PciRoutingEntry{1, 0, 17});
    }));
    // The AML alone refuses it too (the machine does not call validate() on the bridge).
    auto bad = test_pci();
    bad.mmio32_size = 0;
    PlatformDescription d;
    d.devices = pci_host_bridge_aml(bad);
    EXPECT_FALSE(build_dsdt(d).ok());
}

TEST(AcpiPci, TablesWalkFromTheRsdpWithMcfgFromTheHostBridge) {
    const MemoryRegionSpec spec[] = {{GuestAddress(0), 1 << 20}};
    auto mem = GuestMemory::create(spec);
    ASSERT_TRUE(mem.ok());
    const auto desc = with_pci().desc();
    auto r = write_acpi_tables(*mem, desc, GuestAddress(0xE0000), GuestAddress(0xE0040),
                               GuestAddress(0x100000));
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_TRUE(r->mcfg.has_value());

    auto read = [&](std::uint64_t addr, std::size_t len) {
        Bytes b(len);
        EXPECT_TRUE(mem->read(GuestAddress(addr), b).ok());
        return b;
    };
    auto table = [&](std::uint64_t addr) { return read(addr, le(read(addr, 8), 4, 4)); };

    const auto rsdp = read(0xE0000, 36);
    EXPECT_EQ(sum(rsdp), 0);
    const auto xsdt = table(le(rsdp, 24, 8));
    EXPECT_EQ(sum(xsdt), 0);
    Bytes mcfg, dsdt;
    for (std::size_t off = 36; off < xsdt.size(); off += 8) {
        const auto t = table(le(xsdt, off, 8));
        EXPECT_EQ(sum(t), 0);
        if (std::memcmp(t.data(), "MCFG", 4) == 0) {
            mcfg = t;
        } else if (std::memcmp(t.data(), "FACP", 4) == 0) {
            dsdt = table(le(t, 140, 8));
        }
    }
    ASSERT_EQ(mcfg.size(), 60U);
    EXPECT_EQ(le(mcfg, 44, 8), 0xE0000000U);
    EXPECT_EQ(mcfg[54], 0);  // start bus
    EXPECT_EQ(mcfg[55], 0);  // end bus
    ASSERT_FALSE(dsdt.empty());
    EXPECT_EQ(sum(dsdt), 0);
    EXPECT_TRUE(find_bytes(dsdt, kPnp0a08).has_value());
    const auto p = find_bytes(dsdt, {'P', 'C', 'I', '0'});
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(prt(dsdt, *p).size(), 5U);
}

}  // namespace
}  // namespace vireo
