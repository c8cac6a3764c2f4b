#include "api/api_parser.h"

#include <string>

#include "api/json_reader.h"
#include "api/section_readers.h"
#include "base/mac_address.h"

namespace vireo {

using api_detail::Json;

namespace {

// The body as JSON, after the size cap (checked first: a huge body is never parsed).
Result<Json> body_json(std::string_view body, std::string_view type) {
    if (body.size() > kApiMaxBodySize) {
        return Error(std::string(type) + ": request body of " + std::to_string(body.size()) +
                     " bytes is larger than the limit of " + std::to_string(kApiMaxBodySize) +
                     " bytes");
    }
    auto json = api_detail::parse_json(body);
    if (!json) {
        return json.error().wrap(type);
    }
    return json;
}

// Parses `body` with `read`, the reader for `type`.
template <typename T>
Result<T> parse_body(std::string_view body, const std::string& type,
                     Result<T> (*read)(const Json&, const std::string&)) {
    auto json = body_json(body, type);
    if (!json) {
        return json.error();
    }
    return read(*json, type);
}

// The URL's id must be valid and equal the body's.
Result<void> match_ids(const std::string& type, std::string_view field, std::string_view path_id,
                       std::string_view body_id) {
    if (auto valid = validate_api_id(path_id); !valid) {
        return Error(type + ": the path's " + valid.error().message());
    }
    if (path_id != body_id) {
        return Error(type + ": `" + std::string(field) + "` " + api_detail::quote_text(body_id) +
                     " in the body does not match " + api_detail::quote_text(path_id) +
                     " in the path");
    }
    return ok();
}

template <typename T>
Result<T> parse_with_id(std::string_view body, std::string_view path_id, const std::string& type,
                        Result<T> (*read)(const Json&, const std::string&),
                        std::string T::*id_field, std::string_view field_name) {
    auto value = parse_body(body, type, read);
    if (!value) {
        return value.error();
    }
    if (auto matched = match_ids(type, field_name, path_id, (*value).*id_field); !matched) {
        return matched.error();
    }
    return value;
}

}  // namespace

Result<InstanceActionInfo> parse_instance_action_info(std::string_view body) {
    return parse_body(body, "InstanceActionInfo", api_detail::read_instance_action_info);
}

Result<BootSource> parse_boot_source(std::string_view body) {
    return parse_body(body, "BootSource", api_detail::read_boot_source);
}

Result<MachineConfiguration> parse_machine_configuration(std::string_view body) {
    return parse_body(body, "MachineConfiguration", api_detail::read_machine_configuration);
}

Result<MachineConfigurationPatch> parse_machine_configuration_patch(std::string_view body) {
    return parse_body(body, "MachineConfiguration", api_detail::read_machine_configuration_patch);
}

Result<Drive> parse_drive(std::string_view body, std::string_view path_id) {
    return parse_with_id(body, path_id, "Drive", api_detail::read_drive, &Drive::drive_id,
                         "drive_id");
}

Result<PartialDrive> parse_partial_drive(std::string_view body, std::string_view path_id) {
    return parse_with_id(body, path_id, "PartialDrive", api_detail::read_partial_drive,
                         &PartialDrive::drive_id, "drive_id");
}

Result<NetworkInterface> parse_network_interface(std::string_view body, std::string_view path_id) {
    return parse_with_id(body, path_id, "NetworkInterface", api_detail::read_network_interface,
                         &NetworkInterface::iface_id, "iface_id");
}

Result<PartialNetworkInterface> parse_partial_network_interface(std::string_view body,
                                                                std::string_view path_id) {
    return parse_with_id(body, path_id, "PartialNetworkInterface",
                         api_detail::read_partial_network_interface,
                         &PartialNetworkInterface::iface_id, "iface_id");
}

Result<VmState> parse_vm_state(std::string_view body) {
    return parse_body(body, "Vm", api_detail::read_vm_state);
}

Result<Logger> parse_logger(std::string_view body) {
    return parse_body(body, "Logger", api_detail::read_logger);
}

Result<Metrics> parse_metrics(std::string_view body) {
    return parse_body(body, "Metrics", api_detail::read_metrics);
}

Result<EntropyDevice> parse_entropy_device(std::string_view body) {
    return parse_body(body, "EntropyDevice", api_detail::read_entropy_device);
}

Result<BalloonConfig> parse_balloon(std::string_view body) {
    return parse_body(body, "Balloon", api_detail::read_balloon);
}

Result<BalloonUpdate> parse_balloon_update(std::string_view body) {
    return parse_body(body, "BalloonUpdate", api_detail::read_balloon_update);
}

Result<BalloonStatsUpdate> parse_balloon_stats_update(std::string_view body) {
    return parse_body(body, "BalloonStatsUpdate", api_detail::read_balloon_stats_update);
}

Result<SnapshotCreateParams> parse_snapshot_create_params(std::string_view body) {
    return parse_body(body, "SnapshotCreateParams", api_detail::read_snapshot_create_params);
}

Result<SnapshotLoadParams> parse_snapshot_load_params(std::string_view body) {
    return parse_body(body, "SnapshotLoadParams", api_detail::read_snapshot_load_params);
}

Result<MigrationSendParams> parse_migration_send_params(std::string_view body) {
    return parse_body(body, "MigrationSendParams", api_detail::read_migration_send_params);
}

Result<MigrationReceiveParams> parse_migration_receive_params(std::string_view body) {
    return parse_body(body, "MigrationReceiveParams", api_detail::read_migration_receive_params);
}

Result<MigrationCancel> parse_migration_cancel(std::string_view body) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        return MigrationCancel{};
    }
    return parse_body(body, "MigrationCancel", api_detail::read_migration_cancel);
}

