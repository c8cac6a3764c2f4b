// `vireo snapshot create|load|merge`: thin fronts on the same code as the API.
//   create  drives a running VMM through its API socket: pause (if running), PUT
//           /snapshot/create; the VM stays paused unless --resume.
//   load    starts a VMM process that restores the snapshot (PUT /snapshot/load's code), with an
//           API socket when --api-sock is given.
//   merge   applies a Diff memory file onto its base memory file, in place.
#pragma once

#include <string>
#include <vector>

#include "app/vmm_command.h"

namespace CLI {
class App;
}

namespace vireo::app {

struct SnapshotCommandOptions {
    std::string api_sock;
    std::string snapshot_path;
    std::string mem_file_path;
    std::string type = "Full";
    bool resume = false;
    std::vector<std::string> network_overrides;  // IFACE=TAP
    std::vector<std::string> drive_overrides;    // ID=PATH
    bool eager = false;
    bool allow_block_devices = false;
    bool paused = false;
    bool track_dirty_pages = false;
    std::string base_mem;
    std::string diff_mem;
    VmmCommandOptions vmm;  // load: the VMM process's own options
};

struct SnapshotCommands {
    CLI::App* create = nullptr;
    CLI::App* load = nullptr;
    CLI::App* merge = nullptr;
    CLI::App* top = nullptr;
};

SnapshotCommands add_snapshot_command(CLI::App& app, SnapshotCommandOptions& options);
int run_snapshot_command(const SnapshotCommands& commands, const SnapshotCommandOptions& options);

}  // namespace vireo::app
