#include "app/snapshot_command.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "api/api_client.h"
#include "app/run_command.h"
#include "snapshot/memory_file.h"

namespace vireo::app {

namespace {

int create(const SnapshotCommandOptions& o) {
    auto info = api_call(o.api_sock, "GET", "/");
    if (!info) {
        fmt::print(stderr, "vireo snapshot create: {}\n", info.error().message());
        return kExitError;
    }
    auto state = nlohmann::json::parse(info->body, nullptr, false);
    const bool running = state.is_object() && state.value("state", "") == "Running";
    if (running) {
        auto r = api_call(o.api_sock, "PATCH", "/vm", R"({"state":"Paused"})");
        if (!r || r->status != 204) {
            fmt::print(stderr, "vireo snapshot create: pause: {}\n",
                       r ? fault_of(*r) : r.error().message());
            return kExitError;
        }
    }
    const nlohmann::json body = {{"snapshot_type", o.type},
                                 {"snapshot_path", o.snapshot_path},
                                 {"mem_file_path", o.mem_file_path}};
    auto r = api_call(o.api_sock, "PUT", "/snapshot/create", body.dump());
    if (!r || r->status != 204) {
        fmt::print(stderr, "vireo snapshot create: {}\n", r ? fault_of(*r) : r.error().message());
        return kExitError;
    }
    if (o.resume) {
        auto resumed = api_call(o.api_sock, "PATCH", "/vm", R"({"state":"Resumed"})");
        if (!resumed || resumed->status != 204) {
            fmt::print(stderr, "vireo snapshot create: resume: {}\n",
                       resumed ? fault_of(*resumed) : resumed.error().message());
            return kExitError;
        }
    }
    fmt::print("vireo snapshot create: {} snapshot written: {} and {}\n", o.type, o.snapshot_path,
               o.mem_file_path);
    return kExitOk;
}

int load(const SnapshotCommandOptions& o) {
    SnapshotLoadParams params;
    params.snapshot_path = o.snapshot_path;
    params.mem_file_path = o.mem_file_path;
    params.resume_vm = !o.paused;
    params.eager_memory = o.eager;
    params.allow_block_devices = o.allow_block_devices;
    params.track_dirty_pages = o.track_dirty_pages;
    if (!parse_override_options(o.network_overrides, o.drive_overrides, params.network_overrides,
                                params.drive_overrides)) {
        return kExitUsage;
    }
    return run_vmm_command(with_api_socket(o.vmm, o.api_sock), params);
}

int merge(const SnapshotCommandOptions& o) {
    auto r = merge_memory_diff(o.base_mem, o.diff_mem);
    if (!r) {
        fmt::print(stderr, "vireo snapshot merge: {}\n", r.error().message());
        return kExitError;
    }
    fmt::print("vireo snapshot merge: {} bytes of {} applied to {}\n", r->bytes_copied, o.diff_mem,
               o.base_mem);
    return kExitOk;
}

}  // namespace

SnapshotCommands add_snapshot_command(CLI::App& app, SnapshotCommandOptions& o) {
    SnapshotCommands c;
    c.top = app.add_subcommand("snapshot", "Create, load or merge VM snapshots");
    c.top->require_subcommand(1);

    c.create = c.top->add_subcommand(
        "create", "Snapshot a running vireo through its API socket (pauses it first)");
    c.create->add_option("--api-sock", o.api_sock, "The VMM's API socket")->required();
    c.create->add_option("--snapshot-path", o.snapshot_path, "State file to write")->required();
    c.create->add_option("--mem-file-path", o.mem_file_path, "Memory file to write")->required();
    c.create->add_option("--type", o.type, "Full or Diff")
        ->check(CLI::IsMember({"Full", "Diff"}))
        ->capture_default_str();
    c.create->add_flag("--resume", o.resume, "Resume the VM after the snapshot");

    c.load = c.top->add_subcommand("load", "Start a VMM that restores a snapshot and runs it");
    c.load->add_option("--snapshot-path", o.snapshot_path, "State file")->required();
    c.load->add_option("--mem-file-path", o.mem_file_path, "Memory file")->required();
    add_incoming_vm_options(*c.load, o.api_sock, o.network_overrides, o.drive_overrides, o.vmm);
    c.load->add_flag("--eager", o.eager,
                     "Read the whole memory file up front instead of mapping it");
    c.load->add_flag("--allow-block-devices", o.allow_block_devices,
                     "Let drive paths stored in the state file name block devices");
    c.load->add_flag("--paused", o.paused, "Leave the restored VM paused");
    c.load->add_flag("--track-dirty-pages", o.track_dirty_pages,
                     "Track dirty pages (for later Diff snapshots)");

    c.merge = c.top->add_subcommand("merge", "Apply a Diff memory file onto its base, in place");
    c.merge->add_option("base", o.base_mem, "The base memory file (modified)")->required();
    c.merge->add_option("diff", o.diff_mem, "The Diff memory file")->required();
    return c;
}

int run_snapshot_command(const SnapshotCommands& c, const SnapshotCommandOptions& o) {
    if (c.create->parsed()) {
        return create(o);
    }
    if (c.load->parsed()) {
        return load(o);
    }
    return merge(o);
}

}  // namespace vireo::app
