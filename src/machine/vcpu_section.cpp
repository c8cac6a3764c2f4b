#include "machine/vcpu_section.h"

#include <fmt/format.h>

#include "accel/kvm/kvm_state_convert.h"

namespace vireo {

Result<VcpuState> load_vcpu_section(const SnapshotSection& section) {
    Result<VcpuState> state = Error("");
    switch (section.version) {
        case 1:
            state = kvm::load_vcpu_section_v1(section.data);
            break;
        case kVcpuSectionVersion:
            state = load_from_bytes<VcpuState>(section.data);
            break;
        default:
            return Error(fmt::format("section '{}' has version {}; this vireo reads 1 to {}",
                                     section.name, section.version, kVcpuSectionVersion));
    }
    if (!state) {
        return state.error().wrap(fmt::format("section '{}'", section.name));
    }
    return state;
}

}  // namespace vireo
