#include "devices/pci/pci_root.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

namespace vireo {
namespace {

constexpr std::uint64_t kMmio32Base = 0xc0000000;
constexpr std::uint64_t kMmio32Size = 512ULL << 20;
constexpr std::uint64_t kMmio64Base = 0x10'0000'0000;  // 64 GiB
constexpr std::uint64_t kMmio64Size = 64ULL << 30;
constexpr std::uint64_t kIoBase = 0x1000;
constexpr std::uint64_t kIoSize = 0x1000;

// A function with whatever BARs a test gives it; records what reaches it.
class TestDevice final : public PciDevice {
public:
    struct Access {
        int bar;
        std::uint64_t offset;
        std::size_t size;
        bool operator==(const Access&) const = default;
    };
    struct Move {
        int bar;
        std::uint64_t from;
        std::uint64_t to;
        bool operator==(const Move&) const = default;
    };

    explicit TestDevice(PciInterruptPin pin = PciInterruptPin::IntA,
                        std::uint16_t device_id = 0x1234)
        : m_config(PciHeader{.vendor_id = 0x1af4,
                             .device_id = device_id,
                             .class_code = 0xff0000,
                             .interrupt_pin = pin}) {}

    PciConfigSpace& config_space() override { return m_config; }
    void bar_read(int bar, std::uint64_t offset, std::span<std::uint8_t> data) override {
        reads.push_back({bar, offset, data.size()});
        for (std::size_t i = 0; i < data.size(); ++i) {
            data[i] = static_cast<std::uint8_t>(0xa0 + bar);
        }
    }
    void bar_write(int bar, std::uint64_t offset, std::span<const std::uint8_t> data) override {
        writes.push_back({bar, offset, data.size()});
    }
    void bar_moved(int bar, std::uint64_t from, std::uint64_t to) override {
        moves.push_back({bar, from, to});
    }

    std::vector<Access> reads;
    std::vector<Access> writes;
    std::vector<Move> moves;

private:
    PciConfigSpace m_config;
};

std::shared_ptr<TestDevice> device_with_bars(
    std::initializer_list<std::tuple<int, std::uint64_t, PciBarKind>> bars) {
    auto d = std::make_shared<TestDevice>();
    for (const auto& [index, size, kind] : bars) {
        EXPECT_TRUE(d->config_space().add_bar(index, size, kind, false).ok());
    }
    return d;
}

std::uint32_t get32(std::span<const std::uint8_t> b) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < b.size() && i < 4; ++i) {
        v |= std::uint32_t{b[i]} << (8 * i);
    }
    return v;
}

std::array<std::uint8_t, 4> le32(std::uint32_t v) {
    return {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
            static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 24)};
}

std::uint32_t config_address(std::uint32_t dev, std::uint32_t reg, std::uint32_t bus = 0,
                             std::uint32_t fn = 0) {
    return 0x80000000U | (bus << 16) | (dev << 11) | (fn << 8) | reg;
}

std::uint64_t ecam_offset(std::uint64_t dev, std::uint64_t reg, std::uint64_t bus = 0,
                          std::uint64_t fn = 0) {
    return (bus << 20) | (dev << 15) | (fn << 12) | reg;
}

class PciRootTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto r = PciRoot::create(
            {{kMmio32Base, kMmio32Size}, {kMmio64Base, kMmio64Size}, {kIoBase, kIoSize}});
        ASSERT_TRUE(r.ok()) << r.error().message();
        root = std::move(r).value();
        cf8 = root->config_io();
        ecam = root->ecam();
        mmio32 = root->mmio32_window();
        mmio64 = root->mmio64_window();
        io = root->io_window();
        ASSERT_TRUE(cf8 && ecam && mmio32 && mmio64 && io);
    }

    // Configuration mechanism #1 as a guest drives it.
    std::uint32_t cf8_read32(std::uint32_t address) {
        cf8->write(0, le32(address));
        std::array<std::uint8_t, 4> b{};
        cf8->read(4, b);
        return get32(b);
    }
    std::uint32_t cf8_read(std::uint32_t address, std::uint64_t byte, std::size_t size) {
        cf8->write(0, le32(address));
        std::vector<std::uint8_t> b(size);
        cf8->read(4 + byte, b);
        return get32(b);
    }
    void cf8_write(std::uint32_t address, std::uint64_t byte, std::span<const std::uint8_t> b) {
        cf8->write(0, le32(address));
        cf8->write(4 + byte, b);
    }
    std::uint32_t ecam_read32(std::uint64_t offset) {
        std::array<std::uint8_t, 4> b{};
        ecam->read(offset, b);
        return get32(b);
    }
    void ecam_write32(std::uint64_t offset, std::uint32_t v) { ecam->write(offset, le32(v)); }
    void ecam_write16(std::uint64_t offset, std::uint16_t v) {
        const std::array<std::uint8_t, 2> b{static_cast<std::uint8_t>(v),
                                            static_cast<std::uint8_t>(v >> 8)};
        ecam->write(offset, b);
    }
    // Reads 4 bytes at absolute address `a` through the window containing it.
    std::uint32_t mmio_read32(std::uint64_t a) {
        std::array<std::uint8_t, 4> b{};
        if (a >= kMmio64Base) {
            mmio64->read(a - kMmio64Base, b);
        } else {
            mmio32->read(a - kMmio32Base, b);
        }
        return get32(b);
    }

    std::shared_ptr<PciRoot> root;
    std::shared_ptr<BusDevice> cf8, ecam, mmio32, mmio64, io;
};

TEST_F(PciRootTest, HostBridgeThroughCf8AndEcam) {
    // Linux's pci_check_type1: CONFIG_ADDRESS reads back what was written.
    cf8->write(0, le32(0x80000000));
    std::array<std::uint8_t, 4> b{};
    cf8->read(0, b);
    EXPECT_EQ(get32(b), 0x80000000U);

    EXPECT_EQ(cf8_read32(config_address(0, 0x00)), 0x00081b36U);
    EXPECT_EQ(cf8_read32(config_address(0, 0x08)), 0x06000000U);  // class 06/00/00
    EXPECT_EQ(cf8_read(config_address(0, 0x08), 2, 2), 0x0600U);  // word at 0xCFE
    EXPECT_EQ(cf8_read(config_address(0, 0x0c), 2, 1), 0x00U);    // header type
    EXPECT_EQ(ecam_read32(0), 0x00081b36U);
    EXPECT_EQ(ecam_read32(0x08), 0x06000000U);
}

TEST_F(PciRootTest, DeviceThroughCf8AndEcam) {
    auto d = std::make_shared<TestDevice>();
    auto slot = root->add_device(d);
    ASSERT_TRUE(slot.ok()) << slot.error().message();
    EXPECT_EQ(*slot, 1);
    EXPECT_EQ(cf8_read32(config_address(1, 0)), 0x12341af4U);
    EXPECT_EQ(cf8_read(config_address(1, 0), 2, 2), 0x1234U);
    EXPECT_EQ(cf8_read(config_address(1, 0), 1, 1), 0x1aU);
    EXPECT_EQ(ecam_read32(ecam_offset(1, 0)), 0x12341af4U);
    std::array<std::uint8_t, 2> ecam_word{};
    ecam->read(ecam_offset(1, 2), ecam_word);
    EXPECT_EQ(get32(ecam_word), 0x1234U);

    // Writes through CONFIG_DATA and ECAM reach the device's config space.
    const std::array<std::uint8_t, 1> io_mem{0x03};
    cf8_write(config_address(1, 0x04), 0, io_mem);
    EXPECT_EQ(d->config_space().command(), 0x0003);
    ecam_write16(ecam_offset(1, 0x04), 0x0006);
    EXPECT_EQ(d->config_space().command(), 0x0006);
    EXPECT_EQ(cf8_read32(config_address(1, 0x04)) & 0xffff, 0x0006U);
}

