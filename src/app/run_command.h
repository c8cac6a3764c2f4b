// `vireo run`: boot a Linux guest and run it until it powers off.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/seccomp_options.h"
#include "machine/machine_config.h"
#include "vmm/exit_status.h"

namespace CLI {
class App;
}

namespace vireo::app {

enum class OnReboot { Exit, Restart };

struct RunOptions {
    MachineConfig machine;
    std::string memory_text = "512M";
    std::string console = "stdio";
    std::string console_max_size = "64M";  // the file console's cap
    std::vector<std::string> disk_specs;
    std::vector<std::string> net_specs;
    std::string balloon_spec;  // --balloon; empty: no balloon
    OnReboot on_reboot = OnReboot::Exit;
    bool cmdline_given = false;
    bool verbose = false;
    std::string accel;  // --accel; empty: kvm
    SeccompCliOptions seccomp;
};

CLI::App* add_run_command(CLI::App& app, RunOptions& options);
int run_command(RunOptions& options);

// Default cmdline when --cmdline is not given.
inline constexpr const char* kDefaultCmdline = "console=ttyS0 reboot=acpi panic=-1 quiet";
// ... and with --console virtio: the kernel's console is hvc0.
inline constexpr const char* kDefaultVirtioCmdline = "console=hvc0 reboot=acpi panic=-1 quiet";

}  // namespace vireo::app
