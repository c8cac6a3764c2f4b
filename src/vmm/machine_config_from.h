// From the API's model of a VM (api/api_types.h, Firecracker's sections) to the machine's
// (machine/machine_config.h): the first piece of the VMM core library (issue 12), which app/
// and the unit tests both link.
#pragma once

#include <vector>

#include "api/api_types.h"
#include "base/result.h"
#include "machine/machine_config.h"

namespace vireo {

// MachineConfig from the API's model: the root drive first (vda), the others in the order they
// were added; the kernel command line gets root=... for the root drive as Firecracker does. An
// error when the balloon's target is more than the guest's RAM.
Result<MachineConfig> machine_config_from(const VmConfig& config, bool boot_timer);
// The drives in the machine's disk order: the root drive first (vda), then the others in the
// order they were added. Index i is the machine's disk i.
std::vector<const Drive*> drives_in_disk_order(const VmConfig& config);

}  // namespace vireo
