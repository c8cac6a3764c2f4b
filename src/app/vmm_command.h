// `vireo --api-sock PATH [--config-file FILE] ...`: Firecracker's command line. The VM is
// configured and started through the REST API on PATH (or from FILE), and the process lives as
// long as the VM.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/api_types.h"
#include "app/seccomp_options.h"

namespace CLI {
class App;
}

namespace vireo::app {

struct VmmCommandOptions {
    std::string api_sock = "/run/firecracker.socket";
    std::string config_file;
    bool no_api = false;
    std::string id = "anonymous-instance";
    std::string log_path;
    std::string level;
    std::string metrics_path;
    bool boot_timer = false;
    bool enable_pci = false;  // accepted: vireo's devices are always PCI
    std::string accel;        // --accel (a vireo extension); empty: kvm
    SeccompCliOptions seccomp;
};

// Adds the flags to the top-level app.
void add_vmm_options(CLI::App& app, VmmCommandOptions& options);
// --network-override IFACE=TAP and --drive-override DRIVE_ID=PATH (snapshot load, migrate
// receive). False, with the message printed, when one is malformed.
bool parse_override_options(const std::vector<std::string>& networks,
                            const std::vector<std::string>& drives,
                            std::vector<NetworkOverride>& network_out,
                            std::vector<DriveOverride>& drive_out);
// The options of a VMM process that takes over a VM made elsewhere (`snapshot load`, `migrate
// receive`): --api-sock, --network-override, --drive-override, --id, --log-path, --metrics-path
// and the seccomp flags.
void add_incoming_vm_options(CLI::App& command, std::string& api_sock,
                             std::vector<std::string>& network_overrides,
                             std::vector<std::string>& drive_overrides, VmmCommandOptions& vmm);
// `vmm` serving the API on `api_sock`, or with no API when it is empty.
VmmCommandOptions with_api_socket(VmmCommandOptions vmm, const std::string& api_sock);
// True when any of them was given (so a bare `vireo` can still print usage).
bool vmm_options_given(const CLI::App& app);
// With `snapshot_load`, the VMM restores that snapshot at start (`vireo snapshot load`); with
// `migration_receive`, it waits for a migrated VM (`vireo migrate receive`).
int run_vmm_command(const VmmCommandOptions& options,
                    std::optional<SnapshotLoadParams> snapshot_load = std::nullopt,
                    std::optional<MigrationReceiveParams> migration_receive = std::nullopt);

}  // namespace vireo::app
