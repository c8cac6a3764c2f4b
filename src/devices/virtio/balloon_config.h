// The memory balloon's settings and statistics as Firecracker's API names them (PUT /balloon,
// GET /balloon/statistics): shared by the API, the machine and the virtio-balloon device.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace vireo {

struct BalloonConfig {
    // The target: how much of the guest's RAM the driver is asked to give back, in MiB.
    std::uint32_t amount_mib = 0;
    // VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the driver takes pages back out of the balloon instead of
    // letting the guest's OOM killer run.
    bool deflate_on_oom = false;
    // 0: no statistics (no VIRTIO_BALLOON_F_STATS_VQ). Otherwise the device asks the driver for
    // fresh statistics every this many seconds.
    std::uint32_t stats_polling_interval_s = 0;
    // VIRTIO_BALLOON_F_REPORTING: the driver reports free page ranges, which the host takes back.
    bool free_page_reporting = false;

    bool operator==(const BalloonConfig&) const = default;
};

// The largest target the API accepts: amount_mib * 256 pages must fit the 32-bit num_pages of
// the device's configuration (virtio 1.2 §5.5.4).
inline constexpr std::uint32_t kMaxBalloonMib = 0xffffffffU / 256;

// GET /balloon/statistics: what the device aims for and holds, plus the driver's latest
// statistics (virtio 1.2 §5.5.6.3), each under Firecracker's name, in tag order; only the tags
// the driver sent.
struct BalloonStats {
    std::uint32_t target_pages = 0;
    std::uint32_t actual_pages = 0;
    std::uint32_t target_mib = 0;
    std::uint32_t actual_mib = 0;
    std::vector<std::pair<std::string_view, std::uint64_t>> guest;
};

// The name Firecracker gives statistic `tag` (VIRTIO_BALLOON_S_*), or nullopt for a tag it
// does not know (ignored).
inline std::optional<std::string_view> balloon_stat_name(std::uint16_t tag) {
    static constexpr std::string_view kNames[] = {
        "swap_in",          "swap_out",    "major_faults",
        "minor_faults",     "free_memory", "total_memory",
        "available_memory", "disk_caches", "hugetlb_allocations",
        "hugetlb_failures", "oom_kill",    "alloc_stall",
        "async_scan",       "direct_scan", "async_reclaim",
        "direct_reclaim"};
    if (tag >= std::size(kNames)) {
        return std::nullopt;
    }
    return kNames[tag];
}

}  // namespace vireo
