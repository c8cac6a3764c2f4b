// The machine's I/O path on real KVM exits: port writes reach a device on the port bus at its
// offset, MMIO reaches the MMIO bus, and unclaimed accesses read all-ones and are counted.
#include "machine/machine_io.h"
#include "devices/legacy/serial8250.h"
#include "probe_fixture.h"

namespace vireo::probe {
namespace {

struct NoIrq final : IrqLine {
    void set_level(bool) override {}
};

struct Scratch final : BusDevice {
    std::uint32_t value = 0;
    void read(std::uint64_t, std::span<std::uint8_t> data) override {
        std::memcpy(data.data(), &value, std::min(data.size(), sizeof(value)));
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        if (offset == 0) {
            std::memcpy(&value, data.data(), std::min(data.size(), sizeof(value)));
        }
    }
};

TEST_F(ProbeTest, PortAndMmioAccessesReachBusDevices) {
    NoIrq irq;
    std::string out;
    IoBus pio;
    IoBus mmio;
    auto uart = std::make_shared<Serial8250>(
        irq, [&](std::span<const std::uint8_t> b) { out.append(b.begin(), b.end()); });
    auto scratch = std::make_shared<Scratch>();
    ASSERT_TRUE(pio.insert(0x3f8, Serial8250::kPorts, uart, "COM1").ok());
    ASSERT_TRUE(mmio.insert(kUnmappedAddress, 0x1000, scratch, "scratch").ok());
    MachineIo io(pio, mmio);

    Asm a;
    a.mov_dx(0x3f8).mov_al('o').out_dx_al().mov_al('k').out_dx_al();
    a.mov_dx(0x3fd).in_al_dx().out_imm8_al(0x80);  // LSR -> unclaimed port 0x80
    a.in_al_imm8(0x81).mov_ebx_eax();              // unclaimed read: all-ones
    a.mov_rax(kUnmappedAddress).mov_mem_rax_imm32(0xfeedf00d);
    a.hlt();
    auto g = guest(CpuMode::Long64, a);
    ASSERT_TRUE(g);
    EXPECT_EQ(run(*g, io).kind, VcpuExitKind::Halt);
    EXPECT_EQ(out, "ok");
    EXPECT_EQ(scratch->value, 0xfeedf00dU);
    auto regs = g->vcpu().get_regs();
    ASSERT_TRUE(regs.ok());
    EXPECT_EQ(regs->rbx & 0xff, 0xffU);
    EXPECT_EQ(io.unclaimed_total(), 2U);
    const auto unclaimed = io.unclaimed();
    EXPECT_EQ(unclaimed.at(0x80), 1U);
    EXPECT_EQ(unclaimed.at(0x81), 1U);
}

}  // namespace
}  // namespace vireo::probe
