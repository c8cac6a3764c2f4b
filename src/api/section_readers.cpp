#include "api/section_readers.h"

#include <limits>

#include "api/api_parser.h"

namespace vireo::api_detail {

namespace {

constexpr std::string_view kVcpuWhy = "8-bit APIC IDs, one left for the IOAPIC";
constexpr std::string_view kMemWhy = "at most 1 TiB";
// amount_mib * 256 pages must fit virtio_balloon_config.num_pages (balloon_config.h).
constexpr std::string_view kBalloonWhy = "MiB; 256 pages per MiB must fit the 32-bit num_pages";
constexpr std::string_view kIntervalWhy = "seconds";

template <typename T>
Result<T> finish(const ObjectReader& reader, T value) {
    if (auto done = reader.finish(); !done) {
        return done.error();
    }
    return value;
}

// "cpu_template": Firecracker's deprecated CPU templates. vireo shapes CPUID itself and has none,
// so only "None" (the default) is accepted.
void read_cpu_template(ObjectReader& reader) {
    std::optional<std::string> name;
    reader.optional("cpu_template", name, StringKind::Text);
    if (name && *name != "None") {
        reader.fail("`cpu_template` must be \"None\" or absent (vireo has no CPU templates), not " +
                    quote_text(*name));
    }
}

void read_guest_mac(ObjectReader& reader, std::optional<std::string>& text,
                    std::optional<GuestMac>& out) {
    reader.optional("guest_mac", text, StringKind::Text);
    if (text) {
        auto mac = parse_guest_mac(*text);
        if (!mac) {
            reader.fail(mac.error().message());
        } else {
            out = *mac;
        }
    }
}

}  // namespace

Result<BootSource> read_boot_source(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    BootSource b;
    r.required("kernel_image_path", b.kernel_image_path, StringKind::Path);
    r.optional("boot_args", b.boot_args, StringKind::Text);
    r.optional("initrd_path", b.initrd_path, StringKind::Path);
    return finish(r, std::move(b));
}

Result<MachineConfiguration> read_machine_configuration(const Json& json,
                                                        const std::string& context) {
    ObjectReader r(json, context);
    MachineConfiguration m;
    std::uint64_t vcpus = 0;
    r.required_uint("vcpu_count", vcpus, 1, kApiMaxVcpus, kVcpuWhy);
    r.required_uint("mem_size_mib", m.mem_size_mib, 1, kApiMaxMemMib, kMemWhy);
    r.defaulted("smt", m.smt);
    r.defaulted("track_dirty_pages", m.track_dirty_pages);
    std::optional<HugePages> huge_pages;
    r.optional_enum("huge_pages", huge_pages, kHugePagesNames);
    std::optional<MemoryBacking> backend;
    r.optional_enum("memory_backend", backend, kMemoryBackingNames);
    read_cpu_template(r);
    m.vcpu_count = static_cast<std::uint32_t>(vcpus);  // <= kApiMaxVcpus
    m.huge_pages = huge_pages.value_or(HugePages::None);
    m.memory_backend = backend.value_or(MemoryBacking::Anonymous);
    if (r.good()) {
        if (auto valid = validate_machine_configuration(m); !valid) {
            r.fail(valid.error().message());
        }
    }
    return finish(r, m);
}

Result<MachineConfigurationPatch> read_machine_configuration_patch(const Json& json,
                                                                   const std::string& context) {
    ObjectReader r(json, context);
    MachineConfigurationPatch p;
    std::optional<std::uint64_t> vcpus;
    r.optional_uint("vcpu_count", vcpus, 1, kApiMaxVcpus, kVcpuWhy);
    r.optional_uint("mem_size_mib", p.mem_size_mib, 1, kApiMaxMemMib, kMemWhy);
    r.optional("smt", p.smt);
    r.optional("track_dirty_pages", p.track_dirty_pages);
    r.optional_enum("huge_pages", p.huge_pages, kHugePagesNames);
    r.optional_enum("memory_backend", p.memory_backend, kMemoryBackingNames);
    read_cpu_template(r);
    if (vcpus) {
        p.vcpu_count = static_cast<std::uint32_t>(*vcpus);  // <= kApiMaxVcpus
    }
    if (r.good() && p == MachineConfigurationPatch{}) {
        r.fail(
            "empty PATCH request: give at least one of `vcpu_count`, `mem_size_mib`, `smt`, "
            "`track_dirty_pages`, `huge_pages`, `memory_backend`");
    }
    return finish(r, p);
}

Result<BucketConfig> read_token_bucket(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    BucketConfig b;
    r.required_uint("size", b.size, 0, ~std::uint64_t{0});
    std::optional<std::uint64_t> burst;
    r.optional_uint("one_time_burst", burst, 0, ~std::uint64_t{0});
    r.required_uint("refill_time", b.refill_time_ms, 0, kMaxRefillTimeMs,
                    "milliseconds; their nanoseconds must fit in 64 bits");
    b.one_time_burst = burst.value_or(0);
    return finish(r, b);
}

Result<RateLimiterConfig> read_rate_limiter(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    RateLimiterConfig c;
    r.optional_object("bandwidth", c.bandwidth, read_token_bucket);
    r.optional_object("ops", c.ops, read_token_bucket);
    return finish(r, c);
}

Result<Drive> read_drive(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    Drive d;
    r.required("drive_id", d.drive_id, StringKind::Id);
    r.required("path_on_host", d.path_on_host, StringKind::Path);
    r.required("is_root_device", d.is_root_device);
    r.required("is_read_only", d.is_read_only);
    r.optional("partuuid", d.partuuid, StringKind::Text);
    std::optional<CacheType> cache_type;
    r.optional_enum("cache_type", cache_type, kCacheTypeNames);
    r.optional_enum("io_engine", d.io_engine, kIoEngineNames);
    r.optional_object("rate_limiter", d.rate_limiter, read_rate_limiter);
    r.refuse("socket", "vhost-user block devices");
    d.cache_type = cache_type.value_or(CacheType::Writeback);
    return finish(r, std::move(d));
}

Result<PartialDrive> read_partial_drive(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    PartialDrive d;
    r.required("drive_id", d.drive_id, StringKind::Id);
    r.optional("path_on_host", d.path_on_host, StringKind::Path);
    r.optional_object("rate_limiter", d.rate_limiter, read_rate_limiter);
    if (r.good() && !d.path_on_host && !d.rate_limiter) {
        r.fail("nothing to update: give `path_on_host` or `rate_limiter`");
    }
    return finish(r, std::move(d));
}

Result<NetworkInterface> read_network_interface(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    NetworkInterface n;
    r.required("iface_id", n.iface_id, StringKind::Id);
    r.required("host_dev_name", n.host_dev_name, StringKind::DevName);
    std::optional<std::string> mac_text;
    read_guest_mac(r, mac_text, n.guest_mac);
    std::optional<std::uint64_t> mtu;
    // 68: the IPv4 minimum (RFC 791); 65535: the 16-bit virtio_net_config.mtu.
    r.optional_uint("mtu", mtu, 68, 65535);
    r.optional_object("rx_rate_limiter", n.rx_rate_limiter, read_rate_limiter);
    r.optional_object("tx_rate_limiter", n.tx_rate_limiter, read_rate_limiter);
    if (mtu) {
        n.mtu = static_cast<std::uint16_t>(*mtu);  // <= 65535
    }
    return finish(r, std::move(n));
}

Result<PartialNetworkInterface> read_partial_network_interface(const Json& json,
                                                               const std::string& context) {
    ObjectReader r(json, context);
    PartialNetworkInterface n;
    r.required("iface_id", n.iface_id, StringKind::Id);
    r.optional_object("rx_rate_limiter", n.rx_rate_limiter, read_rate_limiter);
    r.optional_object("tx_rate_limiter", n.tx_rate_limiter, read_rate_limiter);
    return finish(r, std::move(n));
}

Result<InstanceActionInfo> read_instance_action_info(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    InstanceActionInfo a;
    r.required_enum("action_type", a.action_type, kInstanceActionNames);
    return finish(r, a);
}

Result<VmState> read_vm_state(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    VmState v;
    r.required_enum("state", v.state, kVmStateNames);
    return finish(r, v);
}

Result<Logger> read_logger(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    Logger l;
    r.optional("log_path", l.log_path, StringKind::Path);
    r.optional_enum("level", l.level, kLogLevelNames, /*ignore_case=*/true);
    r.optional("show_level", l.show_level);
    r.optional("show_log_origin", l.show_log_origin);
    r.optional("module", l.module, StringKind::Text);
    return finish(r, std::move(l));
}

Result<Metrics> read_metrics(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    Metrics m;
    r.required("metrics_path", m.metrics_path, StringKind::Path);
    r.optional("emit_id", m.emit_id);
    r.string_map("properties", m.properties);
    return finish(r, std::move(m));
}

Result<EntropyDevice> read_entropy_device(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    EntropyDevice e;
    r.optional_object("rate_limiter", e.rate_limiter, read_rate_limiter);
    return finish(r, std::move(e));
}

Result<BalloonConfig> read_balloon(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    BalloonConfig b;
    std::uint64_t amount = 0;
    r.required_uint("amount_mib", amount, 0, kMaxBalloonMib, kBalloonWhy);
    r.required("deflate_on_oom", b.deflate_on_oom);
    std::optional<std::uint64_t> interval;
    r.optional_uint("stats_polling_interval_s", interval, 0,
                    std::numeric_limits<std::uint32_t>::max(), kIntervalWhy);
    r.defaulted("free_page_reporting", b.free_page_reporting);
    // Firecracker's free page hinting (VIRTIO_BALLOON_F_FREE_PAGE_HINT) is not offered; "false"
    // (what Firecracker's GET /vm/config writes) asks for nothing and is taken.
    std::optional<bool> hinting;
    r.optional("free_page_hinting", hinting);
    if (hinting.value_or(false)) {
        r.fail(
            "`free_page_hinting` is not supported by vireo (free_page_reporting gives free guest "
            "memory back instead)");
    }
    b.amount_mib = static_cast<std::uint32_t>(amount);  // <= kMaxBalloonMib
    b.stats_polling_interval_s = static_cast<std::uint32_t>(interval.value_or(0));  // <= UINT32_MAX
    return finish(r, b);
}

Result<BalloonUpdate> read_balloon_update(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    std::uint64_t amount = 0;
    r.required_uint("amount_mib", amount, 0, kMaxBalloonMib, kBalloonWhy);
    return finish(r, BalloonUpdate{static_cast<std::uint32_t>(amount)});  // <= kMaxBalloonMib
}

Result<BalloonStatsUpdate> read_balloon_stats_update(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    std::uint64_t interval = 0;
    r.required_uint("stats_polling_interval_s", interval, 0,
                    std::numeric_limits<std::uint32_t>::max(), kIntervalWhy);
    return finish(r, BalloonStatsUpdate{static_cast<std::uint32_t>(interval)});  // <= UINT32_MAX
}

Result<SnapshotCreateParams> read_snapshot_create_params(const Json& json,
                                                         const std::string& context) {
    ObjectReader r(json, context);
    SnapshotCreateParams p;
    r.required("snapshot_path", p.snapshot_path, StringKind::Path);
    r.required("mem_file_path", p.mem_file_path, StringKind::Path);
    std::optional<SnapshotType> type;
    r.optional_enum("snapshot_type", type, kSnapshotTypeNames);
    p.snapshot_type = type.value_or(SnapshotType::Full);
    return finish(r, std::move(p));
}

namespace {

Result<NetworkOverride> read_network_override(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    NetworkOverride o;
    r.required("iface_id", o.iface_id, StringKind::Id);
    r.required("host_dev_name", o.host_dev_name, StringKind::DevName);
    return finish(r, std::move(o));
}

Result<DriveOverride> read_drive_override(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    DriveOverride o;
    r.required("drive_id", o.drive_id, StringKind::Id);
    r.required("path_on_host", o.path_on_host, StringKind::Path);
    return finish(r, std::move(o));
}

Result<MemoryBackend> read_memory_backend(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    MemoryBackend b;
    r.required_enum("backend_type", b.backend_type, kMemoryBackendTypeNames);
    r.required("backend_path", b.backend_path, StringKind::Path);
    if (r.good() && b.backend_type == MemoryBackendType::Uffd) {
        r.fail(
            "`backend_type` \"Uffd\" (user-fault-fd page serving) is not supported by vireo "
            "yet; use \"File\"");
    }
    return finish(r, std::move(b));
}

}  // namespace

Result<SnapshotLoadParams> read_snapshot_load_params(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    SnapshotLoadParams p;
    r.required("snapshot_path", p.snapshot_path, StringKind::Path);
    std::optional<std::string> mem_file_path;
    r.optional("mem_file_path", mem_file_path, StringKind::Path);
    std::optional<MemoryBackend> backend;
    r.optional_object("mem_backend", backend, read_memory_backend);
    std::optional<bool> track, enable_diff;
    r.optional("track_dirty_pages", track);
    r.optional("enable_diff_snapshots", enable_diff);
    r.defaulted("resume_vm", p.resume_vm);
    r.object_array("network_overrides", p.network_overrides, read_network_override);
    r.object_array("drive_overrides", p.drive_overrides, read_drive_override);
    r.defaulted("eager_memory", p.eager_memory);
    r.defaulted("allow_block_devices", p.allow_block_devices);
    r.refuse("vsock_override", "vireo has no vsock device");
    if (r.good()) {
        if (mem_file_path && backend) {
            r.fail("give either `mem_file_path` or `mem_backend`, not both");
        } else if (!mem_file_path && !backend) {
            r.fail("missing `mem_backend` (or the deprecated `mem_file_path`)");
        } else {
            p.mem_file_path = mem_file_path ? *mem_file_path : backend->backend_path;
        }
    }
    p.track_dirty_pages = track.value_or(false) || enable_diff.value_or(false);
    return finish(r, std::move(p));
}

Result<MigrationSendParams> read_migration_send_params(const Json& json,
                                                       const std::string& context) {
    ObjectReader r(json, context);
    MigrationSendParams p;
    r.required("destination_url", p.destination_url, StringKind::Path);
    std::optional<std::uint64_t> downtime, timeout, bandwidth;
    r.optional_uint("downtime_ms", downtime, 1, 600'000, "1 ms to 10 minutes");
    r.optional_uint("timeout_s", timeout, 1, 7 * 24 * 3600, "1 s to a week");
    std::optional<TimeoutStrategy> strategy;
    r.optional_enum("timeout_strategy", strategy, kTimeoutStrategyNames);
    r.optional_uint("max_bandwidth_mib", bandwidth, 0, 1 << 20, "MiB/s, 0 for no limit");
    r.defaulted("auto_converge", p.auto_converge);
    r.defaulted("local", p.local);
    if (r.good() && p.local && !p.destination_url.starts_with("unix:")) {
        r.fail("`local` hands guest RAM over a Unix socket: `destination_url` must be unix:PATH");
    }
    p.downtime_ms = downtime.value_or(p.downtime_ms);
    p.timeout_s = timeout.value_or(p.timeout_s);
    p.timeout_strategy = strategy.value_or(TimeoutStrategy::Cancel);
    p.max_bandwidth_mib = bandwidth.value_or(0);
    return finish(r, std::move(p));
}

Result<MigrationReceiveParams> read_migration_receive_params(const Json& json,
                                                             const std::string& context) {
    ObjectReader r(json, context);
    MigrationReceiveParams p;
    r.required("receiver_url", p.receiver_url, StringKind::Path);
    r.object_array("network_overrides", p.network_overrides, read_network_override);
    r.object_array("drive_overrides", p.drive_overrides, read_drive_override);
    r.defaulted("local", p.local);
    if (r.good() && p.local && !p.receiver_url.starts_with("unix:")) {
        r.fail("`local` takes guest RAM over a Unix socket: `receiver_url` must be unix:PATH");
    }
    return finish(r, std::move(p));
}

Result<MigrationCancel> read_migration_cancel(const Json& json, const std::string& context) {
    ObjectReader r(json, context);
    return finish(r, MigrationCancel{});
}

}  // namespace vireo::api_detail
