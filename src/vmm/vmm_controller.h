// The VMM side of the Firecracker-compatible API: one VM's configuration model and lifecycle
// state machine, driven by API requests (from the server thread through a CommandQueue) and by
// the VM's own end.
//
//   Not started --InstanceStart--> Running <--PATCH /vm Paused/Resumed--> Paused
//        |                            |                                     |
//        +------ guest power-off / reboot / crash, SIGTERM --------> Stopped (process exits)
//
// Every request is applied on the VMM thread (run()), one at a time, so the configuration needs no
// lock. Requests that are not allowed in the current state answer 400 and change nothing.
#pragma once

#include <atomic>
#include <chrono>
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
    VmmController(Accelerator& accel, Console& console, VmmOptions options,
                  std::unique_ptr<CommandQueue<ApiRequest, ApiResponse>> queue, EventFd wake);
    ApiResponse apply(ApiRequest& request);
    ApiResponse start_instance();
    // The thread that runs the machine until it ends (InstanceStart and snapshot load).
    void start_machine_thread();
    ApiResponse set_state(VmStateRequest state);
    // vmm_snapshot.cpp
    ApiResponse create_snapshot(const SnapshotCreateParams& params);
    ApiResponse load_snapshot(const SnapshotLoadParams& params);
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
    std::uint64_t m_missed_metrics = 0;  // lines the metrics destination did not take
};

}  // namespace vireo
