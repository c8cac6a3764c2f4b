// A state file written by an older vireo still loads (issue 12: versioned sections). The fixture
// in fixtures/ was written once by the vireo of its format version, from real devices in a known
// state, and is never rewritten: each later format must keep reading it. To write a fixture for a
// new format (after changing the format, keep the old files):
//
//     VIREO_WRITE_SNAPSHOT_FIXTURE=tests/unit/machine/fixtures/devices-formatN.vsnap
//         build/tests/unit/vireo_unit_tests --gtest_also_run_disabled_tests
//         --gtest_filter='SnapshotFixture.DISABLED_Write'
// (one command line).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "accel/accel_state.h"
#include "base/state_archive.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial8250.h"
#include "devices/pci/pci_root.h"
#include "snapshot/snapshot_file.h"

namespace vireo {
namespace {

struct NullIrq final : IrqLine {
    void set_level(bool) override {}
};

constexpr std::time_t kClock = 1700000000;

void put(BusDevice& d, std::uint64_t offset, std::uint8_t v) {
    d.write(offset, std::span(&v, 1));
}

std::uint8_t get(BusDevice& d, std::uint64_t offset) {
    std::uint8_t v = 0;
    d.read(offset, std::span(&v, 1));
    return v;
}

// The devices in the state the fixture records: the serial port with a line control and scratch
// value set and three bytes of input waiting, CMOS byte 0x40 = 0xa5 with the index left at 0x40,
// the PCI root's CONFIG_ADDRESS latched.
SnapshotContents fixture_contents() {
    static NullIrq irq;
    Serial8250 serial(irq, [](std::span<const std::uint8_t>) {});
    put(serial, 3, 0x1b);  // LCR: 8 bits, 1.5 stop, even parity
    put(serial, 7, 0x5c);  // SCR
    const std::uint8_t input[] = {'a', 'b', 'c'};
    serial.queue_input(input);
    I8042 kbd(irq, [] {});
    CmosRtc cmos(512ULL << 20, 0, [] { return kClock; });
    put(cmos, 0, 0x40);
    put(cmos, 1, 0xa5);
    SnapshotContents c;
    c.vireo_version = "vireo fixture";
    c.config = R"({"machine-config":{"vcpu_count":1,"mem_size_mib":512}})";
    c.add("serial", save_to_bytes(serial.save_state()));
    c.add("i8042", save_to_bytes(kbd.save_state()));
    c.add("cmos", save_to_bytes(cmos.save_state()));
    c.add("pci-root", save_to_bytes(PciRootState{0x80000810}));
    VcpuState v;
    v.id = 0;
    v.tsc_khz = 2'000'000;
    v.cpuid = {{0x1, 0, 0, 0x800f12, 0x800, 0x80000000, 0x178bfbff}};
    v.msrs = {{0x10, 123456789}};
    c.add("vcpu.0", save_to_bytes(v));
    return c;
}

std::string fixture_path(const char* name) {
    return std::string(VIREO_SOURCE_DIR) + "/tests/unit/machine/fixtures/" + name;
}

// Not a test: the tool that writes the fixture, run by hand (see the top of this file).
TEST(SnapshotFixture, DISABLED_Write) {
    const char* out = std::getenv("VIREO_WRITE_SNAPSHOT_FIXTURE");
    ASSERT_NE(out, nullptr) << "VIREO_WRITE_SNAPSHOT_FIXTURE names the file to write";
    ASSERT_TRUE(write_snapshot_file(out, fixture_contents()));
}

// Format 2 (vireo before issue 12's registry): sections without a version of their own.
TEST(SnapshotFixture, Format2DevicesComeBack) {
    auto c = read_snapshot_file(fixture_path("devices-format2.vsnap"));
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->format_version, 2U);
    EXPECT_EQ(c->vireo_version, "vireo fixture");
    for (const auto& section : c->sections) {
        EXPECT_EQ(section.version, 1U) << section.name;
    }

    NullIrq irq;
    Serial8250 serial(irq, [](std::span<const std::uint8_t>) {});
    auto s = load_from_bytes<Serial8250State>(c->find("serial")->data);
    ASSERT_TRUE(s) << s.error().message();
    serial.restore_state(*s);
    EXPECT_EQ(get(serial, 3), 0x1b);
    EXPECT_EQ(get(serial, 7), 0x5c);
    EXPECT_EQ(get(serial, 0), 'a');
    EXPECT_EQ(get(serial, 0), 'b');

    CmosRtc cmos(512ULL << 20, 0, [] { return kClock; });
    auto r = load_from_bytes<CmosRtcState>(c->find("cmos")->data);
    ASSERT_TRUE(r) << r.error().message();
    cmos.restore_state(*r);
    EXPECT_EQ(get(cmos, 1), 0xa5);

    auto root = load_from_bytes<PciRootState>(c->find("pci-root")->data);
    ASSERT_TRUE(root);
    EXPECT_EQ(root->config_address, 0x80000810U);
    auto v = load_from_bytes<VcpuState>(c->find("vcpu.0")->data);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->tsc_khz, 2'000'000U);
    EXPECT_EQ(v->msrs.at(0).data, 123456789U);
    ASSERT_NE(c->find("i8042"), nullptr);
    EXPECT_TRUE(load_from_bytes<I8042State>(c->find("i8042")->data));
}

}  // namespace
}  // namespace vireo