TEST_F(PciRootTest, AbsentFunctionsReadAllOnes) {
    ASSERT_TRUE(root->add_device(std::make_shared<TestDevice>()).ok());
    EXPECT_EQ(cf8_read32(config_address(5, 0)), 0xffffffffU);        // empty slot
    EXPECT_EQ(cf8_read32(config_address(1, 0, 0, 1)), 0xffffffffU);  // function 1
    EXPECT_EQ(cf8_read32(config_address(0, 0, 1)), 0xffffffffU);     // bus 1
    EXPECT_EQ(cf8_read32(config_address(31, 0)), 0xffffffffU);
    EXPECT_EQ(ecam_read32(ecam_offset(5, 0)), 0xffffffffU);
    EXPECT_EQ(ecam_read32(ecam_offset(1, 0, 0, 7)), 0xffffffffU);
    EXPECT_EQ(ecam_read32(ecam_offset(0, 0, 1)), 0xffffffffU);
    EXPECT_EQ(ecam_read32(ecam_offset(0, 0, 255)), 0xffffffffU);
    EXPECT_EQ(ecam_read32(std::uint64_t{256} << 20), 0xffffffffU);  // past 256 buses
    // Writes to nothing are ignored.
    ecam_write32(ecam_offset(5, 0x04), 0xffffffff);
    ecam_write32(std::uint64_t{1} << 40, 0xffffffff);
    EXPECT_EQ(ecam_read32(ecam_offset(5, 0)), 0xffffffffU);
}

TEST_F(PciRootTest, DisabledConfigAddressReadsAllOnes) {
    auto d = std::make_shared<TestDevice>();
    ASSERT_TRUE(root->add_device(d).ok());
    const std::uint32_t disabled = config_address(1, 0x04) & ~0x80000000U;
    EXPECT_EQ(cf8_read32(disabled), 0xffffffffU);
    const std::array<std::uint8_t, 2> mem{0x02, 0x00};
    cf8_write(disabled, 0, mem);
    EXPECT_EQ(d->config_space().command(), 0);
}

TEST_F(PciRootTest, OnlyDwordAccessesReachConfigAddress) {
    cf8->write(0, le32(config_address(0, 0)));
    // Linux's mechanism #2 probe writes bytes to 0xCF8/0xCFA and expects not to read them back.
    const std::array<std::uint8_t, 1> zero{0x00};
    cf8->write(0, zero);
    cf8->write(2, zero);
    cf8->write(3, zero);
    std::array<std::uint8_t, 1> byte{};
    cf8->read(0, byte);
    EXPECT_EQ(byte[0], 0xff);
    std::array<std::uint8_t, 4> b{};
    cf8->read(0, b);
    EXPECT_EQ(get32(b), 0x80000000U);
    // Reserved bits 30:24 and 1:0 read as 0.
    cf8->write(0, le32(0xffffffff));
    cf8->read(0, b);
    EXPECT_EQ(get32(b), 0x80fffffcU);
}

