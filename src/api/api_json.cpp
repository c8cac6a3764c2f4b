#include "api/api_json.h"

#include <nlohmann/json.hpp>

#include "api/enum_names.h"

namespace vireo {

namespace {

// Insertion-ordered, so the output lists fields in the yaml's order like Firecracker's does.
using OJson = nlohmann::ordered_json;
using namespace api_detail;

template <typename T>
OJson or_null(const std::optional<T>& value) {
    return value ? OJson(*value) : OJson(nullptr);
}

std::string dump(const OJson& json) {
    // Strings the VMM hands back may not be valid UTF-8; replace rather than throw.
    return json.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

OJson boot_source_json(const BootSource& b) {
    return OJson{{"kernel_image_path", b.kernel_image_path},
                 {"initrd_path", or_null(b.initrd_path)},
                 {"boot_args", or_null(b.boot_args)}};
}

OJson machine_json(const MachineConfiguration& m) {
    OJson j{{"vcpu_count", m.vcpu_count},
            {"mem_size_mib", m.mem_size_mib},
            {"smt", m.smt},
            {"track_dirty_pages", m.track_dirty_pages},
            {"huge_pages", name_of(kHugePagesNames, m.huge_pages)}};
    // vireo's extension, only when set: Firecracker's own fields stay exactly as it writes them.
    if (m.memory_backend != MemoryBacking::Anonymous) {
        j["memory_backend"] = name_of(kMemoryBackingNames, m.memory_backend);
    }
    return j;
}

OJson bucket_json(const std::optional<BucketConfig>& b) {
    if (!b) {
        return OJson(nullptr);
    }
    return OJson{{"size", b->size},
                 {"one_time_burst", b->one_time_burst},
                 {"refill_time", b->refill_time_ms}};
}

OJson rate_limiter_json(const std::optional<RateLimiterConfig>& r) {
    if (!r) {
        return OJson(nullptr);
    }
    return OJson{{"bandwidth", bucket_json(r->bandwidth)}, {"ops", bucket_json(r->ops)}};
}

OJson drive_json(const Drive& d) {
    OJson j{{"drive_id", d.drive_id},
            {"partuuid", or_null(d.partuuid)},
            {"is_root_device", d.is_root_device},
            {"cache_type", name_of(kCacheTypeNames, d.cache_type)},
            {"is_read_only", d.is_read_only},
            {"path_on_host", d.path_on_host},
            {"rate_limiter", rate_limiter_json(d.rate_limiter)}};
    if (d.io_engine) {
        j["io_engine"] = name_of(kIoEngineNames, *d.io_engine);
    }
    return j;
}

OJson net_json(const NetworkInterface& n) {
    return OJson{
        {"iface_id", n.iface_id},
        {"host_dev_name", n.host_dev_name},
        {"guest_mac", n.guest_mac ? OJson(format_guest_mac(*n.guest_mac)) : OJson(nullptr)},
        {"mtu", or_null(n.mtu)},
        {"rx_rate_limiter", rate_limiter_json(n.rx_rate_limiter)},
        {"tx_rate_limiter", rate_limiter_json(n.tx_rate_limiter)}};
}

OJson logger_json(const Logger& l) {
    return OJson{{"log_path", or_null(l.log_path)},
                 {"level", l.level ? OJson(name_of(kLogLevelNames, *l.level)) : OJson(nullptr)},
                 {"show_level", or_null(l.show_level)},
                 {"show_log_origin", or_null(l.show_log_origin)},
                 {"module", or_null(l.module)}};
}

OJson metrics_json(const Metrics& m) {
    OJson properties = OJson::object();
    for (const auto& [k, v] : m.properties) {
        properties[k] = v;
    }
    return OJson{{"metrics_path", m.metrics_path},
                 {"emit_id", or_null(m.emit_id)},
                 {"properties", properties}};
}

OJson balloon_json(const BalloonConfig& b) {
    return OJson{{"amount_mib", b.amount_mib},
                 {"deflate_on_oom", b.deflate_on_oom},
                 {"stats_polling_interval_s", b.stats_polling_interval_s},
                 {"free_page_hinting", false},
                 {"free_page_reporting", b.free_page_reporting}};
}

}  // namespace

std::string to_json(const InstanceInfo& info) {
    return dump(OJson{{"app_name", info.app_name},
                      {"id", info.id},
                      {"state", name_of(kInstanceStateNames, info.state)},
                      {"vmm_version", info.vmm_version}});
}

std::string to_json(const FirecrackerVersion& version) {
    return dump(OJson{{"firecracker_version", version.firecracker_version}});
}

std::string to_json(const MigrationInfo& info) {
    return dump(OJson{{"state", info.state},
                      {"role", info.role},
                      {"url", info.url},
                      {"iteration", info.iteration},
                      {"bytes", info.bytes},
                      {"pages", info.pages},
                      {"remaining_pages", info.remaining_pages},
                      {"dirty_rate_pages_s", info.dirty_rate_pages_s},
                      {"bandwidth_mib_s", info.bandwidth_mib_s},
                      {"expected_downtime_ms", info.expected_downtime_ms},
                      {"downtime_ms", info.downtime_ms},
                      {"total_ms", info.total_ms},
                      {"throttle_percent", info.throttle_percent},
                      {"error", or_null(info.error)}});
}

std::string to_json(const MachineConfiguration& config) {
    return dump(machine_json(config));
}

std::string to_json(const VmConfig& config) {
    OJson drives = OJson::array();
    for (const auto& d : config.drives) {
        drives.push_back(drive_json(d));
    }
    OJson nets = OJson::array();
    for (const auto& n : config.network_interfaces) {
        nets.push_back(net_json(n));
    }
    OJson out;
    out["boot-source"] =
        config.boot_source ? boot_source_json(*config.boot_source) : OJson(nullptr);
    out["drives"] = std::move(drives);
    out["machine-config"] = machine_json(config.machine_config);
    out["network-interfaces"] = std::move(nets);
    out["logger"] = config.logger ? logger_json(*config.logger) : OJson(nullptr);
    out["metrics"] = config.metrics ? metrics_json(*config.metrics) : OJson(nullptr);
    out["entropy"] = config.entropy
                         ? OJson{{"rate_limiter", rate_limiter_json(config.entropy->rate_limiter)}}
                         : OJson(nullptr);
    out["balloon"] = config.balloon ? balloon_json(*config.balloon) : OJson(nullptr);
    return dump(out);
}

std::string to_json(const BalloonConfig& config) {
    return dump(balloon_json(config));
}

std::string to_json(const BalloonStats& stats) {
    OJson j{{"target_pages", stats.target_pages},
            {"actual_pages", stats.actual_pages},
            {"target_mib", stats.target_mib},
            {"actual_mib", stats.actual_mib}};
    for (const auto& [name, value] : stats.guest) {
        j[std::string(name)] = value;
    }
    return dump(j);
}

std::string to_json(const Fault& fault) {
    return dump(OJson{{"fault_message", fault.fault_message}});
}

std::string response_body_json(const ApiResponse& response) {
    return std::visit(
        [](const auto& body) -> std::string {
            if constexpr (std::is_same_v<std::decay_t<decltype(body)>, std::monostate>) {
                return {};
            } else {
                return to_json(body);
            }
        },
        response.body);
}

std::string format_guest_mac(const GuestMac& mac) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < mac.size(); ++i) {
        if (i != 0) {
            out += ':';
        }
        out += kHex[mac[i] >> 4];
        out += kHex[mac[i] & 0xf];
    }
    return out;
}

}  // namespace vireo
