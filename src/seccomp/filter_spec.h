// A seccomp policy as Firecracker's seccompiler describes it (docs/seccompiler.md there): per
// thread category, a default action, the action for matching rules, and rules (a syscall and
// and-bound argument conditions; rules are or-bound). Validated by filter_parser.cpp, compiled to
// BPF by filter_compiler.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "seccomp/thread_kind.h"

namespace vireo::seccomp {

struct Action {
    enum class Kind : std::uint8_t { Allow, Trap, KillProcess, KillThread, Log, Errno, Trace };
    Kind kind = Kind::Trap;
    std::uint32_t value = 0;  // the errno for Errno, the tracer's message for Trace

    friend bool operator==(const Action&, const Action&) = default;
};

enum class ArgWidth : std::uint8_t { Dword, Qword };
enum class CmpOp : std::uint8_t { Eq, Ne, Lt, Le, Gt, Ge, MaskedEq };

// Argument `index` (0-5) compared with `val`: for MaskedEq, (arg & mask) == val. A dword
// condition compares the argument's low 32 bits (x86-64 passes 32-bit values zero-extended).
struct ArgCondition {
    unsigned index = 0;
    ArgWidth width = ArgWidth::Qword;
    CmpOp op = CmpOp::Eq;
    std::uint64_t mask = 0;
    std::uint64_t val = 0;
};

struct Rule {
    std::string syscall;
    int number = -1;  // on this architecture
    std::vector<ArgCondition> args;
    // vireo's extension: this rule's own action instead of the filter's filter_action (e.g.
    // clone3 answered ENOSYS so that glibc falls back to clone, whose flags a filter can check).
    std::optional<Action> action;
};

struct Filter {
    Action default_action{Action::Kind::Trap, 0};
    Action filter_action{Action::Kind::Allow, 0};
    std::vector<Rule> rules;
};

// One filter per thread kind a file names; a kind it leaves out keeps the built-in filter.
struct FilterSet {
    std::array<std::optional<Filter>, kThreadKindCount> filters;

    const std::optional<Filter>& operator[](ThreadKind k) const {
        return filters[static_cast<std::size_t>(k)];
    }
    std::optional<Filter>& operator[](ThreadKind k) { return filters[static_cast<std::size_t>(k)]; }
};

}  // namespace vireo::seccomp
