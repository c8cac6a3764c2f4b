// The request and response bodies of vireo's Firecracker-compatible API, as plain C++ values.
// Field names, types and which fields are required follow Firecracker's API definition
// (firecracker.yaml, "definitions"); what vireo does not support yet is refused by the parsers
// (api_parser.h) with a message, never silently dropped. No JSON here: the VMM side sees typed
// values only (DESIGN.md §1), and api_json.h turns them into JSON.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/rate_limiter_config.h"
// BalloonConfig and BalloonStats: plain values with no code behind them, shared with the device.
#include "devices/virtio/balloon_config.h"

namespace vireo {

// Limits every parser enforces.
// vCPUs: x86 xAPIC IDs are 8 bits; 255 is the broadcast ID and one is left for the IOAPIC
// (machine_config.h's kMaxVcpus). Firecracker itself caps at 32.
inline constexpr std::uint32_t kApiMaxVcpus = 254;
// Guest memory: 1 TiB, in MiB. Anything larger is a typo or an attack, not a microVM.
inline constexpr std::uint64_t kApiMaxMemMib = std::uint64_t{1} << 20;
// Firecracker's default --http-api-max-payload-size.
inline constexpr std::size_t kApiMaxBodySize = 51200;
// Firecracker's IDs (drive_id, iface_id): 1..64 characters from [A-Za-z0-9_].
inline constexpr std::size_t kApiMaxIdLength = 64;
// Host paths: PATH_MAX including the terminating NUL.
inline constexpr std::size_t kApiMaxPathLength = 4095;
// Tap names: IFNAMSIZ (16) including the terminating NUL.
inline constexpr std::size_t kApiMaxHostDevNameLength = 15;

// PUT /boot-source.
struct BootSource {
    std::string kernel_image_path{};
    std::optional<std::string> boot_args{};
    std::optional<std::string> initrd_path{};

    friend bool operator==(const BootSource&, const BootSource&) = default;
};

// "huge_pages": how guest memory is backed.
enum class HugePages : std::uint8_t {
    None,         // "None": regular 4 KiB pages (default)
    Transparent,  // "Transparent": madvise(MADV_HUGEPAGE)
    Hugetlbfs2M,  // "2M": explicit hugetlbfs 2 MiB pages; mem_size_mib must be even
};

// "memory_backend" (a vireo extension): what holds guest memory.
enum class MemoryBacking : std::uint8_t {
    Anonymous,  // "Anonymous": private anonymous memory (default)
    Memfd,      // "Memfd": a sealed memfd, mapped shared: a local live migration hands it over
};

// PUT /machine-config and the "machine-config" section. Optional fields absent from a PUT take
// their defaults (the yaml: "set to their default values"). "cpu_template" is accepted only as
// "None" or absent, so it has no field.
struct MachineConfiguration {
    std::uint32_t vcpu_count = 1;      // 1..kApiMaxVcpus; 1 or even when smt
    std::uint64_t mem_size_mib = 128;  // 1..kApiMaxMemMib
    bool smt = false;
    bool track_dirty_pages = false;
    HugePages huge_pages = HugePages::None;
    MemoryBacking memory_backend = MemoryBacking::Anonymous;

    friend bool operator==(const MachineConfiguration&, const MachineConfiguration&) = default;
};

// PATCH /machine-config: only the fields given change (at least one must be).
struct MachineConfigurationPatch {
    std::optional<std::uint32_t> vcpu_count{};
    std::optional<std::uint64_t> mem_size_mib{};
    std::optional<bool> smt{};
    std::optional<bool> track_dirty_pages{};
    std::optional<HugePages> huge_pages{};
    std::optional<MemoryBacking> memory_backend{};