Result<void> validate_machine_configuration(const MachineConfiguration& config) {
    if (config.vcpu_count < 1 || config.vcpu_count > kApiMaxVcpus) {
        return Error("`vcpu_count` must be between 1 and " + std::to_string(kApiMaxVcpus) +
                     ", got " + std::to_string(config.vcpu_count));
    }
    if (config.mem_size_mib < 1 || config.mem_size_mib > kApiMaxMemMib) {
        return Error("`mem_size_mib` must be between 1 and " + std::to_string(kApiMaxMemMib) +
                     ", got " + std::to_string(config.mem_size_mib));
    }
    // Sibling threads come in pairs (Firecracker's rule).
    if (config.smt && config.vcpu_count > 1 && config.vcpu_count % 2 != 0) {
        return Error("`vcpu_count` must be 1 or even when `smt` is enabled, got " +
                     std::to_string(config.vcpu_count));
    }
    if (config.huge_pages == HugePages::Hugetlbfs2M &&
        config.memory_backend == MemoryBacking::Memfd) {
        return Error(
            "`memory_backend` \"Memfd\" cannot be combined with \"2M\" huge pages (hugetlb "
            "memory is anonymous)");
    }
    if (config.huge_pages == HugePages::Hugetlbfs2M && config.mem_size_mib % 2 != 0) {
        return Error("`mem_size_mib` must be a multiple of 2 with \"2M\" huge pages, got " +
                     std::to_string(config.mem_size_mib));
    }
    return ok();
}

Result<MachineConfiguration> apply_machine_configuration_patch(
    const MachineConfiguration& base, const MachineConfigurationPatch& patch) {
    MachineConfiguration m = base;
    m.vcpu_count = patch.vcpu_count.value_or(m.vcpu_count);
    m.mem_size_mib = patch.mem_size_mib.value_or(m.mem_size_mib);
    m.smt = patch.smt.value_or(m.smt);
    m.track_dirty_pages = patch.track_dirty_pages.value_or(m.track_dirty_pages);
    m.huge_pages = patch.huge_pages.value_or(m.huge_pages);
    m.memory_backend = patch.memory_backend.value_or(m.memory_backend);
    if (auto valid = validate_machine_configuration(m); !valid) {
        return valid.error().wrap("MachineConfiguration");
    }
    return m;
}

Result<void> validate_balloon_target(std::uint64_t amount_mib, std::uint64_t mem_size_mib) {
    if (amount_mib > mem_size_mib) {
        return Error("the balloon's target of " + std::to_string(amount_mib) +
                     " MiB is more than the guest's " + std::to_string(mem_size_mib) +
                     " MiB of RAM");
    }
    return ok();
}

Result<void> validate_api_id(std::string_view id) {
    if (!api_detail::check_string("id", id, api_detail::StringKind::Id)) {
        return Error("id " + api_detail::quote_text(id) + " is not valid (1 to " +
                     std::to_string(kApiMaxIdLength) + " letters, digits and '_')");
    }
    return ok();
}

Result<GuestMac> parse_guest_mac(std::string_view text) {
    // One parser for MAC addresses (base/mac_address.h): its message says what is wrong.
    auto mac = MacAddress::parse(text);
    if (!mac) {
        return Error("`guest_mac`: " + mac.error().message());
    }
    return mac->bytes();
}

}  // namespace vireo
