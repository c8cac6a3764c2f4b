// The devices and state the snapshot fixtures record (fixtures/devices-formatN.vsnap), shared by
// the test that reads them and the tool that writes a new one (snapshot_fixture_writer.cpp).
#pragma once

#include <ctime>

#include "accel/accel_state.h"
#include "base/state_archive.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial8250.h"
#include "devices/pci/pci_root.h"
#include "snapshot/snapshot_file.h"

namespace vireo {
namespace fixture {

struct NullIrq final : IrqLine {
    void set_level(bool) override {}
};

inline constexpr std::time_t kClock = 1700000000;

inline void put(BusDevice& d, std::uint64_t offset, std::uint8_t v) {
    d.write(offset, std::span(&v, 1));
}

inline std::uint8_t get(BusDevice& d, std::uint64_t offset) {
    std::uint8_t v = 0;
    d.read(offset, std::span(&v, 1));
    return v;
}

// The devices in the state the fixture records: the serial port with a line control and scratch
// value set and three bytes of input waiting, CMOS byte 0x40 = 0xa5 with the index left at 0x40,
// the PCI root's CONFIG_ADDRESS latched.
inline SnapshotContents fixture_contents() {
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

}  // namespace fixture
}  // namespace vireo