TEST_F(PciRootTest, MalformedConfigAccessesAreRefused) {
    auto d = std::make_shared<TestDevice>();
    ASSERT_TRUE(root->add_device(d).ok());
    // Crossing a dword: a 4-byte ECAM access at register 2, a word at 0xCFF.
    EXPECT_EQ(ecam_read32(ecam_offset(1, 0x02)), 0xffffffffU);
    ecam_write32(ecam_offset(1, 0x02), 0xffffffff);
    EXPECT_EQ(d->config_space().command(), 0);
    EXPECT_EQ(cf8_read(config_address(1, 0), 3, 2), 0xffffU);
    std::array<std::uint8_t, 8> q{};
    ecam->read(ecam_offset(1, 0), q);
    EXPECT_EQ(q, (std::array<std::uint8_t, 8>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
}

TEST_F(PciRootTest, PlacesBarsNaturallyAlignedInTheirWindows) {
    auto a = device_with_bars({{0, 0x1000, PciBarKind::Memory32},
                               {1, 0x100000, PciBarKind::Memory32},
                               {2, 0x4000, PciBarKind::Memory64},
                               {4, 0x20, PciBarKind::Io}});
    auto b = device_with_bars({{0, 0x2000, PciBarKind::Memory32}, {5, 0x100, PciBarKind::Io}});
    ASSERT_TRUE(root->add_device(a).ok());
    ASSERT_TRUE(root->add_device(b).ok());
    auto& ca = a->config_space();
    auto& cb = b->config_space();
    EXPECT_EQ(ca.bar_address(1), kMmio32Base);  // largest first
    EXPECT_EQ(ca.bar_address(0), kMmio32Base + 0x100000);
    EXPECT_EQ(ca.bar_address(2), kMmio64Base);
    EXPECT_EQ(ca.bar_address(4), kIoBase);
    EXPECT_EQ(cb.bar_address(0), kMmio32Base + 0x102000);  // next 8 KiB boundary
    EXPECT_EQ(cb.bar_address(5), kIoBase + 0x100);         // next 256-byte boundary

    struct Placed {
        std::uint64_t base, size;
    };
    std::vector<Placed> all;
    for (auto* c : {&ca, &cb}) {
        for (int i = 0; i < PciConfigSpace::kNumBars; ++i) {
            if (auto bar = c->bar(i)) {
                EXPECT_EQ(bar->address % bar->size, 0U);
                all.push_back({bar->address, bar->size});
            }
        }
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
        for (std::size_t j = i + 1; j < all.size(); ++j) {
            EXPECT_FALSE(all[i].base < all[j].base + all[j].size &&
                         all[j].base < all[i].base + all[i].size);
        }
    }
    // The guest sees the placement in the BAR registers.
    EXPECT_EQ(cf8_read32(config_address(1, 0x14)), kMmio32Base);
    EXPECT_EQ(ecam_read32(ecam_offset(1, 0x18)), 0x4U);  // 64-bit, low half of 64 GiB
    EXPECT_EQ(ecam_read32(ecam_offset(1, 0x1c)), 0x10U);
}

TEST_F(PciRootTest, FullWindowFailsWithoutSideEffects) {
    auto r = PciRoot::create({{kMmio32Base, 0x10000}, {}, {}});
    ASSERT_TRUE(r.ok());
    auto& small = *r;
    auto big =
        device_with_bars({{0, 0x1000, PciBarKind::Memory32}, {1, 0x20000, PciBarKind::Memory32}});
    EXPECT_FALSE(small->add_device(big).ok());
    EXPECT_EQ(big->config_space().bar_address(0), 0U);  // nothing placed
    EXPECT_EQ(small->free_slot(), std::optional<std::uint8_t>(1));
    auto io_dev = device_with_bars({{0, 0x10, PciBarKind::Io}});
    EXPECT_FALSE(small->add_device(io_dev).ok());  // no I/O window
    // Without a 64-bit window, 64-bit BARs go below 4 GiB.
    auto ok_dev = device_with_bars({{0, 0x8000, PciBarKind::Memory64}});
    ASSERT_TRUE(small->add_device(ok_dev).ok());
    EXPECT_EQ(ok_dev->config_space().bar_address(0), kMmio32Base);
    auto too_many = device_with_bars({{0, 0x10000, PciBarKind::Memory32}});
    EXPECT_FALSE(small->add_device(too_many).ok());
}

TEST_F(PciRootTest, DispatchesToTheBarOnlyWithMemoryDecoding) {
    auto d =
        device_with_bars({{0, 0x1000, PciBarKind::Memory32}, {2, 0x4000, PciBarKind::Memory64}});
    ASSERT_TRUE(root->add_device(d).ok());
    const std::uint64_t bar0 = d->config_space().bar_address(0);
    const std::uint64_t bar2 = d->config_space().bar_address(2);

    EXPECT_EQ(mmio_read32(bar0 + 0x10), 0xffffffffU);  // memory decoding is off
    EXPECT_TRUE(d->reads.empty());
    EXPECT_EQ(root->unclaimed_accesses(), 1U);

    ecam_write16(ecam_offset(1, 0x04), pci::kCommandMemory);
    EXPECT_EQ(mmio_read32(bar0 + 0x10), 0xa0a0a0a0U);
    EXPECT_EQ(mmio_read32(bar2 + 0x3ffc), 0xa2a2a2a2U);
    ASSERT_EQ(d->reads.size(), 2U);
    EXPECT_EQ(d->reads[0], (TestDevice::Access{0, 0x10, 4}));
    EXPECT_EQ(d->reads[1], (TestDevice::Access{2, 0x3ffc, 4}));
    const std::array<std::uint8_t, 2> w{1, 2};
    mmio32->write(bar0 - kMmio32Base + 0xffe, w);
    ASSERT_EQ(d->writes.size(), 1U);
    EXPECT_EQ(d->writes[0], (TestDevice::Access{0, 0xffe, 2}));

    // Past or across the end of a BAR: nobody's.
    EXPECT_EQ(mmio_read32(bar0 + 0xffe), 0xffffffffU);
    EXPECT_EQ(mmio_read32(bar0 + 0x1000), 0xffffffffU);
    mmio32->write(bar0 - kMmio32Base + 0x1000, w);
    EXPECT_EQ(d->writes.size(), 1U);
    EXPECT_EQ(root->unclaimed_accesses(), 4U);

    ecam_write16(ecam_offset(1, 0x04), 0);
    EXPECT_EQ(mmio_read32(bar0), 0xffffffffU);
    EXPECT_EQ(d->reads.size(), 2U);
}

TEST_F(PciRootTest, IoBarsFollowIoDecoding) {
    auto d = device_with_bars({{4, 0x20, PciBarKind::Io}});
    ASSERT_TRUE(root->add_device(d).ok());
    const std::uint64_t port = d->config_space().bar_address(4);
    std::array<std::uint8_t, 1> b{};
    io->read(port - kIoBase + 3, b);
    EXPECT_EQ(b[0], 0xff);
    ecam_write16(ecam_offset(1, 0x04), pci::kCommandMemory);  // memory is not I/O
    io->read(port - kIoBase + 3, b);
    EXPECT_EQ(b[0], 0xff);
    ecam_write16(ecam_offset(1, 0x04), pci::kCommandIo);
    io->read(port - kIoBase + 3, b);
    EXPECT_EQ(b[0], 0xa4);
    ASSERT_EQ(d->reads.size(), 1U);
    EXPECT_EQ(d->reads[0], (TestDevice::Access{4, 3, 1}));
}

TEST_F(PciRootTest, ReprogrammedBarDispatchesAtItsNewAddress) {
    auto d = device_with_bars({{0, 0x1000, PciBarKind::Memory32}});
    ASSERT_TRUE(root->add_device(d).ok());
    const std::uint64_t old_address = d->config_space().bar_address(0);
    ecam_write16(ecam_offset(1, 0x04), pci::kCommandMemory);
    EXPECT_EQ(mmio_read32(old_address), 0xa0a0a0a0U);
    EXPECT_TRUE(d->moves.empty());  // enabling decoding at the placed address moves nothing

    // Linux's sequence: decoding off, size the BAR, restore it, decoding on: not a move.
    ecam_write16(ecam_offset(1, 0x04), 0);
    ecam_write32(ecam_offset(1, 0x10), 0xffffffff);
    EXPECT_EQ(ecam_read32(ecam_offset(1, 0x10)), 0xfffff000U);
    ecam_write32(ecam_offset(1, 0x10), static_cast<std::uint32_t>(old_address));
    ecam_write16(ecam_offset(1, 0x04), pci::kCommandMemory);
    EXPECT_TRUE(d->moves.empty());

    // A real move, with decoding off while the BAR changes.
    const std::uint64_t new_address = kMmio32Base + 0x1000'0000;
    ecam_write16(ecam_offset(1, 0x04), 0);
    ecam_write32(ecam_offset(1, 0x10), static_cast<std::uint32_t>(new_address));
    EXPECT_TRUE(d->moves.empty());
    ecam_write16(ecam_offset(1, 0x04), pci::kCommandMemory);
    ASSERT_EQ(d->moves.size(), 1U);
    EXPECT_EQ(d->moves[0], (TestDevice::Move{0, old_address, new_address}));
    const auto reads_before = d->reads.size();
    EXPECT_EQ(mmio_read32(old_address), 0xffffffffU);
    EXPECT_EQ(mmio_read32(new_address + 8), 0xa0a0a0a0U);
    ASSERT_EQ(d->reads.size(), reads_before + 1);
    EXPECT_EQ(d->reads.back(), (TestDevice::Access{0, 8, 4}));

    // Moving while decoding is on is reported at once.
    ecam_write32(ecam_offset(1, 0x10), static_cast<std::uint32_t>(old_address));
    ASSERT_EQ(d->moves.size(), 2U);
    EXPECT_EQ(d->moves[1], (TestDevice::Move{0, new_address, old_address}));
    EXPECT_EQ(mmio_read32(old_address), 0xa0a0a0a0U);
}

TEST_F(PciRootTest, IntxSwizzleAndInterruptLine) {
    EXPECT_EQ(PciRoot::intx_gsi(1, PciInterruptPin::IntA), 17U);
    EXPECT_EQ(PciRoot::intx_gsi(1, PciInterruptPin::IntD), 20U);
    EXPECT_EQ(PciRoot::intx_gsi(7, PciInterruptPin::IntB), 16U);
    EXPECT_EQ(PciRoot::intx_gsi(31, PciInterruptPin::IntA), 23U);
    EXPECT_EQ(PciRoot::intx_gsi(3, PciInterruptPin::None), std::nullopt);
    // Slots 1-8 each get their own GSI for INTA#, all within 16-23.
    std::vector<std::uint32_t> inta;
    for (std::uint8_t s = 1; s <= 8; ++s) {
        const auto gsi = PciRoot::intx_gsi(s, PciInterruptPin::IntA);
        ASSERT_TRUE(gsi.has_value());
        EXPECT_GE(*gsi, 16U);
        EXPECT_LE(*gsi, 23U);
        EXPECT_EQ(std::count(inta.begin(), inta.end(), *gsi), 0);
        inta.push_back(*gsi);
    }

    auto a = std::make_shared<TestDevice>(PciInterruptPin::IntA);
    auto b = std::make_shared<TestDevice>(PciInterruptPin::IntB);
    auto none = std::make_shared<TestDevice>(PciInterruptPin::None);
    ASSERT_TRUE(root->add_device(a, 3).ok());
    ASSERT_TRUE(root->add_device(b, 4).ok());
    ASSERT_TRUE(root->add_device(none, 9).ok());
    EXPECT_EQ(ecam_read32(ecam_offset(3, 0x3c)) & 0xffff, 0x0100U | 19U);  // pin A, line 19
    EXPECT_EQ(ecam_read32(ecam_offset(4, 0x3c)) & 0xffff, 0x0200U | 21U);  // pin B, line 21
    EXPECT_EQ(ecam_read32(ecam_offset(9, 0x3c)) & 0xffff, 0U);

    const auto routes = root->intx_routes();
    ASSERT_EQ(routes.size(), 12U);  // 4 pins x 3 occupied slots; not the host bridge
    EXPECT_EQ(routes[0], (PciIntxRoute{3, 0, 19}));
    EXPECT_EQ(routes[3], (PciIntxRoute{3, 3, 22}));
    EXPECT_EQ(routes[5], (PciIntxRoute{4, 1, 21}));
    EXPECT_EQ(routes[11], (PciIntxRoute{9, 3, 20}));
    for (const auto& r : routes) {
        const auto pin = static_cast<PciInterruptPin>(r.pin + 1);
        EXPECT_EQ(PciRoot::intx_gsi(r.slot, pin), r.gsi);
    }
}

TEST_F(PciRootTest, SlotAllocation) {
    auto d = std::make_shared<TestDevice>();
    EXPECT_FALSE(root->add_device(d, 0).ok());  // the host bridge's
    EXPECT_FALSE(root->add_device(d, 32).ok());
    EXPECT_FALSE(root->add_device(nullptr).ok());
    ASSERT_TRUE(root->add_device(d, 2).ok());
    EXPECT_FALSE(root->add_device(std::make_shared<TestDevice>(), 2).ok());
    EXPECT_EQ(root->free_slot(), std::optional<std::uint8_t>(1));
    for (int i = 0; i < 30; ++i) {
        ASSERT_TRUE(root->add_device(std::make_shared<TestDevice>()).ok()) << i;
    }
    EXPECT_EQ(root->free_slot(), std::nullopt);
    EXPECT_FALSE(root->add_device(std::make_shared<TestDevice>()).ok());
    EXPECT_EQ(root->intx_routes().size(), 31U * 4);
}

TEST_F(PciRootTest, SnapshotRestoreRedecodesBars) {
    auto d = device_with_bars({{0, 0x1000, PciBarKind::Memory32}});
    ASSERT_TRUE(root->add_device(d).ok());
    ecam_write16(ecam_offset(1, 0x04), pci::kCommandMemory);
    cf8->write(0, le32(config_address(1, 0x10)));
    const auto root_state = root->save_state();
    const auto config_state = d->config_space().save_state();

    auto fresh = PciRoot::create(root->config());
    ASSERT_TRUE(fresh.ok());
    auto d2 = device_with_bars({{0, 0x1000, PciBarKind::Memory32}});
    ASSERT_TRUE((*fresh)->add_device(d2).ok());
    ASSERT_TRUE(d2->config_space().restore_state(config_state).ok());
    (*fresh)->restore_state(root_state);
    std::array<std::uint8_t, 4> b{};
    auto window = (*fresh)->mmio32_window();
    window->read(d->config_space().bar_address(0) - kMmio32Base, b);
    EXPECT_EQ(get32(b), 0xa0a0a0a0U);
    EXPECT_TRUE(d2->moves.empty());
    auto cf8_2 = (*fresh)->config_io();
    cf8_2->read(0, b);
    EXPECT_EQ(get32(b), config_address(1, 0x10));
}

TEST(PciRootCreate, ValidatesWindows) {
    EXPECT_FALSE(PciRoot::create({{kMmio32Base, 0}, {}, {}}).ok());          // empty
    EXPECT_FALSE(PciRoot::create({{0xf0000000, 0x20000000}, {}, {}}).ok());  // past 4 GiB
    EXPECT_FALSE(PciRoot::create({{kMmio32Base, 0x1000}, {~0ULL - 0xfff, 0x2000}, {}}).ok());
    EXPECT_FALSE(PciRoot::create({{kMmio32Base, 0x1000}, {kMmio32Base, 0x1000}, {}}).ok());
    EXPECT_FALSE(PciRoot::create({{kMmio32Base, 0x1000}, {}, {0xf000, 0x2000}}).ok());
    EXPECT_TRUE(PciRoot::create({{kMmio32Base, 0x1000}, {}, {}}).ok());
    auto r = PciRoot::create({{kMmio32Base, 0x1000}, {}, {}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ((*r)->mmio64_window(), nullptr);
    EXPECT_EQ((*r)->io_window(), nullptr);
}

}  // namespace
}  // namespace vireo
