// QEMU's isa-debug-exit, as test kernels use it (`-device isa-debug-exit,iobase=0xf4,iosize=4`):
// a write of V to the port ends the VMM with exit status (V << 1) | 1, so a test runner tells a
// kernel's own verdict from a clean power-off (status 0) and from a VMM failure. The written
// value is zero-extended from the access size (1, 2 or 4 bytes); reads return all ones, as an
// unclaimed port does. vireo adds it with `--debug-exit`, and to every multiboot kernel's machine
// (those are test kernels; a Linux guest never sees the port).
#pragma once

#include <cstdint>
#include <functional>

#include "bus/bus_device.h"
#include "devices/component.h"

namespace vireo {

class DebugExit final : public BusDevice, public Component {
public:
    static constexpr std::uint16_t kPort = 0xf4;
    static constexpr std::uint64_t kPorts = 4;

    // `exit` gets the process exit status, (V << 1) | 1 (an int: V << 1 may exceed 8 bits; the
    // OS keeps the low 8 of the status, as with QEMU).
    explicit DebugExit(std::function<void(std::uint64_t status)> exit) : m_exit(std::move(exit)) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

private:
    std::function<void(std::uint64_t)> m_exit;
};

}  // namespace vireo
