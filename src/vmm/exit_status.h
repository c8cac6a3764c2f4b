// The process exit statuses of `vireo run` and the API's VMM (listed in `vireo run --help`), and
// the one map from how a VM ended to a status.
#pragma once

namespace vireo {

struct MachineExit;

inline constexpr int kExitOk = 0;  // guest powered off, rebooted with --on-reboot exit, or stopped
inline constexpr int kExitError = 1;       // vireo could not start or run the VM
inline constexpr int kExitUsage = 2;       // bad command line
inline constexpr int kExitGuestCrash = 3;  // kernel panic, triple fault, failed VM entry

// The exit status for how the VM ended; a guest crash or an error is said on stderr.
int exit_status(const MachineExit& exit);

}  // namespace vireo
