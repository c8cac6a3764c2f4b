// vireo-jailer: starts vireo confined, with Firecracker's jailer flags (docs/jailer.md there).
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "jailer/jailer.h"
#include "jailer/jailer_options.h"

namespace {

constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
    vireo::jailer::JailerArgs a;
    CLI::App app{
        "vireo-jailer: runs vireo in a chroot jail (pivot_root into <chroot-base-dir>/<exec-file "
        "name>/<id>/root), in its own mount (and optionally PID and network) namespace and "
        "cgroup, with resource limits, as an unprivileged uid/gid.\nArguments after `--` go to "
        "the exec file, after `--id <id>`.",
        "vireo-jailer"};
    app.add_option("--id", a.id, "Unique instance id: letters, digits and '-', at most 64")
        ->required();
    app.add_option("--exec-file", a.exec_file, "The vireo binary to copy into the jail and run")
        ->required();
    app.add_option("--uid", a.uid, "User id to run the exec file as")->required();
    app.add_option("--gid", a.gid, "Group id to run the exec file as")->required();
    app.add_option("--chroot-base-dir", a.chroot_base_dir, "Folder the jails are built in")
        ->capture_default_str();
    app.add_option("--netns", a.netns,
                   "Network namespace to join: a path (/var/run/netns/NAME) or a NAME");
    app.add_option("--cgroup", a.cgroups,
                   "FILE=VALUE written in the instance's cgroup (repeatable), e.g. memory.max=256M")
        ->take_all()
        ->allow_extra_args(false);
    app.add_option("--cgroup-version", a.cgroup_version, "cgroup hierarchy version (only 2)")
        ->capture_default_str();
    app.add_option("--parent-cgroup", a.parent_cgroup,
                   "cgroup the instance's cgroup is created in (default: the exec file's name)");
    app.add_option("--resource-limit", a.resource_limits,
                   "fsize=BYTES or no-file=N (repeatable); no-file defaults to 2048")
        ->allow_extra_args(false);
    app.add_flag("--daemonize", a.daemonize, "setsid() and standard I/O to /dev/null");
    app.add_flag("--new-pid-ns", a.new_pid_ns,
                 "Run the exec file as PID 1 of a new PID namespace (its pid in /<exec>.pid)");
    app.add_option("vireo-args", a.exec_args, "Arguments for the exec file, after `--`");
    app.positionals_at_end();
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        fmt::print(stderr, "vireo-jailer: error: {}\nRun 'vireo-jailer --help'.\n", e.what());
        return kExitUsage;
    }
    auto config = vireo::jailer::parse_jailer_args(a);
    if (!config) {
        fmt::print(stderr, "vireo-jailer: error: {}\n", config.error().message());
        return kExitUsage;
    }
    return vireo::jailer::run_jailer(*config);
}
