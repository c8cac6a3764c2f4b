// Which host paths a snapshot's stored configuration may name. A state file is as trusted as a
// configuration file (README): it names the host files and taps the restored VM uses. Because a
// state file is easily copied between hosts and users, vireo still refuses the most damaging
// case by default: a drive path from the state file (not from the load request's
// drive_overrides) that is anything but a regular file, e.g. /dev/sda or another VM's disk
// device. The load request opts in with allow_block_devices (block devices only: nothing else
// can back a drive). Tap names come from the state file too; network_overrides replace them.
#pragma once

#include <span>
#include <string_view>

#include "api/api_types.h"
#include "base/result.h"

namespace vireo {

// `config`: the state file's configuration with `params`' overrides already applied.
Result<void> check_snapshot_drive_paths(const VmConfig& config, const SnapshotLoadParams& params);

// Points the saved configuration's NICs and drives at the overrides' taps and images (snapshot
// load, migration receive). An override naming an interface or drive the configuration does not
// have is refused; `context` prefixes the message ("snapshot/load").
Result<void> apply_overrides(VmConfig& config, std::span<const NetworkOverride> networks,
                             std::span<const DriveOverride> drives, std::string_view context);

}  // namespace vireo
