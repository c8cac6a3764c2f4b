// vireo: a virtual machine monitor for Linux guests.
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "app/probe_command.h"
#include "app/run_command.h"

int main(int argc, char** argv) {
    CLI::App app{"vireo: a virtual machine monitor for Linux guests on KVM", "vireo"};
    app.set_version_flag("--version", std::string("vireo ") + VIREO_VERSION);
    app.require_subcommand(1);

    vireo::app::RunOptions run_opts;
    auto* run = vireo::app::add_run_command(app, run_opts);

    vireo::app::ProbeCommandOptions probe_opts;
    auto* probe = app.add_subcommand(
        "probe", "Run synthetic probe guests on /dev/kvm and report what the vCPU core saw");
    probe->add_option("--device", probe_opts.device, "KVM device node")->capture_default_str();
    probe
        ->add_option("--user-loop", probe_opts.user_loop_iterations,
                     "Iterations of the user-mode (CPL3) loop")
        ->capture_default_str()
        ->check(CLI::Range(1ULL, 1ULL << 40));

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help, --version
    } catch (const CLI::ParseError& e) {
        // CLI11's messages name the option ("--cpus: Value 0 not in range [1 - 254]").
        fmt::print(stderr, "vireo: error: {}\nRun 'vireo --help' or 'vireo run --help'.\n",
                   e.what());
        return vireo::app::kExitUsage;
    }

    if (run->parsed()) {
        return vireo::app::run_command(run_opts);
    }
    if (probe->parsed()) {
        return vireo::app::run_probe_command(probe_opts);
    }
    return 0;
}
