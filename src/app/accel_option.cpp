#include "app/accel_option.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace vireo::app {

void add_accel_option(CLI::App& app, std::string& accel) {
    app.add_option("--accel", accel,
                   "Accelerator: kvm (default), soft (vireo's software x86-64 CPU) or auto "
                   "(KVM when /dev/kvm opens, else soft)")
        ->check(CLI::IsMember({"kvm", "soft", "auto"}));
}

Result<OpenedAccelerator> open_accel_option(const std::string& accel, const char* who,
                                            const char* kvm_device) {
    auto kind = parse_accel_kind(accel.empty() ? "kvm" : accel);
    if (!kind) {
        return kind.error();
    }
    auto opened = open_accelerator(*kind, kvm_device);
    if (opened && *kind == AccelKind::Auto) {
        fmt::print(stderr, "{}: --accel auto: {} ({})\n", who, to_string(opened->kind),
                   opened->reason);
    }
    return opened;
}

}  // namespace vireo::app
