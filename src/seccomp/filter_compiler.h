// Compiles filter_spec.h filters to classic BPF with libseccomp, ahead of time: a thread installs
// its program with two system calls (prctl, seccomp) and no allocation or kernel probing, which
// libseccomp's own seccomp_load() would do on a thread whose parent's filter may forbid it.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "base/result.h"
#include "seccomp/filter_spec.h"

namespace vireo::seccomp {

struct BpfProgram {
    std::vector<sock_filter> code;
};

// Errors name the rule libseccomp refused.
Result<BpfProgram> compile_filter(const Filter& filter);

// The number of distinct system calls `filter` lets through (rules whose action is allow or log).
std::size_t allowed_syscall_count(const Filter& filter);

}  // namespace vireo::seccomp
