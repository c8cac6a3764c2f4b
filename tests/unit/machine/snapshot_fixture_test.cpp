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
#include "machine/vcpu_section.h"
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
    ASSERT_NE(c->find("i8042"), nullptr);
    EXPECT_TRUE(load_from_bytes<I8042State>(c->find("i8042")->data));
    // This fixture's vCPU section has no KVM structs at all (no vireo ever wrote such a vCPU):
    // reading it fails with the reason, never with made-up registers.
    auto v = load_vcpu_section(*c->find("vcpu.0"));
    ASSERT_FALSE(v);
    EXPECT_NE(v.error().message().find("saved registers is 0 bytes"), std::string::npos)
        << v.error().message();
}

// Format 3 before the neutral vCPU seam: "vcpu.0" version 1 holds KVM's structs as bytes. It
// reads as exactly the neutral state today's vireo writes for the same vCPU.
TEST(SnapshotFixture, Format3KvmVcpuReadsAsNeutralState) {
    auto c = read_snapshot_file(fixture_path("devices-format3.vsnap"));
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->format_version, 3U);
    const SnapshotSection* section = c->find("vcpu.0");
    ASSERT_NE(section, nullptr);
    EXPECT_EQ(section->version, 1U);
    auto v = load_vcpu_section(*section);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ(save_to_bytes(*v), save_to_bytes(fixture::fixture_vcpu()));

    EXPECT_EQ(v->regs.rip, 0xffffffff81000123U);
    EXPECT_EQ(v->regs.rax, 0x1111111111111111U);
    EXPECT_EQ(v->sregs.cs.l, 1);
    EXPECT_EQ(v->sregs.ds.unusable, 1);
    EXPECT_EQ(v->sregs.gs.base, 0xffff888003a00000U);
    EXPECT_EQ(v->sregs.efer, 0xd01U);
    ASSERT_EQ(v->xsave.size(), 4096U);
    EXPECT_EQ(v->xsave[576], 0xc0) << "YMM0's upper half kept";
    EXPECT_EQ(v->xsave[32 + 7 * 16], 0xa0) << "ST7 kept";
    EXPECT_EQ(v->xcr0, 7U);
    EXPECT_EQ(v->debug.dr[3], 0x403000U);
    EXPECT_EQ(v->debug.dr7, 0x403U);
    ASSERT_TRUE(v->has_lapic);
    EXPECT_EQ(v->lapic.read(0xf0), 0x1ffU);
    EXPECT_EQ(v->lapic.read(0x320), 0x400ecU);
    EXPECT_TRUE(v->events.exception_injected);
    EXPECT_EQ(v->events.exception_vector, 14);
    EXPECT_EQ(v->events.exception_error_code, 2U);
    EXPECT_TRUE(v->events.nmi_pending);
    EXPECT_TRUE(v->events.nmi_masked);
    EXPECT_EQ(v->events.interrupt_shadow, VcpuEvents::kShadowSti);
    EXPECT_EQ(v->events.sipi_vector, 0x9aU);
    EXPECT_EQ(v->mp_state, MpState::Runnable);
    ASSERT_EQ(v->msrs.size(), 2U);
    EXPECT_EQ(v->msrs[1].index, 0x4b564d01U);
}

// What this vireo writes for the vCPU reads back through the same path.
TEST(SnapshotFixture, CurrentVcpuSectionRoundTrips) {
    const auto c = fixture::fixture_contents();
    const SnapshotSection* section = c.find("vcpu.0");
    ASSERT_NE(section, nullptr);
    EXPECT_EQ(section->version, kVcpuSectionVersion);
    auto v = load_vcpu_section(*section);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_EQ(save_to_bytes(*v), save_to_bytes(fixture::fixture_vcpu()));
    SnapshotSection future = *section;
    future.version = kVcpuSectionVersion + 1;
    auto refused = load_vcpu_section(future);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("has version 3"), std::string::npos)
        << refused.error().message();
}

}  // namespace
}  // namespace vireo
