// The command line's device specs (`vireo run --disk ... --net ...`) into the machine's
// configuration (machine/machine_config.h). The CLI's syntax, so it lives with the CLI; the API
// and --config-file describe the same devices in Firecracker's JSON (vmm/machine_config_from).
#pragma once

#include <string_view>

#include "base/result.h"
#include "machine/machine_config.h"

namespace vireo {

// `path=FILE[,readonly=on|off][,direct=on|off][,serial=ID]`; errors name the offending key or
// value.
Result<DiskConfig> parse_disk_spec(std::string_view spec);
// `tap=NAME[,mac=aa:bb:cc:dd:ee:ff]`.
Result<NetConfig> parse_net_spec(std::string_view spec);

}  // namespace vireo
