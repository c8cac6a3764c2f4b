// The i8042 keyboard controller, as much as a VM needs: the CPU reset line (command 0xFE, or
// clearing bit 0 of the output port with 0xD1) and answers to the controller's self-tests. No
// keyboard or mouse sits behind it; the FADT tells Linux there is no 8042 (IAPC_BOOT_ARCH), so it
// is touched only by the kernel's reboot fallback and by firmware-minded guests.
// Ports: data 0x60 (offset 0), status/command 0x64 (offset 4).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "bus/bus_device.h"

namespace vireo {

struct I8042State {
    std::uint8_t command_byte = 0x45;    // translate, system flag, keyboard interrupt enabled
    std::optional<std::uint8_t> output;  // byte waiting in the output buffer
    std::uint8_t pending_command = 0;    // command awaiting its data byte on port 0x60
};

class I8042 final : public BusDevice {
public:
    static constexpr std::uint64_t kPorts = 5;  // 0x60..0x64
    explicit I8042(std::function<void()> reset) : m_reset(std::move(reset)) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    I8042State save_state() const;
    void restore_state(const I8042State& s);

private:
    void command(std::uint8_t cmd);
    void data(std::uint8_t value);

    mutable std::mutex m_mutex;
    std::function<void()> m_reset;
    I8042State m_s;
};

}  // namespace vireo
