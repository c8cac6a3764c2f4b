// The hardware-reduced ACPI power-management registers the FADT points at (ACPI 6.4 §4.8.3.7,
// §4.8.3.6): the sleep control register (write SLP_TYPx << 2 | SLP_EN to enter a sleep state; S5
// is power-off), the sleep status register, and the reset register. All 8-bit system I/O ports:
// offset 0 sleep control, 1 sleep status, 2 reset.
#pragma once

#include <cstdint>
#include <functional>

#include "bus/bus_device.h"
#include "devices/component.h"

namespace vireo {

class AcpiPm final : public BusDevice, public Component {
public:
    static constexpr std::uint64_t kPorts = 3;
    static constexpr std::uint64_t kSleepControl = 0;
    static constexpr std::uint64_t kSleepStatus = 1;
    static constexpr std::uint64_t kReset = 2;

    // `s5_type` is the SLP_TYP value of the DSDT's \_S5_ package; `reset_value` the FADT's
    // RESET_VALUE.
    AcpiPm(std::uint8_t s5_type, std::uint8_t reset_value, std::function<void()> power_off,
           std::function<void()> reset)
        : m_s5_type(s5_type),
          m_reset_value(reset_value),
          m_power_off(std::move(power_off)),
          m_reset(std::move(reset)) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

private:
    std::uint8_t m_s5_type;
    std::uint8_t m_reset_value;
    std::function<void()> m_power_off;
    std::function<void()> m_reset;
};

}  // namespace vireo
