// virtio-balloon (virtio 1.2 §5.5): the host asks the guest to give back memory by a target in
// the configuration space (num_pages); the driver inflates the balloon by handing page frame
// numbers (4 KiB pages) to the device on the inflate queue, and takes pages back on the deflate
// queue. vireo releases inflated pages at once (GuestMemory::discard: MADV_DONTNEED, or a hole
// punched in a memfd); a deflate is only acknowledged, the guest's next touch of the page brings
// back a zero page. With VIRTIO_BALLOON_F_REPORTING the driver also reports ranges of free
// guest memory on their own queue, released the same way. With VIRTIO_BALLOON_F_STATS_VQ the
// device holds the driver's statistics buffer and hands it back every polling interval for
// fresh figures (§5.5.6.3).
//
// Queues, in order: inflateq, deflateq, then statsq and reporting_vq when offered. Drivers number
// the queues of the features they accepted only (Linux's virtio_pci skips the absent ones), so
// which index is the statistics or the reporting queue is decided at activation from the
// features the driver acknowledged.
//
// Hostile guest: every page frame number and reported range is checked against guest RAM; an
// invalid one is counted and skipped, never released. A PFN list is read once from guest memory
// into a local copy, then validated.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/unique_fd.h"
#include "devices/virtio/balloon_config.h"
#include "devices/virtio/virtio_device.h"

namespace vireo::virtio {

// Feature bits (virtio 1.2 §5.5.3).
inline constexpr unsigned kBalloonFeatureMustTellHost = 0;
inline constexpr unsigned kBalloonFeatureStatsVq = 1;
inline constexpr unsigned kBalloonFeatureDeflateOnOom = 2;
inline constexpr unsigned kBalloonFeatureReporting = 5;

// One run of consecutive guest pages to release: [gpa, gpa + pages * 4 KiB).
struct PageRun {
    std::uint64_t gpa = 0;
    std::uint64_t pages = 0;
    bool operator==(const PageRun&) const = default;
};

// The PFNs of an inflate or deflate buffer (little-endian u32, 4 KiB pages) as runs of
// consecutive pages inside guest RAM, in list order; consecutive PFNs join one run when they
// lie in the same region. PFNs outside guest RAM are counted in `invalid` and dropped. Pure: the
// unit tests feed it hostile lists.
struct PfnRuns {
    std::vector<PageRun> runs;
    std::uint64_t valid = 0;
    std::uint64_t invalid = 0;
};
PfnRuns pfn_runs(std::span<const std::uint32_t> pfns, const GuestMemory& mem);

class VirtioBalloon final : public VirtioDevice {
public:
    explicit VirtioBalloon(const BalloonConfig& config);
    ~VirtioBalloon() override;

    std::uint16_t device_type() const override;
    std::uint64_t device_features() const override;
    std::span<const std::uint16_t> queue_max_sizes() const override;
    void read_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write_config(std::uint64_t offset, std::span<const std::uint8_t> data) override;
    std::uint32_t config_size() const override { return 8; }
    std::string name() const override { return "virtio-balloon"; }
    std::string metrics_extra() const override;

    // The settings with the current target (GET /balloon). Any thread.
    BalloonConfig config() const;
    // A new target (PATCH /balloon): the driver hears of it by a configuration-change interrupt
    // and inflates or deflates toward it. Any thread; the caller checks the target against the
    // guest's RAM.
    void set_target_mib(std::uint32_t mib);
    // PATCH /balloon/statistics: a new polling interval, the next request for statistics due at
    // once. Statistics cannot be switched on or off once the device exists: an error when
    // `seconds` is 0 and statistics are on, or non-zero and they are off.
    Result<void> set_stats_interval(std::uint32_t seconds);
    // GET /balloon/statistics: an error when statistics are off.
    Result<BalloonStats> stats() const;
    // Pages the driver says the balloon holds (its `actual` field).
    std::uint32_t actual_pages() const { return m_actual.load(std::memory_order_relaxed); }

    std::vector<std::uint8_t> save_device_state() const override;
    Result<void> restore_device_state(std::span<const std::uint8_t> state) override;

protected:
    Result<void> on_activate(EventLoop& loop) override;
    void process_queue(std::size_t index) override;
    void on_reset() override;

private:
    static constexpr std::size_t kInflate = 0;
    static constexpr std::size_t kDeflate = 1;

    void serve_pfn_queue(std::size_t index, bool inflate);
    void release_pending();
    void serve_reporting(std::size_t index);
    void serve_stats(std::size_t index);
    void on_stats_timer();
    void arm_stats_timer(std::uint32_t seconds);
    // Releases `run` back to the host; counts what it released.
    void release(const PageRun& run);

    BalloonConfig m_config;  // amount_mib is m_target_mib's initial value
    std::array<std::uint16_t, 4> m_queue_sizes{};
    std::size_t m_queue_total = 2;
    std::atomic<std::uint32_t> m_target_mib;
    std::atomic<std::uint32_t> m_actual{0};
    std::atomic<std::uint32_t> m_stats_interval_s;

    // Decided at activation from the acknowledged features: which queue is which.
    std::optional<std::size_t> m_stats_queue;
    std::optional<std::size_t> m_reporting_queue;

    // The statistics: the buffer the driver left on the stats queue (its head, held until the
    // next poll) and the latest figures, by tag.
    mutable std::mutex m_stats_mutex;
    std::array<std::optional<std::uint64_t>, 16> m_stats{};
    std::optional<std::uint16_t> m_stats_head;
    // timerfd: the next request for statistics. Made by the constructor, so the VMM's thread
    // (set_stats_interval) and the transport's (activation) never race to create it.
    UniqueFd m_stats_timer;

    DescriptorChain m_chain;
    std::vector<std::uint32_t> m_pfns;  // the current buffer's PFNs, copied out of guest memory
    // Inflated runs acknowledged but not yet released; at most kMaxPendingRuns.
    static constexpr std::size_t kMaxPendingRuns = 64 * 1024;
    std::vector<PageRun> m_pending;

    std::atomic<std::uint64_t> m_inflated_pages{0};
    std::atomic<std::uint64_t> m_deflated_pages{0};
    std::atomic<std::uint64_t> m_reports{0};
    std::atomic<std::uint64_t> m_reported_bytes{0};
    std::atomic<std::uint64_t> m_released_bytes{0};
    std::atomic<std::uint64_t> m_released_runs{0};  // discard() calls: one madvise() each
    std::atomic<std::uint64_t> m_invalid_pfns{0};
    std::atomic<std::uint64_t> m_stats_updates{0};
};

}  // namespace vireo::virtio
