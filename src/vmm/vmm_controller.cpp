// The VMM's request handling and lifecycle (vmm_controller.h). Snapshots are in vmm_snapshot.cpp,
// migrations in vmm_migration.cpp, drive/NIC/entropy requests in vmm_devices.cpp, the balloon's in
// vmm_balloon.cpp, the configuration mapping in machine_config_from.cpp; the rest is the one state
// machine, kept whole (600 lines) so every transition is read in one file.
#include "vmm/vmm_controller.h"

#include "vmm/vmm_checks.h"
#include "vmm/vmm_migration.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/api_guard.h"
#include "api/api_parser.h"
#include "arch/x86_64/boot_layout.h"
#include "arch/x86_64/memory_layout.h"
#include "base/event_loop.h"
#include "base/fd_log_sink.h"
#include "base/file_open.h"
#include "seccomp/seccomp.h"
#include "vmm/exit_status.h"
#include "vmm/log_setup.h"
#include "vmm/machine_config_from.h"

namespace vireo {

Result<std::unique_ptr<VmmController>> VmmController::create(Accelerator& accel, Console& console,
                                                             VmmOptions options) {
    auto queue = CommandQueue<ApiRequest, ApiResponse>::create();
    if (!queue) {
        return queue.error();
    }
    auto tasks = CommandQueue<VmmTask, Result<void>>::create();
    if (!tasks) {
        return tasks.error();
    }
    auto wake = EventFd::create();
    if (!wake) {
        return wake.error();
    }
    return std::unique_ptr<VmmController>(
        new VmmController(accel, console, std::move(options), std::move(queue.value()),
                          std::move(tasks.value()), std::move(wake.value())));
}

VmmController::VmmController(Accelerator& accel, Console& console, VmmOptions options,
                             std::unique_ptr<CommandQueue<ApiRequest, ApiResponse>> queue,
                             std::unique_ptr<CommandQueue<VmmTask, Result<void>>> tasks,
                             EventFd wake)
    : m_accel(accel),
      m_console(console),
      m_options(std::move(options)),
      m_queue(std::move(queue)),
      m_tasks(std::move(tasks)),
      m_wake(std::move(wake)) {}

VmmController::~VmmController() {
    finish_migration();
    m_queue->close();
    if (m_machine) {
        m_machine->request_stop("the VMM is shutting down");
    }
    if (m_machine_thread.joinable()) {
        m_machine_thread.join();
    }
}

ApiResponse VmmController::handle(ApiRequest request) {
    auto answer = m_queue->call(std::move(request));
    if (!answer) {
        return ApiResponse::bad_request("the VM has stopped");
    }
    return std::move(*answer);
}

void VmmController::stop(std::string reason) {
    if (!m_stop.exchange(true)) {
        m_stop_reason = std::move(reason);
        m_wake.signal();
    }
}

int VmmController::run() {
    auto loop = EventLoop::create();
    if (!loop) {
        fmt::print(stderr, "vireo: {}\n", loop.error().message());
        return kExitError;
    }
    if (!m_options.metrics_path.empty()) {
        if (auto opened = open_metrics(m_options.metrics_path); !opened) {
            fmt::print(stderr, "vireo: {}\n", opened.error().message());
            return kExitError;
        }
    }
    if (m_options.config) {
        // --config-file: the sections, then InstanceStart, exactly as API calls would do.
        m_config = *m_options.config;
        if (m_config.metrics) {
            if (auto opened = open_metrics(m_config.metrics->metrics_path); !opened) {
                fmt::print(stderr, "vireo: {}\n", opened.error().message());
                return kExitError;
            }
        }
        const ApiResponse started =
            answer_without_throwing("--config-file", [&] { return start_instance(); });
        if (started.failed()) {
            fmt::print(stderr, "vireo: {}\n", std::get<Fault>(started.body).fault_message);
            return kExitError;
        }
    }
    if (m_options.snapshot_load) {
        const ApiResponse loaded = answer_without_throwing(
            "snapshot load", [&] { return load_snapshot(*m_options.snapshot_load); });
        if (loaded.failed()) {
            fmt::print(stderr, "vireo: {}\n", std::get<Fault>(loaded.body).fault_message);
            return kExitError;
        }
    }
    if (m_options.migration_receive) {
        const ApiResponse listening = answer_without_throwing("migrate receive", [&] {
            return start_migration_receive(*m_options.migration_receive);
        });
        if (listening.failed()) {
            fmt::print(stderr, "vireo: {}\n", std::get<Fault>(listening.body).fault_message);
            return kExitError;
        }
    }
    bool done = false;
    static_cast<void>((*loop)->add(m_queue->fd(), EPOLLIN, [this](std::uint32_t) {
        while (auto command = m_queue->poll()) {
            ApiResponse response =
                answer_without_throwing("API request", [&] { return apply(command->request); });
            ++m_api_requests;
            m_api_failures += response.failed() ? 1 : 0;
            command->respond(std::move(response));
        }
    }));
    static_cast<void>((*loop)->add(m_tasks->fd(), EPOLLIN, [this](std::uint32_t) {
        while (auto task = m_tasks->poll()) {
            Result<void> r = Error("the task failed");
            try {
                r = task->request();
            } catch (const std::exception& e) {
                r = Error(std::string("internal error: ") + e.what());
            }
            task->respond(std::move(r));
        }
    }));
    static_cast<void>((*loop)->add(m_wake.fd(), EPOLLIN, [&](std::uint32_t) {
        m_wake.consume();
        if (m_exit || m_stop.load()) {
            done = true;
            (*loop)->stop();
        }
    }));
    // Metrics every 60 s, as Firecracker does.
    const int timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer >= 0) {
        itimerspec period{{60, 0}, {60, 0}};
        ::timerfd_settime(timer, 0, &period, nullptr);
        static_cast<void>((*loop)->add(timer, EPOLLIN, [this, timer](std::uint32_t) {
            std::uint64_t ticks = 0;
            // A non-blocking timerfd: a failed read only means no expiry to consume.
            if (::read(timer, &ticks, sizeof(ticks)) < 0) {
                ticks = 0;
            }
            write_metrics("periodic");
        }));
    }
    while (!done) {
        (*loop)->run();
    }
    if (timer >= 0) {
        ::close(timer);
    }
    finish_migration();
    if (m_migrated_to) {
        linger_after_migration();
    }
    m_queue->close();
    if (m_machine && !m_exit) {
        m_machine->request_stop(m_stop_reason.empty() ? "stopped" : m_stop_reason);
    }
    if (m_machine_thread.joinable()) {
        m_machine_thread.join();
    }
    write_metrics("exit");
    if (m_exit) {
        // Where each vCPU stopped (as `run --verbose` prints): a hung or crashed guest's clue.
        spdlog::info("instance {}: the VM ended: {}; by vCPU:\n{}", m_options.id, m_exit->message,
                     m_machine->exit_summary());
    }
    if (m_migration_failure) {
        fmt::print(stderr, "vireo: migration failed: {}\n", *m_migration_failure);
        spdlog::default_logger()->flush();
        return kExitError;
    }
    if (m_migrated_to) {
        fmt::print(stderr, "vireo: the VM migrated to {}\n", *m_migrated_to);
        spdlog::default_logger()->flush();
        return kExitOk;
    }
    spdlog::default_logger()->flush();
    if (!m_exit) {
        return kExitOk;  // stopped before InstanceStart
    }
    return exit_status(*m_exit);
}

