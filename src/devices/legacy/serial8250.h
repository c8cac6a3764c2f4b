// A 16550A UART (National Semiconductor PC16550D datasheet) with 16-byte FIFOs and its interrupt
// on an IrqLine (COM1: ports 0x3f8-0x3ff, ISA IRQ 4). Transmission is instant: the transmitter is
// always empty again by the time the guest looks, so LSR.THRE/TEMT read as 1 and a THR-empty
// interrupt follows every write when enabled. That is what lets Linux drive it by interrupt
// instead of polling LSR (DESIGN.md §5: polled UARTs cost tens of thousands of exits per boot).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "base/state_archive.h"
#include "bus/bus_device.h"
#include "devices/component.h"
#include "irq/irq_line.h"

namespace vireo {

// Register offsets from the base port (datasheet Table II); DLAB = LCR bit 7 selects DLL/DLM.
enum class UartReg : std::uint8_t {
    RbrThrDll = 0,  // receive buffer (read) / transmit holding (write) / divisor latch low
    IerDlm = 1,     // interrupt enable / divisor latch high
    IirFcr = 2,     // interrupt identification (read) / FIFO control (write)
    Lcr = 3,        // line control
    Mcr = 4,        // modem control
    Lsr = 5,        // line status
    Msr = 6,        // modem status
    Scr = 7,        // scratch
};

// Everything the UART holds; what a snapshot saves.
struct Serial8250State {
    std::uint8_t ier = 0;
    std::uint8_t lcr = 0x03;  // 8N1
    std::uint8_t mcr = 0x08;  // OUT2
    std::uint8_t lsr = 0x60;  // THRE | TEMT
    std::uint8_t msr = 0xb0;  // DCD | DSR | CTS
    std::uint8_t scr = 0;
    std::uint8_t dll = 0x0c;  // 9600 baud
    std::uint8_t dlm = 0;
    std::uint8_t fcr = 0;
    bool thr_interrupt_pending = false;
    std::vector<std::uint8_t> rx_fifo;
};

class Serial8250 final : public BusDevice, public StateComponent<Serial8250, Serial8250State> {
public:
    using Output = std::function<void(std::span<const std::uint8_t>)>;
    static constexpr std::uint64_t kPorts = 8;
    // Guest input is buffered up to this many bytes beyond which queue_input() refuses more; the
    // real FIFO is 16 bytes, a larger buffer spares the console thread from pacing the guest.
    static constexpr std::size_t kRxCapacity = 4096;

    Serial8250(IrqLine& irq, Output output) : m_irq(irq), m_output(std::move(output)) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    // Host -> guest bytes (console input). Returns how many were accepted.
    std::size_t queue_input(std::span<const std::uint8_t> bytes);

    Serial8250State save_state() const;
    void restore_state(const Serial8250State& state);

    // Device(COMn) at the first port range and IRQ of `placement`; n from the PC's standard
    // bases (0x3f8 COM1, 0x2f8 COM2, 0x3e8 COM3, 0x2e8 COM4).
    std::vector<acpi::Aml> acpi_devices(const Placement& placement) const override;

private:
    std::uint8_t read_reg(UartReg reg);
    void write_reg(UartReg reg, std::uint8_t value);
    std::uint8_t interrupt_id() const;
    void update_irq();  // recomputes the line level after every access (kvmtool's pattern)

    mutable std::mutex m_mutex;
    IrqLine& m_irq;
    Output m_output;
    Serial8250State m_s;
    std::deque<std::uint8_t> m_rx;  // mirrors m_s.rx_fifo while running
    bool m_irq_level = false;
};

// The DSDT's Device(COMn) (n = 1..99: COM1..COM9, then CO10..CO99, a NameSeg being 4
// characters): _HID PNP0501 (16550A-compatible), _UID n, _CRS with the 8 ports from `base` and
// ISA IRQ `irq`. An error term when n, the IRQ (0-15) or the port range is out of bounds.
acpi::Aml serial8250_aml(std::size_t number, std::uint64_t base, std::uint32_t irq);

template <typename Ar>
void persist(Ar& ar, Serial8250State& s) {
    ar(s.ier, s.lcr, s.mcr, s.lsr, s.msr, s.scr, s.dll, s.dlm, s.fcr, s.thr_interrupt_pending);
    ar.vec(s.rx_fifo, Serial8250::kRxCapacity);
}

}  // namespace vireo
