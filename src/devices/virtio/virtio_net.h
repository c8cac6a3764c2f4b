// virtio-net (virtio 1.2 §5.1) on a tap: one receive queue (0) and one transmit queue (1), no
// control queue. Every frame on the tap carries the 12-byte virtio_net_hdr, which is exactly the
// header the driver uses (VERSION_1 always has num_buffers), so headers pass through unchanged:
// checksum and segmentation offloads are negotiated with the tap (TUNSETOFFLOAD) instead of
// emulated. Transmit is zero-copy (writev from guest memory); receive reads a frame into a host
// buffer and copies it into one receive chain, or several with VIRTIO_NET_F_MRG_RXBUF.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "backends/net/tap.h"
#include "base/mac_address.h"
#include "devices/virtio/virtio_device.h"

namespace vireo::virtio {

class VirtioNet final : public VirtioDevice {
public:
    static Result<std::unique_ptr<VirtioNet>> create(Tap tap, MacAddress mac);
    ~VirtioNet() override;

    std::uint16_t device_type() const override;
    std::uint64_t device_features() const override;
    std::span<const std::uint16_t> queue_max_sizes() const override;
    void read_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    std::uint32_t config_size() const override { return 12; }
    std::string name() const override { return "virtio-net " + m_tap.name(); }
    std::string metrics_extra() const override {
        return limiter_metrics(m_rx_limiter.get(), "rx_rate_limiter_throttled",
                               "rx_event_rate_limiter_count") +
               limiter_metrics(m_tx_limiter.get(), "tx_rate_limiter_throttled",
                               "tx_rate_limiter_event_count");
    }

    const MacAddress& mac() const { return m_mac; }
    // Tells the network the guest is behind this tap now (after a live migration): one RARP
    // frame from the guest's MAC to the broadcast address, as QEMU's self-announcement sends, so
    // switches learn the new port. Written from the caller's thread: the kernel takes each write
    // to a tap whole, so it cannot interleave with the device thread's frames.
    Result<void> announce();
    // Firecracker's rx_rate_limiter and tx_rate_limiter: each frame costs one op and its bytes
    // (virtio-net header included), taken before the tap write (tx) or before the copy into the
    // guest (rx). A refused tx frame goes back on the ring; a refused rx frame stays pending and
    // the tap is not read; both wait for their limiter's timer. Set before activation; null:
    // none.
    void set_rate_limiters(std::unique_ptr<RateLimiter> rx, std::unique_ptr<RateLimiter> tx) {
        m_rx_limiter = std::move(rx);
        m_tx_limiter = std::move(tx);
    }
    RateLimiter* rx_rate_limiter() { return m_rx_limiter.get(); }
    RateLimiter* tx_rate_limiter() { return m_tx_limiter.get(); }
    // The MAC the driver read at probe: a restored NIC keeps it even on another tap; and the
    // limiters' buckets.
    std::vector<std::uint8_t> save_device_state() const override;
    Result<void> restore_device_state(std::span<const std::uint8_t> state) override;

protected:
    Result<void> on_activate(EventLoop& loop) override;
    void process_queue(std::size_t index) override;
    void on_reset() override;

private:
    VirtioNet(Tap tap, MacAddress mac, unsigned tap_offloads);
    void transmit();
    void receive();
    // Copies the pending frame into receive chains; false when the queue ran out of buffers.
    bool deliver_frame();
    void watch_tap(bool readable, bool writable);
    // The tap cannot be read any more (deleted under vireo: -EBADFD, EPOLLERR): stop reading it
    // for good and report the link down. Device thread.
    void tap_gone(std::int64_t error);

    Tap m_tap;
    MacAddress m_mac;
    unsigned m_tap_offloads;  // what the tap accepted at creation: bounds the GUEST_* features
    std::array<std::uint16_t, 2> m_queue_sizes;
    DescriptorChain m_chain;
    std::vector<iovec> m_iov;
    std::vector<std::uint8_t> m_frame;  // one received frame, header included
    std::size_t m_frame_len = 0;        // 0: no frame pending
    bool m_watch_in = false;
    bool m_watch_out = false;
    bool m_tx_blocked = false;
    bool m_tx_limited = false;     // the tx limiter refused a frame: wait for its timer
    bool m_rx_limited = false;     // the rx limiter refused the pending frame
    bool m_frame_charged = false;  // the pending frame's tokens are taken
    std::unique_ptr<RateLimiter> m_rx_limiter;
    std::unique_ptr<RateLimiter> m_tx_limiter;
    std::atomic<bool> m_link_up{true};  // false once the tap is gone; read by vCPUs (config)
};

}  // namespace vireo::virtio
