#include "seccomp/filter_parser.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "seccomp/filter_compiler.h"
#include "seccomp/seccomp.h"

namespace vireo::seccomp {
namespace {

// A one-category file with the given rules.
std::string file_with(const std::string& rules, const std::string& category = "vcpu") {
    return R"({")" + category +
           R"(": {"default_action": "trap", "filter_action": "allow", "filter": [)" + rules + "]}}";
}

std::string error_of(const std::string& json) {
    auto r = parse_filters(json);
    return r ? std::string("(parsed)") : r.error().message();
}

TEST(FilterParser, ReadsFirecrackersFormat) {
    // Shaped like Firecracker's resources/seccomp files: comments, dword/qword, masked_eq.
    auto r = parse_filters(R"({
      "vmm": {"default_action": "trap", "filter_action": "allow",
              "filter": [{"syscall": "read"}, {"syscall": "futex", "comment": "locks"}]},
      "api": {"default_action": {"errno": 1}, "filter_action": "log", "filter": []},
      "vcpu": {"default_action": "kill_process", "filter_action": "allow", "filter": [
        {"syscall": "ioctl", "args": [
          {"index": 1, "type": "dword", "op": "eq", "val": 44672, "comment": "KVM_RUN"}]},
        {"syscall": "mmap", "args": [
          {"index": 2, "type": "dword", "op": {"masked_eq": 4}, "val": 0},
          {"index": 3, "type": "qword", "op": "ne", "val": 18446744073709551615}]},
        {"syscall": "clone3", "action": {"errno": 38}}]}
    })");
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_TRUE((*r)[ThreadKind::Vmm]);
    EXPECT_EQ((*r)[ThreadKind::Vmm]->rules.size(), 2U);
    ASSERT_TRUE((*r)[ThreadKind::Api]);
    EXPECT_EQ((*r)[ThreadKind::Api]->default_action, (Action{Action::Kind::Errno, 1}));
    EXPECT_EQ((*r)[ThreadKind::Api]->filter_action.kind, Action::Kind::Log);
    const auto& vcpu = *(*r)[ThreadKind::Vcpu];
    EXPECT_EQ(vcpu.default_action.kind, Action::Kind::KillProcess);
    ASSERT_EQ(vcpu.rules.size(), 3U);
    EXPECT_EQ(vcpu.rules[0].syscall, "ioctl");
    EXPECT_EQ(vcpu.rules[0].number, 16);
    ASSERT_EQ(vcpu.rules[0].args.size(), 1U);
    EXPECT_EQ(vcpu.rules[0].args[0].index, 1U);
    EXPECT_EQ(vcpu.rules[0].args[0].width, ArgWidth::Dword);
    EXPECT_EQ(vcpu.rules[0].args[0].op, CmpOp::Eq);
    EXPECT_EQ(vcpu.rules[0].args[0].val, 44672U);
    EXPECT_EQ(vcpu.rules[1].args[0].op, CmpOp::MaskedEq);
    EXPECT_EQ(vcpu.rules[1].args[0].mask, 4U);
    EXPECT_EQ(vcpu.rules[1].args[1].val, UINT64_MAX);
    EXPECT_EQ(vcpu.rules[2].action, (Action{Action::Kind::Errno, 38}));
    EXPECT_FALSE((*r)[ThreadKind::VirtioBlk]);  // left out: keeps the built-in filter
}

TEST(FilterParser, AcceptsEveryVireoCategory) {
    for (std::size_t i = 0; i < kThreadKindCount; ++i) {
        const auto kind = static_cast<ThreadKind>(i);
        if (kind == ThreadKind::Launcher) {
            continue;
        }
        auto r = parse_filters(file_with(R"({"syscall": "read"})", std::string(name(kind))));
        EXPECT_TRUE(r) << name(kind) << ": " << r.error().message();
    }
}

