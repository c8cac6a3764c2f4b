// The VMM side of the Firecracker-compatible API: one VM's configuration model and lifecycle
// state machine, driven by API requests (from the server thread through a CommandQueue) and by
// the VM's own end.
//
//   Not started --InstanceStart--> Running <--PATCH /vm Paused/Resumed--> Paused
//        |                            |                                     |
//        +------ guest power-off / reboot / crash, SIGTERM --------> Stopped (process exits)
//
// Live migration (vmm_migration.cpp) runs on its own thread and asks the VMM thread for every
// step that touches the VM (run_on_vmm_thread). A source whose VM moved away ends with status 0;
// a destination becomes Paused, then Running, as a snapshot load does, or ends non-zero when the
// migration fails.
//
// Every request is applied on the VMM thread (run()), one at a time, so the configuration needs no
// lock. Requests that are not allowed in the current state answer 400 and change nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "accel/vm.h"
#include "api/api_handler.h"
#include "backends/char/console.h"
#include "base/command_queue.h"
#include "base/event_fd.h"
#include "base/unique_fd.h"
#include "machine/machine.h"

namespace vireo {

struct VmmOptions {
    std::string id = "anonymous-instance";
    std::string metrics_path;  // --metrics-path; PUT /metrics may set it before boot
    bool boot_timer = false;
    // From --config-file: applied as if each section had been PUT, then InstanceStart.
    std::optional<VmConfig> config;
    // From `vireo snapshot load`: restored at start, as PUT /snapshot/load would.
    std::optional<SnapshotLoadParams> snapshot_load;
    // From `vireo migrate receive`: waits for a migration at start, as PUT /migration/receive.
    std::optional<MigrationReceiveParams> migration_receive;
    std::chrono::steady_clock::time_point process_start = std::chrono::steady_clock::now();
};

class VmmController final : public ApiHandler {
public:
    static Result<std::unique_ptr<VmmController>> create(Accelerator& accel, Console& console,
                                                         VmmOptions options);
    ~VmmController() override;

    // ApiHandler, on the API server's thread: hands the request to the VMM thread and waits.
    ApiResponse handle(ApiRequest request) override;

    // The VMM thread: applies requests until the VM has ended (or, without a VM, until
    // stop()). Returns the process exit status (run_command.h's kExit*).
    int run();
    // Any thread (signal handling): ends the VM if there is one, else run().
    void stop(std::string reason);

private:
    // Work a migration thread hands to the VMM thread (run_on_vmm_thread).
    using VmmTask = std::function<Result<void>()>;
    VmmController(Accelerator& accel, Console& console, VmmOptions options,
                  std::unique_ptr<CommandQueue<ApiRequest, ApiResponse>> queue,
                  std::unique_ptr<CommandQueue<VmmTask, Result<void>>> tasks, EventFd wake);
    ApiResponse apply(ApiRequest& request);
    ApiResponse start_instance();
    // The thread that runs the machine until it ends (InstanceStart and snapshot load).
    void start_machine_thread();
    ApiResponse set_state(VmStateRequest state);
    // vmm_devices.cpp
    ApiResponse put_drive(const Drive& drive);
    ApiResponse patch_drive(const PartialDrive& patch);
    ApiResponse put_network_interface(const NetworkInterface& iface);
    ApiResponse patch_network_interface(const PartialNetworkInterface& patch);
    ApiResponse put_entropy(const EntropyDevice& entropy);
    // vmm_balloon.cpp
    ApiResponse put_balloon(const BalloonConfig& balloon);
    ApiResponse patch_balloon(const BalloonUpdate& update);
    ApiResponse get_balloon() const;
    ApiResponse get_balloon_stats() const;
    ApiResponse patch_balloon_stats(const BalloonStatsUpdate& update);
    // vmm_snapshot.cpp
    ApiResponse create_snapshot(const SnapshotCreateParams& params);
    ApiResponse load_snapshot(const SnapshotLoadParams& params);
    // vmm_migration.cpp
    struct Migration;
    class MigrationSourceAdapter;
    class MigrationTargetAdapter;
    ApiResponse start_migration_send(const MigrationSendParams& params);
    ApiResponse start_migration_receive(const MigrationReceiveParams& params);
    ApiResponse cancel_migration();
    MigrationInfo migration_info() const;
    // 400 while a migration is under way (requests that would change the VM under it).
    std::optional<ApiResponse> refuse_during_migration(const char* what) const;
    // From a migration thread: runs `task` on the VMM thread and waits for it. An error when
    // the VMM is stopping.
    Result<void> run_on_vmm_thread(std::function<Result<void>()> task);
    // At the end of run(): cancels a migration still going and joins its thread, running the
    // tasks it still asks for meanwhile.
    void finish_migration();
    // The source after the hand-over: a second more of answers to reads (vmm_controller.cpp).
    void linger_after_migration();
    InstanceInfo instance_info() const;
    // Opens (or replaces) the metrics destination: a regular file or a FIFO with a reader,
    // written without blocking (base/file_open.h).
    Result<void> open_metrics(const std::string& path);
    void write_metrics(const char* reason);
    void on_machine_end();

    Accelerator& m_accel;
    Console& m_console;
    VmmOptions m_options;
    std::unique_ptr<CommandQueue<ApiRequest, ApiResponse>> m_queue;
    std::unique_ptr<CommandQueue<VmmTask, Result<void>>> m_tasks;
    EventFd m_wake;  // the VM ended, or stop() was called
    VmConfig m_config;
    InstanceState m_state = InstanceState::NotStarted;
    std::unique_ptr<Machine> m_machine;
    std::thread m_machine_thread;
    std::optional<MachineExit> m_exit;  // written by the machine thread before m_wake
    std::atomic<bool> m_stop{false};
    std::string m_stop_reason;
    std::uint64_t m_api_requests = 0;
    std::uint64_t m_api_failures = 0;
    UniqueFd m_metrics_fd;
    std::unique_ptr<Migration> m_migration;          // the current or last migration
    std::optional<std::string> m_migrated_to;        // the source: the VM runs there now
    std::optional<std::string> m_migration_failure;  // the destination: why it ends
    std::uint64_t m_missed_metrics = 0;              // lines the metrics destination did not take
};

}  // namespace vireo