    friend bool operator==(const MachineConfigurationPatch&,
                           const MachineConfigurationPatch&) = default;
};

enum class CacheType : std::uint8_t {
    Unsafe,     // "Unsafe": no VIRTIO_BLK_F_FLUSH; the guest sees a write-through disk and its
                // writes reach the host file only as the host's page cache writes them back
    Writeback,  // "Writeback": VIRTIO_BLK_F_FLUSH, flushes reach the host file (fdatasync)
};

enum class IoEngine : std::uint8_t {
    Sync,   // "Sync": plain preadv/pwritev/fdatasync, on the disk's worker threads
    Async,  // "Async": io_uring; an error where the kernel refuses it
};

// PUT /drives/{drive_id} and the "drives" entries (virtio-blk; vhost-user "socket" is refused).
// drive_id equals the path's {drive_id}.
struct Drive {
    std::string drive_id{};
    std::string path_on_host{};
    bool is_root_device = false;
    bool is_read_only = false;
    std::optional<std::string> partuuid{};  // meaningful only with is_root_device
    // Firecracker's default is Unsafe; vireo's is Writeback: a guest's flush is not dropped
    // unless the drive asks for it (the user's data comes first). GET /vm/config shows the value.
    CacheType cache_type = CacheType::Writeback;
    // Absent: io_uring where the kernel allows it, else the worker threads (GET /vm/config
    // leaves it out). Firecracker's default is Sync.
    std::optional<IoEngine> io_engine{};
    // Firecracker's RateLimiter: bytes (bandwidth) and requests (ops) per refill_time.
    std::optional<RateLimiterConfig> rate_limiter{};

    friend bool operator==(const Drive&, const Drive&) = default;
};

// PATCH /drives/{drive_id}: after boot, point the drive at a (resized or new) file and/or change
// its rate limiter (RateLimiterConfig's update semantics). At least one of the two is present.
struct PartialDrive {
    std::string drive_id{};
    std::optional<std::string> path_on_host{};
    std::optional<RateLimiterConfig> rate_limiter{};

    friend bool operator==(const PartialDrive&, const PartialDrive&) = default;
};

// Six octets, written aa:bb:cc:dd:ee:ff. Parsers accept unicast addresses only.
using GuestMac = std::array<std::uint8_t, 6>;

// PUT /network-interfaces/{iface_id} and the "network-interfaces" entries (virtio-net on a tap).
struct NetworkInterface {
    std::string iface_id{};
    std::string host_dev_name{};                         // tap name, 1..15 characters
    std::optional<GuestMac> guest_mac{};                 // absent: the VMM picks one
    std::optional<std::uint16_t> mtu{};                  // 68..65535: advertise VIRTIO_NET_F_MTU
    std::optional<RateLimiterConfig> rx_rate_limiter{};  // frames to the guest
    std::optional<RateLimiterConfig> tx_rate_limiter{};  // frames from the guest

    friend bool operator==(const NetworkInterface&, const NetworkInterface&) = default;
};

// PATCH /network-interfaces/{iface_id}: after boot, change the interface's rate limiters
// (RateLimiterConfig's update semantics); an absent limiter is left as it is.
struct PartialNetworkInterface {
    std::string iface_id{};
    std::optional<RateLimiterConfig> rx_rate_limiter{};
    std::optional<RateLimiterConfig> tx_rate_limiter{};

    friend bool operator==(const PartialNetworkInterface&,
                           const PartialNetworkInterface&) = default;
};

enum class InstanceActionType : std::uint8_t {
    InstanceStart,
    SendCtrlAltDel,
    FlushMetrics,
};

// PUT /actions.
struct InstanceActionInfo {
    InstanceActionType action_type = InstanceActionType::InstanceStart;

    friend bool operator==(const InstanceActionInfo&, const InstanceActionInfo&) = default;
};

enum class VmStateRequest : std::uint8_t {
    Paused,
    Resumed,
};

// PATCH /vm.
struct VmState {
    VmStateRequest state = VmStateRequest::Paused;

