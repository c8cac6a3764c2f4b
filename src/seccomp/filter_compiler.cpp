#include "seccomp/filter_compiler.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace vireo::seccomp {

namespace {

std::uint32_t to_scmp(const Action& a) {
    switch (a.kind) {
        case Action::Kind::Allow:
            return SCMP_ACT_ALLOW;
        case Action::Kind::Trap:
            return SCMP_ACT_TRAP;
        case Action::Kind::KillProcess:
            return SCMP_ACT_KILL_PROCESS;
        case Action::Kind::KillThread:
            return SCMP_ACT_KILL_THREAD;
        case Action::Kind::Log:
            return SCMP_ACT_LOG;
        case Action::Kind::Errno:
            return SCMP_ACT_ERRNO(a.value);
        case Action::Kind::Trace:
            return SCMP_ACT_TRACE(a.value);
    }
    return SCMP_ACT_TRAP;
}

scmp_arg_cmp to_scmp(const ArgCondition& c) {
    // A dword condition ignores the argument's upper half: for eq and masked_eq through a
    // 32-bit mask (libseccomp compares 64 bits). The ordered comparisons compare 64 bits, which
    // is the same for the zero-extended 32-bit values x86-64 passes.
    const bool dword = c.width == ArgWidth::Dword;
    switch (c.op) {
        case CmpOp::Eq:
            return dword ? scmp_arg_cmp{c.index, SCMP_CMP_MASKED_EQ, 0xffffffffULL, c.val}
                         : scmp_arg_cmp{c.index, SCMP_CMP_EQ, c.val, 0};
        case CmpOp::MaskedEq:
            return scmp_arg_cmp{c.index, SCMP_CMP_MASKED_EQ,
                                dword ? c.mask & 0xffffffffULL : c.mask, c.val};
        case CmpOp::Ne:
            return scmp_arg_cmp{c.index, SCMP_CMP_NE, c.val, 0};
        case CmpOp::Lt:
            return scmp_arg_cmp{c.index, SCMP_CMP_LT, c.val, 0};
        case CmpOp::Le:
            return scmp_arg_cmp{c.index, SCMP_CMP_LE, c.val, 0};
        case CmpOp::Gt:
            return scmp_arg_cmp{c.index, SCMP_CMP_GT, c.val, 0};
        case CmpOp::Ge:
            return scmp_arg_cmp{c.index, SCMP_CMP_GE, c.val, 0};
    }
    return scmp_arg_cmp{c.index, SCMP_CMP_EQ, c.val, 0};
}

struct CtxDeleter {
    void operator()(void* ctx) const { seccomp_release(ctx); }
};

}  // namespace

Result<BpfProgram> compile_filter(const Filter& filter) {
    std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(to_scmp(filter.default_action)));
    if (!ctx) {
        return Error("libseccomp: cannot create a filter");
    }
    // System calls of another ABI (i386 int 0x80, x32) are refused like unlisted ones, but always
    // reported: a 64-bit vireo never makes them.
    const std::uint32_t bad_arch = filter.default_action.kind == Action::Kind::Allow
                                       ? SCMP_ACT_TRAP
                                       : to_scmp(filter.default_action);
    if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, bad_arch) != 0 ||
        seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0) != 0 ||
        // A binary tree over the syscall numbers: a vCPU's KVM_RUN passes a few dozen
        // instructions rather than a linear scan.
        seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2) != 0) {
        return Error("libseccomp: cannot set the filter's attributes");
    }
    for (const Rule& rule : filter.rules) {
        std::vector<scmp_arg_cmp> args;
        args.reserve(rule.args.size());
        for (const ArgCondition& c : rule.args) {
            args.push_back(to_scmp(c));
        }
        const int rc = seccomp_rule_add_array(
            ctx.get(), to_scmp(rule.action.value_or(filter.filter_action)), rule.number,
            static_cast<unsigned>(args.size()), args.empty() ? nullptr : args.data());
        // -EEXIST: the same rule twice (or a conditional one after an unconditional one), which
        // changes nothing.
        if (rc != 0 && rc != -EEXIST) {
            return Error(fmt::format("libseccomp refused the rule for '{}': {}", rule.syscall,
                                     std::strerror(-rc)),
                         -rc);
        }
    }
    UniqueFd fd(::memfd_create("vireo-seccomp", MFD_CLOEXEC));
    if (!fd.valid()) {
        return Error::from_errno("seccomp: memfd_create");
    }
    if (const int rc = seccomp_export_bpf(ctx.get(), fd.get()); rc != 0) {
        return Error(fmt::format("libseccomp: cannot export the filter: {}", std::strerror(-rc)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_size <= 0 ||
        st.st_size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
        return Error("libseccomp: exported a malformed filter");
    }
    BpfProgram program;
    program.code.resize(static_cast<std::size_t>(st.st_size) / sizeof(sock_filter));
    if (::pread(fd.get(), program.code.data(), static_cast<std::size_t>(st.st_size), 0) !=
        st.st_size) {
        return Error::from_errno("seccomp: reading the exported filter");
    }
    // The kernel takes at most BPF_MAXINSNS (4096) instructions per program.
    if (program.code.size() > BPF_MAXINSNS) {
        return Error(
            fmt::format("the filter compiles to {} BPF instructions, more than the "
                        "kernel's limit of {}",
                        program.code.size(), BPF_MAXINSNS));
    }
    return program;
}

std::size_t allowed_syscall_count(const Filter& filter) {
    std::set<int> allowed;
    for (const Rule& rule : filter.rules) {
        const Action a = rule.action.value_or(filter.filter_action);
        if (a.kind == Action::Kind::Allow || a.kind == Action::Kind::Log) {
            allowed.insert(rule.number);
        }
    }
    return allowed.size();
}

}  // namespace vireo::seccomp
