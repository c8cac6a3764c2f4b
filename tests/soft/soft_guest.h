// Helpers for soft-CPU tests: a probe guest on the soft accelerator and direct access to its
// interpreter.
#pragma once

#include <memory>

#include "accel/soft/soft_accelerator.h"
#include "accel/soft/soft_vcpu.h"
#include "accel/soft/soft_vm.h"
#include "probe/asm.h"
#include "probe/probe_guest.h"

namespace vireo::soft::test {

inline std::unique_ptr<probe::ProbeGuest> soft_guest(probe::CpuMode mode,
                                                     std::span<const std::uint8_t> code,
                                                     std::uint64_t ram = 2 * 1024 * 1024) {
    static SoftAccelerator accel;
    auto g = probe::ProbeGuest::create(accel, mode, code, ram);
    return g.ok() ? std::move(g).value() : nullptr;
}

inline SoftVcpu& soft_vcpu(probe::ProbeGuest& g) {
    return dynamic_cast<SoftVcpu&>(g.vcpu());
}

inline SoftVm& soft_vm(probe::ProbeGuest& g) {
    return dynamic_cast<SoftVm&>(g.vm());
}

}  // namespace vireo::soft::test
