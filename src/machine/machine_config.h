// What `vireo run` (and later the API) asks for: one configuration model, validated in one place.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/block/block_file.h"
#include "base/mac_address.h"
#include "base/rate_limiter_config.h"
#include "base/result.h"
#include "devices/virtio/balloon_config.h"

namespace vireo {

// A virtio-blk disk on a raw image.
struct DiskConfig {
    std::string path;
    bool read_only = false;
    // O_DIRECT: bypass the host page cache (QEMU's cache=none). Off by default, like
    // Firecracker's default "Unsafe"-free writeback mode: guest flushes still reach the disk.
    bool direct = false;
    std::string serial;  // GET_ID; at most 20 bytes
    // Offer the guest a cache flush (VIRTIO_BLK_F_FLUSH) and honour it with fdatasync; off:
    // Firecracker's cache_type "Unsafe", a write-through disk to the guest.
    bool flush = true;
    // Firecracker's io_engine: Sync -> the thread pool, Async -> io_uring (an error when the
    // kernel refuses it); Auto (not given) -> io_uring, else the thread pool.
    BlockEngineKind engine = BlockEngineKind::Auto;
    // Firecracker's rate_limiter (absent buckets: no limit); PATCH /drives changes it later.
    RateLimiterConfig rate_limiter;
};

// A virtio-net NIC on a tap (opened by name, created when absent).
struct NetConfig {
    std::string tap;
    std::optional<MacAddress> mac;      // random locally administered when absent
    RateLimiterConfig rx_rate_limiter;  // frames to the guest
    RateLimiterConfig tx_rate_limiter;  // frames from the guest
};

enum class ConsoleDevice : std::uint8_t {
    Serial,  // the 16550A at COM1 (ttyS0) takes host input
    Virtio,  // a virtio-console (hvc0) takes host input; COM1 stays for early output
};

struct MachineConfig {
    std::string kernel_path;
    std::string initrd_path;  // empty: no initrd
    std::string cmdline;
    std::uint32_t cpus = 1;
    std::uint64_t memory = 512ULL << 20;
    std::vector<DiskConfig> disks;
    std::vector<NetConfig> nets;
    ConsoleDevice console = ConsoleDevice::Serial;
    // With a value, the guest gets a boot-timer device and vireo logs the time from this point
    // (the process start) to the guest's write to it (--boot-timer).
    std::optional<std::chrono::steady_clock::time_point> boot_timer_start;
    // Log the pages the guest and the devices write, for Diff snapshots (KVM dirty log plus
    // the VMM's own marks for device writes).
    bool track_dirty_pages = false;
    // Two hardware threads per core in CPUID (vCPUs 2k and 2k+1 share a core); Firecracker's
    // "smt". The API allows it with 1 or an even number of vCPUs.
    bool smt = false;
    // Guest RAM on explicit 2 MiB hugetlb pages (Firecracker's huge_pages "2M"); otherwise
    // regular pages with a transparent-huge-page hint.
    bool hugetlb = false;
    // Guest RAM in a sealed memfd mapped shared (machine-config memory_backend "Memfd"), which a
    // local live migration hands to the next vireo instead of copying it. Not with hugetlb.
    bool memfd = false;
    // Open the disks without their locks, taken later by Machine::finish_restore(): a live
    // migration's destination builds the VM while the source still holds them.
    bool defer_disk_locks = false;
    // QEMU's isa-debug-exit at port 0xf4 (devices/platform/debug_exit.h): --debug-exit. A
    // multiboot kernel gets it either way.
    bool debug_exit = false;
    // The virtio-rng's rate limiter (PUT /entropy's rate_limiter).
    RateLimiterConfig entropy_rate_limiter;
    // A virtio-balloon (PUT /balloon, --balloon); none without a value.
    std::optional<BalloonConfig> balloon;
};

inline constexpr std::uint32_t kMaxVcpus = 254;  // 8-bit APIC IDs, one left for the IOAPIC
// PCI slots 1-31 hold every virtio device (rng and the console included).
inline constexpr std::size_t kMaxDisks = 16;
inline constexpr std::size_t kMaxNets = 8;

}  // namespace vireo
