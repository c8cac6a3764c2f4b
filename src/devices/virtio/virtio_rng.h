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
    std::string metrics_extra() const override {
        return limiter_metrics(m_limiter.get(), "entropy_rate_limiter_throttled",
                               "rate_limiter_event_count");
    }
    // Firecracker's entropy rate_limiter: each request costs one op and the bytes it asks for
    // (at most kMaxBytesPerRequest); a refused request goes back on the ring until the
    // limiter's timer. Set before activation; null: none.
    void set_rate_limiter(std::unique_ptr<RateLimiter> limiter) { m_limiter = std::move(limiter); }
    RateLimiter* rate_limiter() { return m_limiter.get(); }
    // The limiter's buckets (empty without a limiter: what vireo saved before).
    std::vector<std::uint8_t> save_device_state() const override;
    Result<void> restore_device_state(std::span<const std::uint8_t> state) override;

protected:
    Result<void> on_activate(EventLoop& loop) override;
    void process_queue(std::size_t index) override;

private:
    std::array<std::uint16_t, 1> m_queue_sizes;
    DescriptorChain m_chain;
    std::unique_ptr<RateLimiter> m_limiter;
    bool m_limited = false;  // the limiter refused a request: wait for its timer
};

}  // namespace vireo::virtio
