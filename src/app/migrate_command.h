// `vireo migrate receive|send` (issue 14): thin fronts on the migration API.
//   receive  starts a VMM process that listens for a migrated VM (PUT /migration/receive's code)
//            and runs it once it arrives; with --api-sock it also serves the API.
//   send     drives a running vireo through its API socket: PUT /migration/send, then a progress
//            line per pass from GET /migration, and the final downtime. Exits 0 when the VM
//            arrived, 1 when the migration failed or was cancelled (the VM then stays).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/vmm_command.h"

namespace CLI {
class App;
}

namespace vireo::app {

struct MigrateCommandOptions {
    // receive
    std::string listen;
    std::vector<std::string> network_overrides;  // IFACE=TAP
    std::vector<std::string> drive_overrides;    // ID=PATH
    VmmCommandOptions vmm;
    // send
    std::string api_sock;
    std::string to;
    std::uint64_t downtime_ms = 300;
    std::uint64_t timeout_s = 3600;
    std::string timeout_strategy = "Cancel";
    std::uint64_t max_bandwidth_mib = 0;
    bool no_auto_converge = false;
    bool local = false;  // both: hand RAM over (unix: only), never copy it
};

struct MigrateCommands {
    CLI::App* top = nullptr;
    CLI::App* receive = nullptr;
    CLI::App* send = nullptr;
};

MigrateCommands add_migrate_command(CLI::App& app, MigrateCommandOptions& options);
int run_migrate_command(const MigrateCommands& commands, const MigrateCommandOptions& options);

}  // namespace vireo::app