TEST(FilterParser, NamesTheProblem) {
    EXPECT_EQ(error_of(file_with(R"({"syscall": "iocl"})")),
              "vcpu.filter[0]: unknown system call 'iocl'");
    EXPECT_EQ(error_of(file_with(R"({"syscall": "socketcall"})")),
              "vcpu.filter[0]: system call 'socketcall' does not exist on x86-64");
    EXPECT_EQ(error_of(file_with(R"({"syscall": "read"})", "vcpus"))
                  .rfind("unknown thread category 'vcpus' (expected vmm, api, vcpu, machine", 0),
              0U);
    EXPECT_NE(error_of(file_with(R"({"syscall": "read"})", "launcher")).find("cannot be given"),
              std::string::npos);
    EXPECT_EQ(
        error_of(file_with(
            R"({"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "equals", "val": 1}]})")),
        "vcpu.filter[0] (ioctl).args[0].op: bad op \"equals\" (expected \"eq\", \"ne\", "
        "\"lt\", \"le\", \"gt\", \"ge\" or {\"masked_eq\": MASK})");
    EXPECT_EQ(
        error_of(file_with(
            R"({"syscall": "ioctl", "args": [{"index": 6, "type": "dword", "op": "eq", "val": 1}]})")),
        "vcpu.filter[0] (ioctl).args[0].index: a system call has arguments 0 to 5, got 6");
    EXPECT_EQ(
        error_of(file_with(
            R"({"syscall": "ioctl", "args": [{"index": 1, "type": "word", "op": "eq", "val": 1}]})")),
        "vcpu.filter[0] (ioctl).args[0].type: \"word\" is not \"dword\" or \"qword\"");
    EXPECT_EQ(
        error_of(file_with(
            R"({"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "eq", "val": 4294967296}]})")),
        "vcpu.filter[0] (ioctl).args[0].val: 4294967296 does not fit a dword (32 bits)");
    EXPECT_EQ(
        error_of(file_with(
            R"({"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "eq", "val": -1}]})")),
        "vcpu.filter[0] (ioctl).args[0].val: expected a non-negative integer, got -1");
    EXPECT_EQ(error_of(file_with(
                  R"({"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "eq"}]})")),
              "vcpu.filter[0] (ioctl).args[0]: missing 'val'");
    EXPECT_EQ(
        error_of(file_with(
            R"({"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "eq", "val": 1, "arg": 2}]})")),
        "vcpu.filter[0] (ioctl).args[0]: unknown field 'arg' (expected index, type, op, val, "
        "comment)");
    EXPECT_EQ(
        error_of(file_with(
            R"({"syscall": "mmap", "args": [{"index": 2, "type": "dword", "op": {"masked_eq": 4}, "val": 8}]})")),
        "vcpu.filter[0] (mmap).args[0]: val 0x8 has bits outside the mask 0x4: never matches");
    EXPECT_EQ(
        error_of(file_with(
            R"({"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "eq", "val": 1}, {"index": 1, "type": "dword", "op": "eq", "val": 2}]})")),
        "vcpu.filter[0] (ioctl).args[1]: argument 1 is already compared in this rule (one "
        "condition per argument; write another rule for an alternative)");
    EXPECT_EQ(error_of(file_with(R"({"sycall": "read"})")),
              "vcpu.filter[0]: unknown field 'sycall' (expected syscall, args, comment, action)");
    EXPECT_EQ(
        error_of(R"({"vcpu": {"default_action": "deny", "filter_action": "allow", "filter": []}})"),
        "vcpu.default_action: bad action \"deny\" (expected \"allow\", \"trap\", "
        "\"kill_process\", \"kill_thread\", \"kill\", \"log\", {\"errno\": N} or "
        "{\"trace\": N})");
    EXPECT_EQ(error_of(R"({"vcpu": {"default_action": "trap", "filter": []}})"),
              "vcpu: missing 'filter_action'");
    EXPECT_EQ(
        error_of(
            R"({"vcpu": {"default_action": "allow", "filter_action": "allow", "filter": [{"syscall": "read"}]}})"),
        "vcpu.filter[0] (read): its action is the default action, so the rule would do "
        "nothing");
    EXPECT_EQ(
        error_of(
            R"({"vcpu": {"default_action": {"errno": 5000}, "filter_action": "allow", "filter": []}})"),
        "vcpu.default_action.errno: 5000 is larger than 4095");
    EXPECT_EQ(error_of(R"({"vcpu": {}, "vcpu": {}})"), "duplicate key 'vcpu'");
    EXPECT_EQ(error_of("[]"),
              "expected an object of thread categories (vmm, api, vcpu, machine, "
              "signal, console_input, console_output, virtio_blk, virtio_net, virtio_console, "
              "virtio_rng, virtio_balloon, block_io, migration), got array");
    EXPECT_EQ(error_of("{}").rfind("no thread categories", 0), 0U);
    EXPECT_EQ(error_of(R"({"vcpu": )").rfind("not valid JSON: ", 0), 0U);
}

TEST(FilterParser, FileErrorsNameThePath) {
    auto missing = load_filter_file("/nonexistent/filter.json");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message().rfind("seccomp filter /nonexistent/filter.json: ", 0), 0U);

    char path[] = "/tmp/vireo-filter-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    const std::string text = file_with(R"({"syscall": "iocl"})");
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    auto bad = load_filter_file(path);
    ::unlink(path);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message(), std::string("seccomp filter ") + path +
                                         ": vcpu.filter[0]: unknown system call 'iocl'");
}

// The filters compiled into vireo: every thread kind has one, each compiles, and the launcher's
// (the union) lets through every call any other kind allows.
TEST(BuiltinFilters, CoverEveryThreadKindAndCompile) {
    auto set = effective_filters(Options{});
    ASSERT_TRUE(set) << set.error().message();
    for (std::size_t i = 0; i < kThreadKindCount; ++i) {
        const auto kind = static_cast<ThreadKind>(i);
        ASSERT_TRUE(set->filters[i]) << name(kind);
        EXPECT_EQ(set->filters[i]->default_action.kind, Action::Kind::Trap) << name(kind);
        EXPECT_EQ(allowed_syscall_count(*set->filters[i]) == 0, false) << name(kind);
        auto program = compile_filter(*set->filters[i]);
        ASSERT_TRUE(program) << name(kind) << ": " << program.error().message();
        EXPECT_GT(program->code.size(), 10U) << name(kind);
    }
    const std::size_t launcher = allowed_syscall_count(*(*set)[ThreadKind::Launcher]);
    for (std::size_t i = 0; i < kThreadKindCount; ++i) {
        EXPECT_LE(allowed_syscall_count(*set->filters[i]), launcher);
    }
    // A vCPU needs no file, thread or socket of its own (devices start through the launcher).
    const Filter& vcpu = *builtin_filters()[ThreadKind::Vcpu];
    for (const Rule& r : vcpu.rules) {
        EXPECT_NE(r.syscall, "openat");
        EXPECT_NE(r.syscall, "clone");
        EXPECT_NE(r.syscall, "clone3");
        EXPECT_NE(r.syscall, "socket");
        EXPECT_NE(r.syscall, "execve");
    }
}

}  // namespace
}  // namespace vireo::seccomp
