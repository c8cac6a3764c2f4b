// virtio-rng (virtio 1.2 §5.4): one request queue; the device fills each device-writable buffer
// with random bytes from the host's getrandom(2). No feature bits, no configuration space.
#pragma once

#include <array>

#include "devices/virtio/virtio_device.h"

namespace vireo::virtio {

class VirtioRng final : public VirtioDevice {
public:
    // At most this many bytes per request: a guest asking for a huge buffer gets a short one
    // (the driver accepts any length, §5.4.6), so one request cannot hog the thread or the pool.
    static constexpr std::uint32_t kMaxBytesPerRequest = 64 * 1024;

    VirtioRng();
    ~VirtioRng() override;

    std::uint16_t device_type() const override;
    std::uint64_t device_features() const override;
    std::span<const std::uint16_t> queue_max_sizes() const override;
    void read_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    std::uint32_t config_size() const override { return 0; }
    std::string name() const override { return "virtio-rng"; }

protected:
    void process_queue(std::size_t index) override;

private:
    std::array<std::uint16_t, 1> m_queue_sizes;
    DescriptorChain m_chain;
};

}  // namespace vireo::virtio
