// `--no-seccomp` and `--seccomp-filter FILE`, Firecracker's flags, for `vireo --api-sock ...`,
// `vireo run` and `vireo snapshot load`.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace vireo::app {

struct SeccompCliOptions {
    bool no_seccomp = false;
    std::string filter_file;
};

void add_seccomp_options(CLI::App& app, SeccompCliOptions& options);

// Loads the filters and starts confinement (seccomp::load, seccomp::start), after the caller
// blocked the signals every thread should block. Prints what went wrong and returns the exit
// status for it (usage for a bad filter file), or 0.
int start_seccomp(const SeccompCliOptions& options);

}  // namespace vireo::app
