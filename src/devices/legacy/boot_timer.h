// Firecracker's boot-timer device: the guest's init writes the magic byte 123 to it once
// userspace is up, and the VMM logs the time since it was started. One byte of MMIO; reads 0.
#pragma once

#include <atomic>
#include <functional>

#include "bus/bus_device.h"
#include "devices/component.h"

namespace vireo {

class BootTimer final : public BusDevice, public Component {
public:
    static constexpr std::uint64_t kSize = 8;
    static constexpr std::uint8_t kMagic = 123;

    explicit BootTimer(std::function<void()> on_boot) : m_on_boot(std::move(on_boot)) {}

    void read(std::uint64_t, std::span<std::uint8_t> data) override {
        for (auto& b : data) {
            b = 0;
        }
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        // Only the first magic write counts; a guest writing it again changes nothing.
        if (offset == 0 && !data.empty() && data[0] == kMagic && !m_fired.exchange(true)) {
            m_on_boot();
        }
    }

private:
    std::function<void()> m_on_boot;
    std::atomic<bool> m_fired{false};
};

}  // namespace vireo
