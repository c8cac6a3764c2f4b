#include "devices/legacy/serial8250.h"

#include <fmt/format.h>

namespace vireo {

namespace {

// Bits from the PC16550D datasheet.
constexpr std::uint8_t kIerRdi = 0x01;   // received data available
constexpr std::uint8_t kIerThri = 0x02;  // transmitter holding register empty
constexpr std::uint8_t kIerRlsi = 0x04;  // receiver line status
constexpr std::uint8_t kIerMsi = 0x08;   // modem status

constexpr std::uint8_t kIirNoInt = 0x01;
constexpr std::uint8_t kIirThri = 0x02;
constexpr std::uint8_t kIirRdi = 0x04;
constexpr std::uint8_t kIirRlsi = 0x06;
constexpr std::uint8_t kIirMsi = 0x00;
constexpr std::uint8_t kIirFifoEnabled = 0xc0;

constexpr std::uint8_t kFcrEnable = 0x01;
constexpr std::uint8_t kFcrClearRx = 0x02;

constexpr std::uint8_t kLcrDlab = 0x80;

constexpr std::uint8_t kMcrDtr = 0x01;
constexpr std::uint8_t kMcrRts = 0x02;
constexpr std::uint8_t kMcrOut1 = 0x04;
constexpr std::uint8_t kMcrOut2 = 0x08;
constexpr std::uint8_t kMcrLoop = 0x10;

constexpr std::uint8_t kLsrDr = 0x01;                               // data ready
constexpr std::uint8_t kLsrOe = 0x02;                               // overrun error
constexpr std::uint8_t kLsrBi = 0x10;                               // break interrupt
constexpr std::uint8_t kLsrThre = 0x20;                             // THR empty
constexpr std::uint8_t kLsrTemt = 0x40;                             // transmitter empty
constexpr std::uint8_t kLsrErrors = kLsrOe | 0x04 | 0x08 | kLsrBi;  // OE, PE, FE, BI

constexpr std::uint8_t kMsrDeltas = 0x0f;
constexpr std::uint8_t kMsrCts = 0x10;
constexpr std::uint8_t kMsrDsr = 0x20;
constexpr std::uint8_t kMsrRi = 0x40;
constexpr std::uint8_t kMsrDcd = 0x80;

}  // namespace

void Serial8250::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    // Byte registers: a wider access reads the first register and pads with all-ones.
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = (i == 0 && offset < kPorts) ? read_reg(static_cast<UartReg>(offset)) : 0xff;
    }
    update_irq();
}

void Serial8250::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(m_mutex);
    if (!data.empty() && offset < kPorts) {
        write_reg(static_cast<UartReg>(offset), data[0]);
    }
    update_irq();
}

std::uint8_t Serial8250::read_reg(UartReg reg) {
    const bool dlab = (m_s.lcr & kLcrDlab) != 0;
    switch (reg) {
        case UartReg::RbrThrDll: {
            if (dlab) {
                return m_s.dll;
            }
            if (m_rx.empty()) {
                return 0;
            }
            const std::uint8_t b = m_rx.front();
            m_rx.pop_front();
            if (m_rx.empty()) {
                m_s.lsr &= static_cast<std::uint8_t>(~kLsrDr);
            }
            return b;
        }
        case UartReg::IerDlm:
            return dlab ? m_s.dlm : m_s.ier;
        case UartReg::IirFcr: {
            const std::uint8_t id = interrupt_id();
            // Reading IIR while it reports THR empty clears that interrupt (datasheet Table IV).
            if (id == kIirThri) {
                m_s.thr_interrupt_pending = false;
            }
            return static_cast<std::uint8_t>(id | ((m_s.fcr & kFcrEnable) ? kIirFifoEnabled : 0));
        }
        case UartReg::Lcr:
            return m_s.lcr;
        case UartReg::Mcr:
            return m_s.mcr;
        case UartReg::Lsr: {
            const std::uint8_t v = m_s.lsr;
            m_s.lsr &= static_cast<std::uint8_t>(~kLsrErrors);  // error bits clear on read
            return v;
        }
        case UartReg::Msr: {
            std::uint8_t v = m_s.msr;
            if (m_s.mcr & kMcrLoop) {
                // Loopback: modem inputs follow the modem outputs (datasheet "Loopback mode").
                v = static_cast<std::uint8_t>(
                    ((m_s.mcr & kMcrRts) ? kMsrCts : 0) | ((m_s.mcr & kMcrDtr) ? kMsrDsr : 0) |
                    ((m_s.mcr & kMcrOut1) ? kMsrRi : 0) | ((m_s.mcr & kMcrOut2) ? kMsrDcd : 0));
            }
            m_s.msr &= static_cast<std::uint8_t>(~kMsrDeltas);
            return v;
        }
        case UartReg::Scr:
            return m_s.scr;
    }
    return 0xff;
}

