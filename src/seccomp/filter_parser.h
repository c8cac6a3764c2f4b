// Reads seccomp filters in Firecracker's seccompiler JSON format (docs/seccompiler.md there):
//
//   { "vcpu": { "default_action": "trap", "filter_action": "allow",
//               "filter": [ { "syscall": "ioctl", "comment": "...",
//                             "args": [ { "index": 1, "type": "dword", "op": "eq",
//                                         "val": 44672, "comment": "KVM_RUN" } ] } ] },
//     "api": {...}, ... }
//
// Categories are thread kinds (thread_kind.h). Actions: "allow", "trap", "kill_process",
// "kill_thread", "kill" (= kill_process), "log", {"errno": N}, {"trace": N}. Ops: "eq", "ne",
// "lt", "le", "gt", "ge", {"masked_eq": MASK}. vireo's one extension: a rule may carry its own
// "action". Everything else is an error naming the place: unknown categories, fields, syscalls
// (for x86-64) and ops, values out of range, duplicate keys.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "seccomp/filter_spec.h"

namespace vireo::seccomp {

Result<FilterSet> parse_filters(std::string_view json_text);
// Reads and parses FILE; errors start with the path.
Result<FilterSet> load_filter_file(const std::string& path);

}  // namespace vireo::seccomp
