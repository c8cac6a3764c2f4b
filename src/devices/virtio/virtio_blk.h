// virtio-blk (virtio 1.2 §5.2) on a raw image through BlockFile (io_uring or a thread pool).
// One request queue. Requests run asynchronously: the device thread parses a chain, hands the
// I/O to the backend with iovecs straight into guest memory, and answers when the completion
// eventfd fires. Request slots are preallocated: no allocation per request in the steady state.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "backends/block/block_file.h"
#include "devices/virtio/virtio_blk_request.h"
#include "devices/virtio/virtio_device.h"

namespace vireo::virtio {

class VirtioBlk final : public VirtioDevice {
public:
    static constexpr std::uint16_t kMaxQueues = 16;

    // `serial` is what GET_ID returns (at most 20 bytes; longer is an error), `label` names the
    // disk in logs. `queues` request queues (VIRTIO_BLK_F_MQ when more than one; one per vCPU
    // lets the guest complete I/O on the CPU that issued it, without an IPI). `flush`: offer
    // VIRTIO_BLK_F_FLUSH, so the guest's cache flushes reach the host file (Firecracker's
    // cache_type "Writeback"); without it the guest sees a write-through disk and never asks
    // ("Unsafe": a host crash can lose what the guest thought written).
    static Result<std::unique_ptr<VirtioBlk>> create(std::unique_ptr<BlockFile> file,
                                                     std::string serial, std::string label,
                                                     std::uint16_t queues = 1, bool flush = true);
    ~VirtioBlk() override;

    std::uint16_t device_type() const override;
    std::uint64_t device_features() const override;
    std::span<const std::uint16_t> queue_max_sizes() const override;
    void read_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    std::uint32_t config_size() const override;
    std::string name() const override { return "virtio-blk " + m_label; }
    std::string metrics_extra() const override {
        return limiter_metrics(m_limiter.get(), "rate_limiter_throttled_events",
                               "rate_limiter_event_count");
    }

    bool offers_flush() const { return m_flush; }
    std::uint64_t capacity_sectors() const { return m_capacity.load() / kSectorSize; }
    // The capacity the driver knows; a restore onto an image of another size is refused.
    std::vector<std::uint8_t> save_device_state() const override;
    Result<void> restore_device_state(std::span<const std::uint8_t> state) override;
    bool read_only() const { return m_read_only; }
    // Points the disk at another image (PATCH /drives after boot): in-flight requests finish on
    // the old one first. The caller then raises the configuration interrupt so the driver reads
    // the new capacity. From the VMM's control thread. The new file must have the same
    // read-only mode.
    Result<void> replace_file(std::unique_ptr<BlockFile> file);
    // The image's lock (BlockFile::release_lock / retake_lock), while the device is paused.
    BlockFile& file() { return *m_file; }
    // Firecracker's drive rate_limiter: each request costs one op, and reads and writes their
    // data bytes, taken before the request starts. A request the limiter refuses goes back on
    // the ring and the queues wait for the limiter's timer. Set before activation; null: none.
    void set_rate_limiter(std::unique_ptr<RateLimiter> limiter) { m_limiter = std::move(limiter); }
    RateLimiter* rate_limiter() { return m_limiter.get(); }

protected:
    Result<void> on_activate(EventLoop& loop) override;
    void process_queue(std::size_t index) override;
    void on_reset() override;
    void on_pause() override;

private:
    struct Slot {
        std::uint16_t queue = 0;
        std::uint16_t head = 0;
        BlkRequest request;
    };

    VirtioBlk(std::unique_ptr<BlockFile> file, std::string serial, std::string label,
              std::uint16_t queues, bool flush);
    // Pops and starts requests of `index` until it is empty or no slot is free.
    void serve(std::size_t index);
    // Starts the I/O for the request in slot `index`; returns the status to answer with now when
    // it cannot be started (then the slot is free again).
    std::uint8_t start(std::uint32_t index);
    void complete(std::uint32_t index, std::uint8_t status, std::uint32_t written);
    void on_completions();

    std::unique_ptr<BlockFile> m_file;
    std::atomic<std::uint64_t> m_capacity;  // bytes; read by vCPU threads (configuration space)
    bool m_read_only;
    bool m_flush;
    std::string m_serial;
    std::string m_label;
    std::vector<std::uint16_t> m_queue_sizes;
    std::uint32_t m_used_mask = 0;  // queues with used entries not yet signalled
    std::vector<Slot> m_slots;
    std::vector<std::uint32_t> m_free;
    DescriptorChain m_chain;
    std::uint32_t m_throttled = 0;  // queues that stopped popping for want of a free slot
    std::uint32_t m_limited = 0;    // queues that stopped because the rate limiter said no
    std::unique_ptr<RateLimiter> m_limiter;
};

}  // namespace vireo::virtio
