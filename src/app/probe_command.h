// `vireo probe`: runs synthetic guests on /dev/kvm and reports what the vCPU core saw. A quick
// answer to "does KVM work on this host, and how fast are exits and user-mode code".
#pragma once

#include <string>

namespace vireo::app {

struct ProbeCommandOptions {
    std::string device = "/dev/kvm";
    std::string accel;  // --accel; empty: kvm
    unsigned long long user_loop_iterations = 100'000'000;
};

int run_probe_command(const ProbeCommandOptions& options);

}  // namespace vireo::app
