// Strict parsers for the request bodies of vireo's Firecracker-compatible API. Each takes the raw
// body and returns the typed value or an Error whose message is meant for the client as
// "fault_message". Firecracker's rules: malformed JSON, wrong JSON types, missing required
// fields, unknown fields (named in the message), duplicate keys and values out of range are all
// errors; JSON null is accepted for an optional field and means absent. Bodies larger than
// kApiMaxBodySize are refused before any parsing.
#pragma once

#include <cstdint>
#include <string_view>

#include "api/api_types.h"
#include "base/result.h"

namespace vireo {

Result<InstanceActionInfo> parse_instance_action_info(std::string_view body);
Result<BootSource> parse_boot_source(std::string_view body);
Result<MachineConfiguration> parse_machine_configuration(std::string_view body);
// At least one field must be given ("empty PATCH request" otherwise).
Result<MachineConfigurationPatch> parse_machine_configuration_patch(std::string_view body);
// `path_id` is the {drive_id} / {iface_id} of the URL: it must be a valid id and equal the id in
// the body.
Result<Drive> parse_drive(std::string_view body, std::string_view path_id);
Result<PartialDrive> parse_partial_drive(std::string_view body, std::string_view path_id);
Result<NetworkInterface> parse_network_interface(std::string_view body, std::string_view path_id);
Result<PartialNetworkInterface> parse_partial_network_interface(std::string_view body,
                                                                std::string_view path_id);
Result<VmState> parse_vm_state(std::string_view body);
Result<Logger> parse_logger(std::string_view body);
Result<Metrics> parse_metrics(std::string_view body);
Result<EntropyDevice> parse_entropy_device(std::string_view body);
Result<BalloonConfig> parse_balloon(std::string_view body);
Result<BalloonUpdate> parse_balloon_update(std::string_view body);
Result<BalloonStatsUpdate> parse_balloon_stats_update(std::string_view body);
Result<SnapshotCreateParams> parse_snapshot_create_params(std::string_view body);
Result<SnapshotLoadParams> parse_snapshot_load_params(std::string_view body);
Result<MigrationSendParams> parse_migration_send_params(std::string_view body);
Result<MigrationReceiveParams> parse_migration_receive_params(std::string_view body);
// No body, or an empty object.
Result<MigrationCancel> parse_migration_cancel(std::string_view body);

// The cross-field rules of a machine configuration (smt needs 1 or an even number of vCPUs,
// 2M huge pages need an even memory size) on top of each field's range.
Result<void> validate_machine_configuration(const MachineConfiguration& config);
// `base` with `patch` applied, validated as a whole (PATCH /machine-config's semantics: if any
// value is wrong, nothing changes).
Result<MachineConfiguration> apply_machine_configuration_patch(
    const MachineConfiguration& base, const MachineConfigurationPatch& patch);

// A balloon cannot be asked to take more than the guest has: an error when `amount_mib` exceeds
// `mem_size_mib` (PUT and PATCH /balloon, InstanceStart, a config file, --balloon).
Result<void> validate_balloon_target(std::uint64_t amount_mib, std::uint64_t mem_size_mib);

// Checks a Firecracker id (drive_id, iface_id): 1..kApiMaxIdLength of [A-Za-z0-9_].
Result<void> validate_api_id(std::string_view id);

// "aa:bb:cc:dd:ee:ff" (hex digits of either case) into six octets; multicast addresses are
// refused (a NIC needs a unicast address).
Result<GuestMac> parse_guest_mac(std::string_view text);

}  // namespace vireo