void Serial8250::write_reg(UartReg reg, std::uint8_t value) {
    const bool dlab = (m_s.lcr & kLcrDlab) != 0;
    switch (reg) {
        case UartReg::RbrThrDll:
            if (dlab) {
                m_s.dll = value;
                return;
            }
            if (m_s.mcr & kMcrLoop) {
                if (m_rx.size() < kRxCapacity) {
                    m_rx.push_back(value);
                    m_s.lsr |= kLsrDr;
                }
            } else if (m_output) {
                m_output(std::span(&value, 1));
            }
            // The byte left at once: THR is empty again.
            m_s.lsr |= kLsrThre | kLsrTemt;
            m_s.thr_interrupt_pending = true;
            return;
        case UartReg::IerDlm:
            if (dlab) {
                m_s.dlm = value;
                return;
            }
            // Enabling the THR-empty interrupt while THR is empty raises it at once.
            if ((value & kIerThri) && !(m_s.ier & kIerThri) && (m_s.lsr & kLsrThre)) {
                m_s.thr_interrupt_pending = true;
            }
            m_s.ier = value & 0x0f;
            return;
        case UartReg::IirFcr:
            if (value & kFcrClearRx) {
                m_rx.clear();
                m_s.lsr &= static_cast<std::uint8_t>(~kLsrDr);
            }
            m_s.fcr = value & 0xc9;  // enable, DMA mode, trigger level; clear bits self-reset
            return;
        case UartReg::Lcr:
            m_s.lcr = value;
            return;
        case UartReg::Mcr:
            m_s.mcr = value & 0x1f;
            return;
        case UartReg::Lsr:
        case UartReg::Msr:
            return;  // read-only (factory test writes ignored)
        case UartReg::Scr:
            m_s.scr = value;
            return;
    }
}

std::uint8_t Serial8250::interrupt_id() const {
    // Priority order of datasheet Table IV.
    if ((m_s.ier & kIerRlsi) && (m_s.lsr & kLsrErrors)) {
        return kIirRlsi;
    }
    if ((m_s.ier & kIerRdi) && (m_s.lsr & kLsrDr)) {
        return kIirRdi;
    }
    if ((m_s.ier & kIerThri) && m_s.thr_interrupt_pending) {
        return kIirThri;
    }
    if ((m_s.ier & kIerMsi) && (m_s.msr & kMsrDeltas)) {
        return kIirMsi;
    }
    return kIirNoInt;
}

void Serial8250::update_irq() {
    const bool level = interrupt_id() != kIirNoInt;
    if (level != m_irq_level) {
        m_irq_level = level;
        m_irq.set_level(level);
    }
}

std::size_t Serial8250::queue_input(std::span<const std::uint8_t> bytes) {
    std::lock_guard lock(m_mutex);
    if (m_s.mcr & kMcrLoop) {
        return bytes.size();  // in loopback the receiver is disconnected from the line
    }
    std::size_t n = 0;
    while (n < bytes.size() && m_rx.size() < kRxCapacity) {
        m_rx.push_back(bytes[n++]);
    }
    if (n > 0) {
        m_s.lsr |= kLsrDr;
    }
    update_irq();
    return n;
}

Serial8250State Serial8250::save_state() const {
    std::lock_guard lock(m_mutex);
    Serial8250State s = m_s;
    s.rx_fifo.assign(m_rx.begin(), m_rx.end());
    return s;
}

void Serial8250::restore_state(const Serial8250State& state) {
    std::lock_guard lock(m_mutex);
    m_s = state;
    m_rx.assign(state.rx_fifo.begin(), state.rx_fifo.end());
    if (m_rx.size() > kRxCapacity) {
        m_rx.resize(kRxCapacity);
    }
    update_irq();
}

acpi::Aml serial8250_aml(std::size_t number, std::uint64_t base, std::uint32_t irq) {
    using acpi::Aml;
    if (number == 0 || number > 99) {
        return Aml::failed(Error(fmt::format("serial port number {} is not 1-99", number)));
    }
    if (irq >= 16) {
        return Aml::failed(
            Error(fmt::format("serial port {:#x} irq {} is not an ISA IRQ (0-15)", base, irq)));
    }
    if (base > 0xFFFF - (Serial8250::kPorts - 1)) {
        return Aml::failed(Error(fmt::format("serial port {:#x} runs past port 0xffff", base)));
    }
    const auto port = static_cast<std::uint16_t>(base);
    const auto irq_mask = static_cast<std::uint16_t>(1U << irq);
    return Aml::device(
        number < 10 ? fmt::format("COM{}", number) : fmt::format("CO{}", number),
        {Aml::name("_HID", Aml::eisa_id("PNP0501")), Aml::name("_UID", Aml::integer(number)),
         Aml::name("_CRS", Aml::resource_template(
                               {acpi::io_port_descriptor(true, port, port, 1, Serial8250::kPorts),
                                acpi::irq_no_flags_descriptor(irq_mask)}))});
}

std::vector<acpi::Aml> Serial8250::acpi_devices(const Placement& placement) const {
    if (placement.ports.empty() || placement.gsis.empty()) {
        return {acpi::Aml::failed(Error("a serial port needs a port range and an IRQ"))};
    }
    const std::uint64_t base = placement.ports.front().base;
    constexpr std::uint64_t kStandard[] = {0x3f8, 0x2f8, 0x3e8, 0x2e8};
    for (std::size_t i = 0; i < std::size(kStandard); ++i) {
        if (kStandard[i] == base) {
            return {serial8250_aml(i + 1, base, placement.gsis.front())};
        }
    }
    return {acpi::Aml::failed(
        Error(fmt::format("serial port {:#x} is not at a standard COM base", base)))};
}

}  // namespace vireo
