#include "app/seccomp_options.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "app/run_command.h"
#include "seccomp/seccomp.h"

namespace vireo::app {

void add_seccomp_options(CLI::App& app, SeccompCliOptions& o) {
    auto* off = app.add_flag("--no-seccomp", o.no_seccomp,
                             "Run without seccomp filters (every thread is filtered by default)");
    app.add_option("--seccomp-filter", o.filter_file,
                   "Seccomp filters in Firecracker's seccompiler JSON format, in place of the "
                   "built-in ones for the thread categories the file names")
        ->excludes(off);
}

int start_seccomp(const SeccompCliOptions& o) {
    seccomp::Options options;
    options.enabled = !o.no_seccomp;
#if defined(__SANITIZE_ADDRESS__)
    // LeakSanitizer's check at exit (a tracer that ptraces every thread) cannot run under the
    // filters: sanitizer builds confine only when a filter file asks for it.
    options.enabled = options.enabled && !o.filter_file.empty();
#endif
    options.filter_file = o.filter_file;
    if (auto r = seccomp::load(options); !r) {
        fmt::print(stderr, "vireo: {}\n", r.error().message());
        return kExitUsage;
    }
    if (auto r = seccomp::start(); !r) {
        fmt::print(stderr, "vireo: {}\n", r.error().message());
        return kExitError;
    }
    return 0;
}

}  // namespace vireo::app