void VmmController::linger_after_migration() {
    // The VM is the destination's and this machine has stopped, but a client polling GET
    // /migration (vireo migrate send) must still see the final figures: answer reads for one
    // more second, and refuse the rest.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < until) {
        pollfd p{m_queue->fd(), POLLIN, 0};
        ::poll(&p, 1, 50);
        while (auto command = m_queue->poll()) {
            const bool read = std::holds_alternative<GetMigration>(command->request) ||
                              std::holds_alternative<GetInstanceInfo>(command->request);
            command->respond(
                read ? apply(command->request)
                     : ApiResponse::bad_request("the VM has migrated to " + *m_migrated_to));
        }
    }
}

InstanceInfo VmmController::instance_info() const {
    InstanceInfo info;
    info.id = m_options.id;
    info.state = m_state;
    info.vmm_version = VIREO_VERSION;
    return info;
}

ApiResponse VmmController::apply(ApiRequest& request) {
    const bool pre_boot = m_state == InstanceState::NotStarted;
    return std::visit(
        [&](auto& r) -> ApiResponse {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<T, GetInstanceInfo>) {
                return ApiResponse::ok(instance_info());
            } else if constexpr (std::is_same_v<T, GetVersion>) {
                return ApiResponse::ok(FirecrackerVersion{VIREO_VERSION});
            } else if constexpr (std::is_same_v<T, GetMachineConfig>) {
                return ApiResponse::ok(m_config.machine_config);
            } else if constexpr (std::is_same_v<T, GetVmConfig>) {
                return ApiResponse::ok(m_config);
            } else if constexpr (std::is_same_v<T, InstanceActionInfo>) {
                switch (r.action_type) {
                    case InstanceActionType::InstanceStart:
                        if (!pre_boot) {
                            return ApiResponse::bad_request(not_allowed("InstanceStart", m_state));
                        }
                        if (auto refused = refuse_during_migration("InstanceStart")) {
                            return *refused;
                        }
                        return start_instance();
                    case InstanceActionType::SendCtrlAltDel:
                        if (m_state != InstanceState::Running) {
                            return ApiResponse::bad_request(not_allowed("SendCtrlAltDel", m_state));
                        }
                        if (auto s = m_machine->send_ctrl_alt_del(); !s) {
                            return ApiResponse::bad_request(s.error().message());
                        }
                        return ApiResponse::no_content();
                    case InstanceActionType::FlushMetrics:
                        if (m_options.metrics_path.empty()) {
                            return ApiResponse::bad_request(
                                "FlushMetrics: no metrics destination (PUT /metrics or "
                                "--metrics-path)");
                        }
                        write_metrics("flush");
                        return ApiResponse::no_content();
                }
                return ApiResponse::bad_request("unknown action");
            } else if constexpr (std::is_same_v<T, BootSource>) {
                if (!pre_boot) {
                    return ApiResponse::bad_request(not_allowed("PUT /boot-source", m_state));
                }
                if (auto why = not_a_file(r.kernel_image_path, false)) {
                    return ApiResponse::bad_request(
                        fmt::format("kernel_image_path {}: {}", r.kernel_image_path, *why));
                }
                if (r.initrd_path) {
                    if (auto why = not_a_file(*r.initrd_path, false)) {
                        return ApiResponse::bad_request(
                            fmt::format("initrd_path {}: {}", *r.initrd_path, *why));
                    }
                }
                m_config.boot_source = r;
                return ApiResponse::no_content();
            } else if constexpr (std::is_same_v<T, MachineConfiguration>) {
                if (!pre_boot) {
                    return ApiResponse::bad_request(not_allowed("PUT /machine-config", m_state));
                }
                m_config.machine_config = r;
                return ApiResponse::no_content();
            } else if constexpr (std::is_same_v<T, MachineConfigurationPatch>) {
                if (!pre_boot) {
                    return ApiResponse::bad_request(not_allowed("PATCH /machine-config", m_state));
                }
                auto patched = apply_machine_configuration_patch(m_config.machine_config, r);
                if (!patched) {
                    return ApiResponse::bad_request(patched.error().message());
                }
                m_config.machine_config = *patched;  // checked whole, as a PUT is
                return ApiResponse::no_content();
            } else if constexpr (std::is_same_v<T, Drive>) {
                return put_drive(r);
            } else if constexpr (std::is_same_v<T, PartialDrive>) {
                return patch_drive(r);
            } else if constexpr (std::is_same_v<T, NetworkInterface>) {
                return put_network_interface(r);
            } else if constexpr (std::is_same_v<T, PartialNetworkInterface>) {
                return patch_network_interface(r);
            } else if constexpr (std::is_same_v<T, VmState>) {
                if (auto refused = refuse_during_migration("PATCH /vm")) {
                    return *refused;
                }
                return set_state(r.state);
            } else if constexpr (std::is_same_v<T, Logger>) {
                if (!pre_boot) {
                    return ApiResponse::bad_request(not_allowed("PUT /logger", m_state));
                }
                if (r.log_path) {
                    if (auto logged = log_to_file(*r.log_path); !logged) {
                        return ApiResponse::bad_request(logged.error().message());
                    }
                }
                if (r.level) {
                    static constexpr spdlog::level::level_enum kLevels[] = {
                        spdlog::level::err,   spdlog::level::warn,  spdlog::level::info,
                        spdlog::level::debug, spdlog::level::trace, spdlog::level::off};
                    spdlog::set_level(kLevels[static_cast<int>(*r.level)]);
                }
                m_config.logger = r;
                return ApiResponse::no_content();
            } else if constexpr (std::is_same_v<T, Metrics>) {
                if (!pre_boot) {
                    return ApiResponse::bad_request(not_allowed("PUT /metrics", m_state));
                }
                if (auto opened = open_metrics(r.metrics_path); !opened) {
                    return ApiResponse::bad_request(opened.error().message());
                }
                m_config.metrics = r;
                return ApiResponse::no_content();
            } else if constexpr (std::is_same_v<T, SnapshotCreateParams>) {
                if (auto refused = refuse_during_migration("PUT /snapshot/create")) {
                    return *refused;
                }
                return create_snapshot(r);
            } else if constexpr (std::is_same_v<T, MigrationSendParams>) {
                return start_migration_send(r);
            } else if constexpr (std::is_same_v<T, MigrationReceiveParams>) {
                return start_migration_receive(r);
            } else if constexpr (std::is_same_v<T, MigrationCancel>) {
                return cancel_migration();
            } else if constexpr (std::is_same_v<T, GetMigration>) {
                return ApiResponse::ok(migration_info());
            } else if constexpr (std::is_same_v<T, SnapshotLoadParams>) {
                if (auto refused = refuse_during_migration("PUT /snapshot/load")) {
                    return *refused;
                }
                return load_snapshot(r);
            } else if constexpr (std::is_same_v<T, EntropyDevice>) {
                return put_entropy(r);
            } else if constexpr (std::is_same_v<T, BalloonConfig>) {
                return put_balloon(r);
            } else if constexpr (std::is_same_v<T, BalloonUpdate>) {
                return patch_balloon(r);
            } else if constexpr (std::is_same_v<T, GetBalloon>) {
                return get_balloon();
            } else if constexpr (std::is_same_v<T, GetBalloonStats>) {
                return get_balloon_stats();
            } else if constexpr (std::is_same_v<T, BalloonStatsUpdate>) {
                return patch_balloon_stats(r);
            }
        },
        request);
}

