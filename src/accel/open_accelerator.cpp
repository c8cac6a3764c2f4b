#include "accel/open_accelerator.h"

#include <fmt/format.h>

#include "accel/kvm/kvm_accelerator.h"
#include "accel/soft/soft_accelerator.h"

namespace vireo {

Result<AccelKind> parse_accel_kind(std::string_view text) {
    if (text == "kvm") {
        return AccelKind::Kvm;
    }
    if (text == "soft") {
        return AccelKind::Soft;
    }
    if (text == "auto") {
        return AccelKind::Auto;
    }
    return Error(fmt::format("unknown accelerator '{}' (kvm, soft or auto)", text));
}

std::string_view to_string(AccelKind kind) {
    switch (kind) {
        case AccelKind::Kvm:
            return "kvm";
        case AccelKind::Soft:
            return "soft";
        default:
            return "auto";
    }
}

Result<OpenedAccelerator> open_accelerator(AccelKind kind, const char* kvm_device) {
    if (kind == AccelKind::Soft) {
        return OpenedAccelerator{std::make_unique<SoftAccelerator>(), AccelKind::Soft,
                                 "asked for soft"};
    }
    auto kvm = KvmAccelerator::open(kvm_device);
    if (kvm) {
        return OpenedAccelerator{std::move(kvm).value(), AccelKind::Kvm,
                                 fmt::format("{} opened", kvm_device)};
    }
    if (kind == AccelKind::Kvm) {
        return kvm.error();
    }
    return OpenedAccelerator{std::make_unique<SoftAccelerator>(), AccelKind::Soft,
                             fmt::format("KVM unusable ({}), using soft", kvm.error().message())};
}

}  // namespace vireo
