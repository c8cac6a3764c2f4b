// A state file written by an older vireo still loads (issue 12: versioned sections). The fixture
// in fixtures/ was written once by the vireo of its format version, from real devices in a known
// state (snapshot_fixture.h), and is never rewritten: each later format must keep reading it.
// To write a fixture for a new format (after changing the format, keep the old files):
//
//     build/tests/unit/vireo-snapshot-fixture-writer
//     tests/unit/machine/fixtures/devices-formatN.vsnap
#include <gtest/gtest.h>

#include <string>

#include "accel/accel_state.h"
#include "base/state_archive.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial8250.h"
#include "devices/pci/pci_root.h"
#include "machine/snapshot_fixture.h"
#include "snapshot/snapshot_file.h"

namespace vireo {
namespace {

using fixture::get;
using fixture::kClock;
using fixture::NullIrq;

std::string fixture_path(const char* name) {
    return std::string(VIREO_SOURCE_DIR) + "/tests/unit/machine/fixtures/" + name;
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