ApiResponse VmmController::start_instance() {
    auto config = machine_config_from(m_config, m_options.boot_timer);
    if (!config) {
        return ApiResponse::bad_request(config.error().message());
    }
    // Before anything is built: a kernel or initrd that cannot fit costs no allocation.
    if (auto fits = loader::check_boot_files(config->kernel_path, config->initrd_path,
                                             layout::e820_map(config->memory));
        !fits) {
        return ApiResponse::failure(fits.error().wrap("InstanceStart"));
    }
    if (m_options.boot_timer) {
        config->boot_timer_start = m_options.process_start;
    }
    auto machine = Machine::create(m_accel, *config, m_console);
    if (!machine) {
        return ApiResponse::failure(machine.error().wrap("InstanceStart"));
    }
    m_machine = std::move(machine.value());
    m_state = InstanceState::Running;
    spdlog::info("instance {}: started: {} vCPUs, {} MiB, {} disks, {} NICs, kernel {}",
                 m_options.id, config->cpus, config->memory >> 20, config->disks.size(),
                 config->nets.size(), config->kernel_path);
    start_machine_thread();
    return ApiResponse::no_content();
}

void VmmController::start_machine_thread() {
    m_machine_thread = seccomp::spawn(seccomp::ThreadKind::Machine, [this] {
        MachineExit exit = m_machine->run();
        m_exit = exit;
        m_wake.signal();
    });
}

