// The devices and state the snapshot fixtures record (fixtures/devices-formatN.vsnap), shared by
// the test that reads them and the tool that writes a new one (snapshot_fixture_writer.cpp).
#pragma once

#include <cstring>
#include <ctime>

#include "accel/accel_state.h"
#include "accel/kvm/kvm_state_convert.h"
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

// A vCPU of a 64-bit guest in its kernel as KVM holds it, with a value in every piece of state
// that a conversion could lose. devices-format3.vsnap saved it as section "vcpu.0" version 1
// (KVM's structs as bytes); today's vireo saves its neutral form (fixture_vcpu()).
inline kvm::KvmVcpuState fixture_kvm_vcpu() {
    kvm::KvmVcpuState v;
    kvm_regs& r = v.regs;
    r.rax = 0x1111111111111111;
    r.rbx = 0x2222;
    r.rcx = 0x3333;
    r.rdx = 0x4444;
    r.rsi = 0x5555;
    r.rdi = 0x6666;
    r.rsp = 0xffffc90000003f00;
    r.rbp = 0x7777;
    r.r8 = 8;
    r.r15 = 15;
    r.rip = 0xffffffff81000123;
    r.rflags = 0x246;
    kvm_sregs& s = v.sregs;
    s.cs = {0, 0xffffffff, 0x10, 0xb, 1, 0, 0, 1, 1, 1, 0, 0, 0};
    s.ss = {0, 0xffffffff, 0x18, 0x3, 1, 0, 1, 1, 0, 1, 0, 0, 0};
    s.ds = s.es = {0, 0xfffff, 0, 0x1, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    s.fs = {0x7f0000001000, 0xfffff, 0, 0x1, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    s.gs = {0xffff888003a00000, 0xfffff, 0, 0x1, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    s.tr = {0xfffffe0000003000, 0x4087, 0x40, 0xb, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    s.ldt = {0, 0xffff, 0, 0x2, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    s.gdt = {0xfffffe0000001000, 0x7f, {}};
    s.idt = {0xfffffe0000000000, 0xfff, {}};
    s.cr0 = 0x80050033;
    s.cr2 = 0x7f0000002000;
    s.cr3 = 0x1a0c000;
    s.cr4 = 0x3706f0;
    s.cr8 = 0;
    s.efer = 0xd01;
    s.apic_base = 0xfee00900;
    v.has_xsave = true;
    auto* area = reinterpret_cast<std::uint8_t*>(v.xsave.region);
    const std::uint16_t fcw = 0x37f, fsw = 0x3800;
    const std::uint32_t mxcsr = 0x1fa0, mxcsr_mask = 0xffff;
    const std::uint64_t xstate_bv = 0x7;  // x87, SSE, AVX
    std::memcpy(area + 0, &fcw, 2);
    std::memcpy(area + 2, &fsw, 2);
    area[4] = 0x80;  // abridged tag: ST7 valid
    std::memcpy(area + 24, &mxcsr, 4);
    std::memcpy(area + 28, &mxcsr_mask, 4);
    for (int i = 0; i < 10; ++i) {
        area[32 + 7 * 16 + i] = static_cast<std::uint8_t>(0xa0 + i);  // ST7 = R0
    }
    for (int i = 0; i < 16; ++i) {
        area[160 + i] = static_cast<std::uint8_t>(0x10 + i);            // XMM0
        area[160 + 15 * 16 + i] = static_cast<std::uint8_t>(0xf0 + i);  // XMM15
        area[576 + i] = static_cast<std::uint8_t>(0xc0 + i);            // YMM0's upper half
    }
    std::memcpy(area + 512, &xstate_bv, 8);
    v.has_xcrs = true;
    kvm_xcrs& xcrs = v.xcrs;
    xcrs.nr_xcrs = 1;
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = 0x7;
    v.has_debugregs = true;
    kvm_debugregs& dr = v.debugregs;
    dr.db[0] = 0x401000;
    dr.db[3] = 0x403000;
    dr.dr6 = 0xffff0ff1;
    dr.dr7 = 0x403;
    v.has_lapic = true;
    kvm_lapic_state& lapic = v.lapic;
    const std::uint32_t lapic_regs[][2] = {
        {0x20, 0},     {0x30, 0x50014},  {0x80, 0x10},     {0xd0, 0x1000000}, {0xe0, 0xffffffff},
        {0xf0, 0x1ff}, {0x320, 0x400ec}, {0x350, 0x10700}, {0x360, 0x400},    {0x3e0, 0x3}};
    for (const auto& [offset, value] : lapic_regs) {
        std::memcpy(lapic.regs + offset, &value, 4);
    }
    v.has_events = true;
    kvm_vcpu_events& ev = v.events;
    ev.exception = {1, 14, 1, 0, 0x2};  // a #PF (error code: write) being delivered
    ev.interrupt = {0, 0, 0, KVM_X86_SHADOW_INT_STI};
    ev.nmi = {0, 1, 1, 0};  // an NMI waits while NMIs are blocked
    ev.sipi_vector = 0x9a;
    ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
               KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
    v.mp.mp_state = KVM_MP_STATE_RUNNABLE;
    return v;
}

inline VcpuState fixture_vcpu() {
    VcpuState v = kvm::to_neutral(fixture_kvm_vcpu());
    v.id = 0;
    v.tsc_khz = 2'000'000;
    v.cpuid = {{0x1, 0, 0, 0x800f12, 0x800, 0x80000000, 0x178bfbff}};
    v.msrs = {{0x10, 123456789}, {0x4b564d01, 0x7ff1001}};
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
    c.add("vcpu.0", save_to_bytes(fixture_vcpu()), kVcpuSectionVersion);
    return c;
}

}  // namespace fixture
}  // namespace vireo
