// Choosing the accelerator: `--accel kvm|soft|auto` (issue 16). auto is KVM when /dev/kvm opens
// and passes KvmAccelerator's checks, else the soft CPU; the result says which and why.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "accel/vm.h"
#include "base/result.h"

namespace vireo {

enum class AccelKind { Kvm, Soft, Auto };

// "kvm", "soft" or "auto"; an Error names the valid choices.
Result<AccelKind> parse_accel_kind(std::string_view text);
std::string_view to_string(AccelKind kind);

struct OpenedAccelerator {
    std::unique_ptr<Accelerator> accel;
    AccelKind kind;      // Kvm or Soft: what was picked
    std::string reason;  // for Auto: why (e.g. "/dev/kvm: No such file or directory")
};

// Opens the accelerator `kind` asks for; `kvm_device` is /dev/kvm except in tests.
Result<OpenedAccelerator> open_accelerator(AccelKind kind, const char* kvm_device = "/dev/kvm");

}  // namespace vireo
