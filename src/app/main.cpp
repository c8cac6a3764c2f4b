// vireo: a virtual machine monitor for Linux guests.
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "app/probe_command.h"

int main(int argc, char** argv) {
    CLI::App app{"vireo: a virtual machine monitor for Linux guests on KVM", "vireo"};
    app.set_version_flag("--version", std::string("vireo ") + VIREO_VERSION);
    app.require_subcommand(1);

    vireo::app::ProbeCommandOptions probe_opts;
    auto* probe = app.add_subcommand(
        "probe", "Run synthetic probe guests on /dev/kvm and report what the vCPU core saw");
    probe->add_option("--device", probe_opts.device, "KVM device node")->capture_default_str();
    probe
        ->add_option("--user-loop", probe_opts.user_loop_iterations,
                     "Iterations of the user-mode (CPL3) loop")
        ->capture_default_str()
        ->check(CLI::Range(1ULL, 1ULL << 40));

    CLI11_PARSE(app, argc, argv);

    if (probe->parsed()) {
        return vireo::app::run_probe_command(probe_opts);
    }
    return 0;
}
