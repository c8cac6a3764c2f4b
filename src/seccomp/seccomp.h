// Per-thread seccomp confinement (issue 11 §2), as Firecracker does it: every vireo thread
// installs the filter of its kind (thread_kind.h) itself when it starts, before it touches guest
// input or API requests, with PR_SET_NO_NEW_PRIVS. A forbidden system call traps: the SIGSYS
// handler reports the thread kind and the call (stderr, the log file, a metrics line with
// seccomp.num_faults) and the process exits with status 148, Firecracker's "bad syscall" code.
//
// Inheritance: a thread inherits its creator's filter, and filters only stack (a call must pass
// every filter of the thread). So threads are not started by whoever wants one but by one
// launcher thread, started first and confined to the union of all filters; a vCPU that
// activates a device therefore needs no clone or mmap of its own, and each thread ends up with
// exactly its own kind's filter. Threads that libraries start (the HTTP server's workers)
// inherit their starter's filter.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "base/result.h"
#include "seccomp/filter_spec.h"
#include "seccomp/thread_kind.h"

namespace vireo::seccomp {

// Firecracker's exit status for a forbidden system call (FcExitCode::BadSyscall).
inline constexpr int kExitBadSyscall = 148;

struct Options {
    bool enabled = true;      // --no-seccomp turns it off
    std::string filter_file;  // --seccomp-filter: replaces the built-in filters it names
};

// Reads and compiles the filters (the built-in ones, with those of options.filter_file in
// their place). Errors are the filter file's (a usage error). Nothing is installed yet.
Result<void> load(const Options& options);
// Installs the SIGSYS handler and starts the launcher (confined at once). On the main thread,
// after load(), before it starts any other thread and after it blocked the signals every thread
// should block (the launcher's mask is what every thread inherits). Without load() and start()
// (unit tests, `vireo-probe`) or when disabled, spawn() starts plain threads and
// confine_thread() does nothing.
Result<void> start();
bool enabled();

// Installs `kind`'s filter on the calling thread. The main thread calls it for Vmm once it has
// done what only start-up does; spawn()ed threads call it themselves.
Result<void> confine_thread(ThreadKind kind);

// Starts `body` on a new thread (by the launcher) that installs `kind`'s filter first. Throws
// std::system_error like std::thread when no thread can be created.
std::thread spawn(ThreadKind kind, std::function<void()> body);

// The built-in filters (filters/x86_64.json, compiled in) and the effective ones: the built-in
// filters with the file's in place of those it names, and the launcher's union.
const FilterSet& builtin_filters();
Result<FilterSet> effective_filters(const Options& options);

// Where a violation is reported besides stderr: the log file and the metrics file (appended to,
// opened now because the SIGSYS handler may not open files). Empty paths stop reporting there.
void report_to_log_file(const std::string& path);
void report_to_metrics_file(const std::string& path);
// Violations reported so far: 0 in a running process (the first one ends it), for the metrics.
std::uint64_t num_faults();

}  // namespace vireo::seccomp
