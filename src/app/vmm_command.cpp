#include "app/vmm_command.h"

#include <signal.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "api/api_server.h"
#include "api/config_file.h"
#include "app/accel_option.h"
#include "app/run_command.h"
#include "backends/char/console.h"
#include "seccomp/seccomp.h"
#include "vmm/log_setup.h"
#include "vmm/vmm_controller.h"

namespace vireo::app {

namespace {

constexpr const char* kVmmFlags[] = {"--api-sock",     "--config-file",    "--no-api",
                                     "--id",           "--log-path",       "--level",
                                     "--metrics-path", "--boot-timer",     "--enable-pci",
                                     "--no-seccomp",   "--seccomp-filter", "--accel"};

}  // namespace

void add_vmm_options(CLI::App& app, VmmCommandOptions& o) {
    app.add_option("--api-sock", o.api_sock, "Path of the API's Unix socket")
        ->capture_default_str();
    app.add_option("--config-file", o.config_file,
                   "Start the VM from a Firecracker JSON configuration file");
    app.add_flag("--no-api", o.no_api, "No API socket (needs --config-file)");
    add_accel_option(app, o.accel);
    app.add_option("--id", o.id, "Instance id (GET /, metrics)")->capture_default_str();
    app.add_option("--log-path", o.log_path, "Write the log to this file");
    app.add_option("--level", o.level, "Log level: Error, Warning, Info, Debug, Trace, Off")
        ->check(
            CLI::IsMember({"Error", "Warning", "Info", "Debug", "Trace", "Off"}, CLI::ignore_case));
    app.add_option("--metrics-path", o.metrics_path, "Write metrics (JSON lines) to this file");
    app.add_flag("--boot-timer", o.boot_timer,
                 "Log the time from start to the guest's write to the boot-timer device");
    app.add_flag("--enable-pci", o.enable_pci, "Accepted for Firecracker compatibility");
    add_seccomp_options(app, o.seccomp);
}

bool vmm_options_given(const CLI::App& app) {
    for (const char* flag : kVmmFlags) {
        if (app.count(flag) > 0) {
            return true;
        }
    }
    return false;
}

namespace {

// "KEY=VALUE" into its halves; both must be non-empty.
bool split_pair(const std::string& text, std::string& key, std::string& value) {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
        return false;
    }
    key = text.substr(0, eq);
    value = text.substr(eq + 1);
    return true;
}

}  // namespace

bool parse_override_options(const std::vector<std::string>& networks,
                            const std::vector<std::string>& drives,
                            std::vector<NetworkOverride>& network_out,
                            std::vector<DriveOverride>& drive_out) {
    for (const auto& text : networks) {
        NetworkOverride n;
        if (!split_pair(text, n.iface_id, n.host_dev_name)) {
            fmt::print(stderr, "vireo: error: --network-override {}: expected IFACE=TAP\n", text);
            return false;
        }
        network_out.push_back(n);
    }
    for (const auto& text : drives) {
        DriveOverride d;
        if (!split_pair(text, d.drive_id, d.path_on_host)) {
            fmt::print(stderr, "vireo: error: --drive-override {}: expected DRIVE_ID=PATH\n", text);
            return false;
        }
        drive_out.push_back(d);
    }
    return true;
}

void add_incoming_vm_options(CLI::App& command, std::string& api_sock,
                             std::vector<std::string>& network_overrides,
                             std::vector<std::string>& drive_overrides, VmmCommandOptions& vmm) {
    command.add_option("--api-sock", api_sock, "Also serve the API on this socket");
    command.add_option("--network-override", network_overrides,
                       "IFACE=TAP: put interface IFACE on another tap");
    command.add_option("--drive-override", drive_overrides,
                       "DRIVE_ID=PATH: point drive DRIVE_ID at another image");
    command.add_option("--id", vmm.id, "Instance id")->capture_default_str();
    command.add_option("--log-path", vmm.log_path, "Write the log to this file");
    command.add_option("--metrics-path", vmm.metrics_path, "Write metrics to this file");
    add_seccomp_options(command, vmm.seccomp);
}

