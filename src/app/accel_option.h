// `--accel kvm|soft|auto` for `vireo run`, `vireo-probe` and the API's VMM: which accelerator runs
// the guest (accel/open_accelerator.h). kvm is the default; auto takes KVM where /dev/kvm opens,
// else the software CPU, and says which it took and why.
#pragma once

#include <string>

#include "accel/open_accelerator.h"

namespace CLI {
class App;
}

namespace vireo::app {

void add_accel_option(CLI::App& app, std::string& accel);

// Opens the accelerator `accel` names ("kvm" when empty) and says on stderr which one runs the
// guest when the choice was "auto". `who` prefixes the messages ("vireo", "vireo-probe").
Result<OpenedAccelerator> open_accel_option(const std::string& accel, const char* who,
                                            const char* kvm_device = "/dev/kvm");

}  // namespace vireo::app
