// vireo: a virtual machine monitor for Linux guests.
#include <pthread.h>

#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "app/accel_option.h"
#include "app/migrate_command.h"
#include "app/run_command.h"
#include "app/snapshot_command.h"
#include "app/vmm_command.h"

namespace {

// vireo's threads (vCPUs, console input, signals) need little stack. glibc's default is 8 MiB, and
// on hosts with transparent huge pages "always" a first touch of such a stack can fault in a 2 MiB
// huge page: 2 MiB of RSS per thread for nothing. 1 MiB stacks never contain an aligned 2 MiB
// range.
void set_default_thread_stack() {
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) == 0) {
        if (pthread_attr_setstacksize(&attr, 1024 * 1024) == 0) {
            static_cast<void>(pthread_setattr_default_np(&attr));
        }
        pthread_attr_destroy(&attr);
    }
}

}  // namespace

int main(int argc, char** argv) {
    set_default_thread_stack();
    CLI::App app{"vireo: a virtual machine monitor for Linux guests on KVM", "vireo"};
    app.set_version_flag("--version", std::string("vireo ") + VIREO_VERSION);
    // `vireo run ...`, `vireo snapshot ...`, or Firecracker's flags with no subcommand.
    app.require_subcommand(0, 1);
    vireo::app::VmmCommandOptions vmm_opts;
    vireo::app::add_vmm_options(app, vmm_opts);

    vireo::app::RunOptions run_opts;
    auto* run = vireo::app::add_run_command(app, run_opts);

    vireo::app::SnapshotCommandOptions snapshot_opts;
    const auto snapshot = vireo::app::add_snapshot_command(app, snapshot_opts);

    vireo::app::MigrateCommandOptions migrate_opts;
    const auto migrate = vireo::app::add_migrate_command(app, migrate_opts);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help, --version
    } catch (const CLI::ParseError& e) {
        // CLI11's messages name the option ("--cpus: Value 0 not in range [1 - 254]").
        fmt::print(stderr, "vireo: error: {}\nRun 'vireo --help' or 'vireo run --help'.\n",
                   e.what());
        return vireo::kExitUsage;
    }

    if (run->parsed()) {
        return vireo::app::run_command(run_opts);
    }
    if (snapshot.top->parsed()) {
        return vireo::app::run_snapshot_command(snapshot, snapshot_opts);
    }
    if (migrate.top->parsed()) {
        return vireo::app::run_migrate_command(migrate, migrate_opts);
    }
    if (vireo::app::vmm_options_given(app)) {
        return vireo::app::run_vmm_command(vmm_opts);
    }
    fmt::print(stderr,
               "vireo: error: say what to run: `vireo run ...` (a guest from the command line) "
               "or `vireo --api-sock PATH` (the Firecracker-compatible API).\n"
               "Run 'vireo --help'.\n");
    return vireo::kExitUsage;
}
