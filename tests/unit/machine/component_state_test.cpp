// Every component's saved state through the snapshot encoding (persist() beside each State
// struct): what is saved is what comes back, byte for byte, and a live device restored from it
// behaves as the original. Device-specific behaviour after restore is tested beside each device
// (serial8250_test, i8042_test, virtio_pci_device_test); the vCPU and the machine on /dev/kvm
// (tests/probe/snapshot_test.cpp, tests/cli/snapshot.sh).
#include <gtest/gtest.h>

#include "accel/accel_state.h"
#include "base/state_archive.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_root.h"

namespace vireo {
namespace {

template <typename T>
T through_bytes(const T& state) {
    const auto bytes = save_to_bytes(state);
    auto back = load_from_bytes<T>(bytes);
    EXPECT_TRUE(back) << back.error().message();
    EXPECT_EQ(save_to_bytes(*back), bytes);
    // No truncation of it decodes.
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        EXPECT_FALSE(load_from_bytes<T>(std::span(bytes).first(n))) << n;
    }
    return std::move(back).value();
}

TEST(ComponentState, CmosKeepsItsRamAndIndex) {
    CmosRtc rtc(512ULL << 20, 0, [] { return std::time_t{1700000000}; });
    const std::uint8_t index = 0x40, value = 0xa5;
    rtc.write(0, std::span(&index, 1));
    rtc.write(1, std::span(&value, 1));
    const auto s = through_bytes(rtc.save_state());
    CmosRtc other(512ULL << 20, 0, [] { return std::time_t{1700000000}; });
    other.restore_state(s);
    std::uint8_t got = 0;
    other.write(0, std::span(&index, 1));
    other.read(1, std::span(&got, 1));
    EXPECT_EQ(got, value);
}

TEST(ComponentState, MsixTableAndPciRoot) {
    MsixTableState m;
    m.entries = {{0xfee00000, 0, 0x4041, 0}, {0xfee01000, 0, 0x22, 1}};
    m.pending = {0x2};
    m.enabled = true;
    m.function_masked = false;
    const auto back = through_bytes(m);
    EXPECT_EQ(back.entries, m.entries);
    EXPECT_EQ(back.pending, m.pending);
    EXPECT_TRUE(back.enabled);
    PciRootState r{0x80000810};
    EXPECT_EQ(through_bytes(r).config_address, 0x80000810U);
    PciConfigSpaceState c;
    c.bytes[0] = 0xf4;
    c.bytes[4095] = 0x77;
    EXPECT_EQ(through_bytes(c).bytes, c.bytes);
}

TEST(ComponentState, VcpuAndPlatform) {
    VcpuState v;
    v.id = 3;
    v.tsc_khz = 2'500'000;
    v.cpuid = {{0x1, 0, 0, 1, 2, 3, 4}, {0x7, 0, 1, 5, 6, 7, 8}};
    v.regs.r15 = 0x1111;
    v.regs.rip = 0xffffffff81000000;
    v.sregs.tr.base = 0x2222;
    v.sregs.ldt.unusable = 1;
    v.sregs.apic_base = 0xfee00900;
    v.xsave.assign(4096, 0x33);
    v.xcr0 = 7;
    v.debug.dr[2] = 0x4444;
    v.has_lapic = true;
    v.lapic.write(0xf0, 0x1ff);
    v.events.nmi_masked = true;
    v.events.exception_payload = 0x6666;
    v.mp_state = MpState::SipiReceived;
    v.msrs = {{0x10, 123456789}, {0x4b564d01, 0xabc}};
    const auto back = through_bytes(v);
    EXPECT_EQ(back.id, 3U);
    EXPECT_EQ(back.cpuid.size(), 2U);
    EXPECT_EQ(back.cpuid[1].ebx, 6U);
    EXPECT_EQ(back.xsave, v.xsave);
    EXPECT_EQ(back.msrs[1].data, 0xabcU);
    EXPECT_EQ(back.mp_state, MpState::SipiReceived);
    EXPECT_EQ(save_to_bytes(back), save_to_bytes(v)) << "every field comes back";

    VmPlatformState p;
    p.accelerator = "kvm";
    p.irqchip = true;
    p.pic_master.assign(520, 1);
    p.ioapic.assign(520, 3);
    p.pit.assign(112, 4);
    p.clock_ns = 987654321;
    const auto pb = through_bytes(p);
    EXPECT_EQ(pb.accelerator, "kvm");
    EXPECT_EQ(pb.clock_ns, 987654321U);
    EXPECT_EQ(pb.ioapic, p.ioapic);
}

TEST(ComponentState, CapsBoundWhatAFileCanMakeUsAllocate) {
    VcpuState v;
    v.msrs.resize(kMaxSavedMsrs + 1);
    EXPECT_FALSE(load_from_bytes<VcpuState>(save_to_bytes(v)));
    // Values a file controls that the state cannot hold are refused on reading.
    VcpuState odd;
    odd.mp_state = static_cast<MpState>(77);
    EXPECT_FALSE(load_from_bytes<VcpuState>(save_to_bytes(odd)));
    VcpuState short_xsave;
    short_xsave.xsave.assign(511, 0);
    EXPECT_FALSE(load_from_bytes<VcpuState>(save_to_bytes(short_xsave)));
    VmPlatformState p;
    p.accelerator = std::string(64, 'k');  // names are at most 32 bytes
    EXPECT_FALSE(load_from_bytes<VmPlatformState>(save_to_bytes(p)));
}

}  // namespace
}  // namespace vireo