    friend bool operator==(const VmState&, const VmState&) = default;
};

// Parsed case-insensitively, like Firecracker.
enum class LogLevel : std::uint8_t { Error, Warning, Info, Debug, Trace, Off };

// PUT /logger and the "logger" section. Every field is optional in the yaml; absent ones keep
// the VMM's current setting (defaults: stderr, Info, no level, no origin, every module).
struct Logger {
    std::optional<std::string> log_path{};
    std::optional<LogLevel> level{};
    std::optional<bool> show_level{};
    std::optional<bool> show_log_origin{};
    std::optional<std::string> module{};

    friend bool operator==(const Logger&, const Logger&) = default;
};

// PUT /metrics and the "metrics" section.
struct Metrics {
    std::string metrics_path{};
    std::optional<bool> emit_id{};  // emit the instance id as "id" on each metrics line
    std::map<std::string, std::string> properties{};  // emitted under "properties" on each line

    friend bool operator==(const Metrics&, const Metrics&) = default;
};

// PUT /entropy and the "entropy" section: the virtio-rng device and its rate limiter (bytes of
// entropy and requests).
struct EntropyDevice {
    std::optional<RateLimiterConfig> rate_limiter{};

    friend bool operator==(const EntropyDevice&, const EntropyDevice&) = default;
};

// PUT /balloon, GET /balloon and the "balloon" section are BalloonConfig (balloon_config.h):
// amount_mib 0..kMaxBalloonMib, deflate_on_oom, stats_polling_interval_s (0: no statistics),
// free_page_reporting. Firecracker's free_page_hinting is accepted only as false or absent.

// PATCH /balloon: a new target, after boot.
struct BalloonUpdate {
    std::uint32_t amount_mib = 0;  // 0..kMaxBalloonMib

    friend bool operator==(const BalloonUpdate&, const BalloonUpdate&) = default;
};

// PATCH /balloon/statistics: a new polling interval. Statistics cannot be switched on or off
// once the VM runs (0 <-> non-zero); before boot any value is taken.
struct BalloonStatsUpdate {
    std::uint32_t stats_polling_interval_s = 0;

    friend bool operator==(const BalloonStatsUpdate&, const BalloonStatsUpdate&) = default;
};

// Firecracker's FullVmConfiguration: the --config-file format and GET /vm/config's answer.
struct VmConfig {
    std::optional<BootSource> boot_source{};  // required in a config file
    std::vector<Drive> drives{};
    MachineConfiguration machine_config;  // Firecracker's defaults when the section is absent
    std::vector<NetworkInterface> network_interfaces{};
    std::optional<Logger> logger{};
    std::optional<Metrics> metrics{};
    std::optional<EntropyDevice> entropy{};
    // After boot, amount_mib follows PATCH /balloon (a snapshot's configuration is this).
    std::optional<BalloonConfig> balloon{};

    friend bool operator==(const VmConfig&, const VmConfig&) = default;
};

enum class SnapshotType : std::uint8_t { Full, Diff };

// PUT /snapshot/create (the VM must be paused).
struct SnapshotCreateParams {
    std::string snapshot_path{};
    std::string mem_file_path{};
    SnapshotType snapshot_type = SnapshotType::Full;

    friend bool operator==(const SnapshotCreateParams&, const SnapshotCreateParams&) = default;
};

// Point a restored NIC at another tap.
struct NetworkOverride {
    std::string iface_id{};
    std::string host_dev_name{};

    friend bool operator==(const NetworkOverride&, const NetworkOverride&) = default;
};

// vireo extension: point a restored drive at another image (one snapshot, several clones).
struct DriveOverride {
    std::string drive_id{};
    std::string path_on_host{};

    friend bool operator==(const DriveOverride&, const DriveOverride&) = default;
};

enum class MemoryBackendType : std::uint8_t { File, Uffd };

struct MemoryBackend {
    MemoryBackendType backend_type = MemoryBackendType::File;
    std::string backend_path{};

