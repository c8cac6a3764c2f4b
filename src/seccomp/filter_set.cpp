// Which filters apply: the built-in set (filters/x86_64.json, compiled in), a user's filter file
// over it (--seccomp-filter), the sanitizer runtime's own calls in ASan builds, and the
// launcher's filter, the union of every kind's plus starting threads.
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <cerrno>

#include <cstdio>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "seccomp/filter_parser.h"
#include "seccomp/seccomp.h"

namespace vireo::seccomp {

extern const char kBuiltinFilterJson[];  // filters/x86_64.json, generated into the build

namespace {

// ---- The launcher's filter: every call any kind allows, plus starting threads.

Rule rule(const char* syscall, std::vector<ArgCondition> args = {},
          std::optional<Action> action = std::nullopt) {
    Rule r;
    r.syscall = syscall;
    r.number = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, syscall);
    r.args = std::move(args);
    r.action = action;
    return r;
}

ArgCondition arg_eq(unsigned index, std::uint64_t val) {
    return ArgCondition{index, ArgWidth::Dword, CmpOp::Eq, 0, val};
}

ArgCondition arg_masked(unsigned index, std::uint64_t mask, std::uint64_t val) {
    return ArgCondition{index, ArgWidth::Qword, CmpOp::MaskedEq, mask, val};
}

// How much an action lets a call do: the union takes the most permissive default of all kinds
// (a kind whose unlisted calls fail with an errno, or are only logged, must still get there).
int permissiveness(const Action& a) {
    switch (a.kind) {
        case Action::Kind::Allow:
            return 6;
        case Action::Kind::Log:
            return 5;
        case Action::Kind::Trace:
            return 4;
        case Action::Kind::Errno:
            return 3;
        case Action::Kind::Trap:
            return 2;
        case Action::Kind::KillThread:
            return 1;
        case Action::Kind::KillProcess:
            return 0;
    }
    return 0;
}

Filter launcher_filter(const FilterSet& set) {
    Filter u;
    u.default_action = Action{Action::Kind::Trap, 0};
    u.filter_action = Action{Action::Kind::Allow, 0};
    for (const auto& f : set.filters) {
        if (f && permissiveness(f->default_action) > permissiveness(u.default_action)) {
            u.default_action = f->default_action;
        }
    }
    // What the launcher does itself: wait for requests, create threads (glibc's pthread_create
    // maps and guards a stack and clones; clone3, whose flags a filter cannot see, is answered
    // ENOSYS so glibc falls back to clone, allowed only with CLONE_THREAD), and what a new thread
    // does before its own filter is in (robust futexes, rseq, its name, the filter itself).
    constexpr std::uint64_t kProtExec = 0x4;
    constexpr std::uint64_t kCloneThread = 0x10000;
    u.rules = {
        rule("futex"),
        rule("clone", {arg_masked(0, kCloneThread, kCloneThread)}),
        rule("clone3", {}, Action{Action::Kind::Errno, ENOSYS}),
        rule("mmap", {arg_masked(2, kProtExec, 0)}),
        rule("mprotect", {arg_masked(2, kProtExec, 0)}),
        rule("munmap"),
        rule("madvise"),
        rule("brk"),
        rule("rt_sigprocmask"),
        rule("rt_sigreturn"),
        rule("set_robust_list"),
        rule("rseq"),
        rule("gettid"),
        rule("prctl", {arg_eq(0, PR_SET_NAME)}),
        rule("prctl", {arg_eq(0, PR_SET_NO_NEW_PRIVS)}),
        rule("seccomp", {arg_eq(0, SECCOMP_SET_MODE_FILTER)}),
        rule("write"),
        rule("clock_gettime"),
        rule("exit"),
        rule("exit_group"),
    };
    if (u.default_action.kind == Action::Kind::Allow) {
        // A kind allows everything it does not list: so must the launcher, but for clone3.
        std::erase_if(u.rules, [](const Rule& r) { return !r.action; });
    }
    for (std::size_t i = 0; i < kThreadKindCount; ++i) {
        if (static_cast<ThreadKind>(i) == ThreadKind::Launcher || !set.filters[i]) {
            continue;
        }
        const Filter& f = *set.filters[i];
        for (const Rule& r : f.rules) {
            const Action a = r.action.value_or(f.filter_action);
            if ((a.kind == Action::Kind::Allow || a.kind == Action::Kind::Log) &&
                u.default_action.kind != Action::Kind::Allow) {
                Rule copy = r;
                copy.action.reset();
                u.rules.push_back(std::move(copy));
            }
        }
    }
    return u;
}

}  // namespace

const FilterSet& builtin_filters() {
    static const FilterSet set = [] {
        auto parsed = parse_filters(kBuiltinFilterJson);
        if (!parsed) {
            // A unit test parses it: this is a build that skipped its tests.
            fmt::print(stderr, "vireo: the built-in seccomp filter is broken: {}\n",
                       parsed.error().message());
            std::abort();
        }
        return std::move(parsed).value();
    }();
    return set;
}

// ASan/UBSan builds: the sanitizer runtime's own calls, in every filter: thread start and exit
// (alternate signal stacks, its allocator's mappings, a pipe to probe memory), reports
// (/proc/self/maps, the binary for symbols). Release builds never get these. LeakSanitizer's
// check at exit (a tracer process that ptraces every thread) does not run under the filters:
// sanitizer builds start with seccomp off unless asked (app/seccomp_options.cpp).
static void add_sanitizer_allowance([[maybe_unused]] FilterSet& set) {
#if defined(__SANITIZE_ADDRESS__)
    for (std::size_t i = 0; i < kThreadKindCount; ++i) {
        if (!set.filters[i] || set.filters[i]->default_action.kind == Action::Kind::Allow) {
            continue;
        }
        for (const char* sc : {"sigaltstack",
                               "sched_yield",
                               "getpid",
                               "gettid",
                               "prctl",
                               "openat",
                               "open",
                               "read",
                               "write",
                               "close",
                               "readlink",
                               "readlinkat",
                               "getdents64",
                               "fstat",
                               "newfstatat",
                               "statx",
                               "lseek",
                               "pread64",
                               "mmap",
                               "mprotect",
                               "munmap",
                               "madvise",
                               "mremap",
                               "rt_sigaction",
                               "rt_sigprocmask",
                               "sched_getaffinity",
                               "futex",
                               "kill",
                               "tgkill",
                               "exit",
                               "exit_group",
                               "uname",
                               "getrlimit",
                               "prlimit64",
                               "set_robust_list",
                               "rseq",
                               "pipe2",
                               "pipe"}) {
            set.filters[i]->rules.push_back(rule(sc));
        }
    }
#endif
}

Result<FilterSet> effective_filters(const Options& options) {
    FilterSet set = builtin_filters();
    if (!options.filter_file.empty()) {
        auto file = load_filter_file(options.filter_file);
        if (!file) {
            return file.error();
        }
        for (std::size_t i = 0; i < kThreadKindCount; ++i) {
            if (file->filters[i]) {
                set.filters[i] = std::move(file->filters[i]);
            }
        }
    }
    add_sanitizer_allowance(set);
    set[ThreadKind::Launcher] = launcher_filter(set);
    return set;
}

}  // namespace vireo::seccomp
