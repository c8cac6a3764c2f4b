// One reader per API body type, from an already parsed JSON value. Shared by the request parsers
// (api_parser.cpp) and the config file (config_file.cpp), so a section of a config file is held
// to exactly the rules of the request that configures it. `context` prefixes every error
// ("BootSource", "drives[1]"). Internal to api/.
#pragma once

#include <string>

#include "api/api_types.h"
#include "api/json_reader.h"
#include "base/result.h"

namespace vireo::api_detail {

Result<BootSource> read_boot_source(const Json& json, const std::string& context);
Result<MachineConfiguration> read_machine_configuration(const Json& json,
                                                        const std::string& context);
Result<MachineConfigurationPatch> read_machine_configuration_patch(const Json& json,
                                                                   const std::string& context);
// Firecracker's TokenBucket ({size, one_time_burst?, refill_time}) and RateLimiter
// ({bandwidth?, ops?}).
Result<BucketConfig> read_token_bucket(const Json& json, const std::string& context);
Result<RateLimiterConfig> read_rate_limiter(const Json& json, const std::string& context);
Result<Drive> read_drive(const Json& json, const std::string& context);
Result<PartialDrive> read_partial_drive(const Json& json, const std::string& context);
Result<NetworkInterface> read_network_interface(const Json& json, const std::string& context);
Result<PartialNetworkInterface> read_partial_network_interface(const Json& json,
                                                               const std::string& context);
Result<InstanceActionInfo> read_instance_action_info(const Json& json, const std::string& context);
Result<VmState> read_vm_state(const Json& json, const std::string& context);
Result<Logger> read_logger(const Json& json, const std::string& context);
Result<Metrics> read_metrics(const Json& json, const std::string& context);
Result<EntropyDevice> read_entropy_device(const Json& json, const std::string& context);
// Firecracker's Balloon, BalloonUpdate and BalloonStatsUpdate.
Result<BalloonConfig> read_balloon(const Json& json, const std::string& context);
Result<BalloonUpdate> read_balloon_update(const Json& json, const std::string& context);
Result<BalloonStatsUpdate> read_balloon_stats_update(const Json& json, const std::string& context);
Result<SnapshotCreateParams> read_snapshot_create_params(const Json& json,
                                                         const std::string& context);
Result<SnapshotLoadParams> read_snapshot_load_params(const Json& json, const std::string& context);
Result<MigrationSendParams> read_migration_send_params(const Json& json,
                                                       const std::string& context);
Result<MigrationReceiveParams> read_migration_receive_params(const Json& json,
                                                             const std::string& context);
Result<MigrationCancel> read_migration_cancel(const Json& json, const std::string& context);

}  // namespace vireo::api_detail