VmmCommandOptions with_api_socket(VmmCommandOptions vmm, const std::string& api_sock) {
    vmm.no_api = api_sock.empty();
    if (!api_sock.empty()) {
        vmm.api_sock = api_sock;
    }
    return vmm;
}

int run_vmm_command(const VmmCommandOptions& o, std::optional<SnapshotLoadParams> snapshot_load,
                    std::optional<MigrationReceiveParams> migration_receive) {
    const auto start = std::chrono::steady_clock::now();
    if (o.no_api && o.config_file.empty() && !snapshot_load && !migration_receive) {
        fmt::print(stderr, "vireo: error: --no-api needs --config-file\n");
        return kExitUsage;
    }
    VmmOptions options;
    options.id = o.id;
    options.metrics_path = o.metrics_path;
    options.boot_timer = o.boot_timer;
    options.process_start = start;
    options.snapshot_load = std::move(snapshot_load);
    options.migration_receive = std::move(migration_receive);
    if (!o.config_file.empty()) {
        auto config = load_config_file(o.config_file);
        if (!config) {
            fmt::print(stderr, "vireo: {}\n", config.error().message());
            return kExitUsage;
        }
        options.config = std::move(config.value());
    }
    if (!o.log_path.empty()) {
        if (auto r = log_to_file(o.log_path); !r) {
            fmt::print(stderr, "vireo: --log-path: {}\n", r.error().message());
            return kExitUsage;
        }
    }
    if (!o.level.empty()) {
        // CLI11 checked the name; spdlog's from_str would have read "Info" as "off".
        spdlog::set_level(parse_log_level(o.level).value_or(spdlog::level::info));
    }

    // Signals end the VM in order; blocked here so every thread inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
        sigaddset(&signals, s);
    }
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    if (const int status = start_seccomp(o.seccomp); status != 0) {
        return status;
    }

    auto console = open_console("stdio");
    if (!console) {
        fmt::print(stderr, "vireo: {}\n", console.error().message());
        return kExitError;
    }
    auto accel = open_accel_option(o.accel, "vireo");
    if (!accel) {
        fmt::print(stderr, "vireo: {}\n", accel.error().message());
        return kExitError;
    }
    auto controller = VmmController::create(*accel->accel, **console, std::move(options));
    if (!controller) {
        fmt::print(stderr, "vireo: {}\n", controller.error().message());
        return kExitError;
    }
    ApiServer server;
    if (!o.no_api) {
        if (auto r = server.start(o.api_sock, **controller); !r) {
            fmt::print(stderr, "vireo: {}\n", r.error().message());
            return kExitError;
        }
        spdlog::debug("API socket ready after {} us",
                      std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count());
    }
    // Once the API socket is bound (the API's requests are applied only inside run()), as
    // Firecracker's VMM thread after its set-up. Threads it starts from now on come from the
    // launcher.
    if (auto r = seccomp::confine_thread(seccomp::ThreadKind::Vmm); !r) {
        fmt::print(stderr, "vireo: {}\n", r.error().message());
        return kExitError;
    }
    std::atomic<bool> done{false};
    std::thread watcher = seccomp::spawn(seccomp::ThreadKind::Signal, [&] {
        const timespec tick{0, 100'000'000};
        while (!done.load()) {
            const int s = sigtimedwait(&signals, nullptr, &tick);
            if (s > 0 && !done.load()) {
                (*controller)->stop(fmt::format("stopped by SIG{}", sigabbrev_np(s)));
            }
        }
    });
    const int code = (*controller)->run();
    done = true;
    // Wake the watcher now rather than at its next tick: exit latency counts (VMs per second).
    pthread_kill(watcher.native_handle(), SIGHUP);
    watcher.join();
    server.stop();
    (*controller).reset();  // the VM (and its devices) before the console they write to
    (*console).reset();     // leaves raw mode
    return code;
}

}  // namespace vireo::app