ApiResponse VmmController::set_state(VmStateRequest state) {
    if (m_state == InstanceState::NotStarted) {
        return ApiResponse::bad_request(not_allowed("PATCH /vm", m_state));
    }
    if (state == VmStateRequest::Paused) {
        if (auto r = m_machine->pause(); !r) {
            return ApiResponse::failure(r.error().wrap("pause"));
        }
        m_state = InstanceState::Paused;
        spdlog::info("instance {}: paused", m_options.id);
    } else {
        if (auto r = m_machine->resume(); !r) {
            return ApiResponse::failure(r.error().wrap("resume"));
        }
        m_state = InstanceState::Running;
        spdlog::info("instance {}: resumed", m_options.id);
    }
    return ApiResponse::no_content();
}

Result<void> VmmController::open_metrics(const std::string& path) {
    auto fd = open_output_stream(path);
    if (!fd) {
        return fd.error().wrap("metrics path " + path);
    }
    m_metrics_fd = std::move(fd).value();
    m_options.metrics_path = path;
    seccomp::report_to_metrics_file(path);  // a violation's last metrics line goes there too
    return ok();
}

void VmmController::write_metrics(const char* reason) {
    if (!m_metrics_fd.valid()) {
        return;
    }
    // logger: Firecracker's names; a line the destination did not take (full pipe) counts next.
    std::string line = fmt::format(
        R"({{"utc_timestamp_ms":{},"reason":"{}","id":"{}","api_server":{{"requests":{},"failures":{}}},"logger":{{"missed_metrics_count":{},"missed_log_count":{}}},"seccomp":{{"num_faults":{}}})",
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count(),
        reason, m_options.id, m_api_requests, m_api_failures, m_missed_metrics, missed_log_lines(),
        seccomp::num_faults());
    // Guest console bytes the host side did not take (a stdout nobody reads).
    line += fmt::format(R"(,"console":{{"dropped_bytes":{}}})", m_console.dropped_output_bytes());
    if (m_machine) {
        line += "," + m_machine->metrics_json();
    }
    line += "}\n";
    if (write_nonblocking(m_metrics_fd.get(), line.data(), line.size()) != line.size()) {
        ++m_missed_metrics;
    }
}

}  // namespace vireo