    friend bool operator==(const MemoryBackend&, const MemoryBackend&) = default;
};

// PUT /snapshot/load (before boot). Exactly one of mem_file_path (deprecated in Firecracker) and
// mem_backend is given; the parser folds both into `mem_file_path`.
struct SnapshotLoadParams {
    std::string snapshot_path{};
    std::string mem_file_path{};
    bool track_dirty_pages = false;  // or the deprecated enable_diff_snapshots
    bool resume_vm = false;
    std::vector<NetworkOverride> network_overrides{};
    std::vector<DriveOverride> drive_overrides{};  // vireo extension
    bool eager_memory = false;  // vireo extension: read the memory file up front, not mapped
    // vireo extension: a drive path taken from the state file may name a block device. Without
    // it such paths must be regular files (a state file must not open /dev/sda behind the
    // caller's back); paths given in drive_overrides are the caller's own and need no opt-in.
    bool allow_block_devices = false;

    friend bool operator==(const SnapshotLoadParams&, const SnapshotLoadParams&) = default;
};

// vireo extension (issue 14), live migration. PUT /migration/send on the source, a Running or
// Paused VM: the transfer runs on its own thread and the API stays responsive.
enum class TimeoutStrategy : std::uint8_t { Cancel, Ignore };

struct MigrationSendParams {
    std::string destination_url{};  // "tcp:ADDR:PORT" or "unix:PATH"
    std::uint64_t downtime_ms = 300;
    std::uint64_t timeout_s = 3600;
    TimeoutStrategy timeout_strategy = TimeoutStrategy::Cancel;
    std::uint64_t max_bandwidth_mib = 0;  // MiB/s; 0: no limit
    bool auto_converge = true;
    // Hand guest RAM (a memfd) over a Unix socket instead of copying it: a live upgrade of
    // vireo on one host. Needs "unix:" and machine-config memory_backend "Memfd".
    bool local = false;

    friend bool operator==(const MigrationSendParams&, const MigrationSendParams&) = default;
};

// PUT /migration/receive on a fresh vireo (nothing configured): listens, answers once listening,
// and becomes the running VM when the migration completes.
struct MigrationReceiveParams {
    std::string receiver_url{};
    std::vector<NetworkOverride> network_overrides{};
    std::vector<DriveOverride> drive_overrides{};
    // Accept only a local migration (RAM handed over, never copied); needs "unix:".
    bool local = false;

    friend bool operator==(const MigrationReceiveParams&, const MigrationReceiveParams&) = default;
};

// PUT /migration/cancel (no body) and GET /migration.
struct MigrationCancel {
    friend bool operator==(const MigrationCancel&, const MigrationCancel&) = default;
};
struct GetMigration {
    friend bool operator==(const GetMigration&, const GetMigration&) = default;
};

// Response bodies.

// GET /migration: the last (or current) migration of this process, on either side.
struct MigrationInfo {
    std::string state = "none";  // none, active, completed, failed, cancelled
    std::string role{};          // send, receive ("" with none)
    std::string url{};
    std::uint64_t iteration = 0;
    std::uint64_t bytes = 0;
    std::uint64_t pages = 0;
    std::uint64_t remaining_pages = 0;
    double dirty_rate_pages_s = 0;
    double bandwidth_mib_s = 0;
    double expected_downtime_ms = 0;
    double downtime_ms = 0;
    double total_ms = 0;
    std::uint64_t throttle_percent = 0;
    std::optional<std::string> error{};

    friend bool operator==(const MigrationInfo&, const MigrationInfo&) = default;
};

enum class InstanceState : std::uint8_t {
    NotStarted,  // "Not started"
    Running,     // "Running"
    Paused,      // "Paused"
};

// GET /.
struct InstanceInfo {
    std::string app_name = "vireo";
    std::string id{};
    InstanceState state = InstanceState::NotStarted;
    std::string vmm_version{};

    friend bool operator==(const InstanceInfo&, const InstanceInfo&) = default;
};

// GET /version. The field keeps Firecracker's name so its clients read it.
struct FirecrackerVersion {
    std::string firecracker_version{};

    friend bool operator==(const FirecrackerVersion&, const FirecrackerVersion&) = default;
};

}  // namespace vireo
