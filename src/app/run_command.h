// `vireo run`: boot a Linux guest and run it until it powers off.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/seccomp_options.h"
#include "machine/machine_config.h"

namespace vireo {
struct MachineExit;
}

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
    OnReboot on_reboot = OnReboot::Exit;
    bool cmdline_given = false;
    bool verbose = false;
    SeccompCliOptions seccomp;
};

// Exit statuses of `vireo run`, also listed in its --help.
inline constexpr int kExitOk = 0;  // guest powered off, rebooted with --on-reboot exit, or stopped
inline constexpr int kExitError = 1;       // vireo could not start or run the VM
inline constexpr int kExitUsage = 2;       // bad command line
inline constexpr int kExitGuestCrash = 3;  // kernel panic, triple fault, failed VM entry

// The exit status for how the VM ended (one map for `vireo run` and the API's VMM); a guest
// crash or an error is said on stderr.
int exit_status(const MachineExit& exit);

CLI::App* add_run_command(CLI::App& app, RunOptions& options);
int run_command(RunOptions& options);

// Default cmdline when --cmdline is not given.
inline constexpr const char* kDefaultCmdline = "console=ttyS0 reboot=acpi panic=-1 quiet";
// ... and with --console virtio: the kernel's console is hvc0.
inline constexpr const char* kDefaultVirtioCmdline = "console=hvc0 reboot=acpi panic=-1 quiet";

}  // namespace vireo::app
