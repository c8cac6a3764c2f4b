// The soft accelerator: vireo's own x86-64 CPU (an interpreter for now), for hosts where KVM
// cannot serve. Implements the same seam as KvmAccelerator (DESIGN.md §2).
#pragma once

#include "accel/vm.h"

namespace vireo {

class SoftAccelerator final : public Accelerator {
public:
    const char* name() const override { return "soft"; }
    // VmOptions::irqchip gives the VM the userspace LAPICs and IOAPIC (soft_vm.h); there is no
    // 8259 PIC or 8254 PIT yet.
    Result<std::unique_ptr<Vm>> create_vm(const VmOptions& options) override;
    Result<std::vector<CpuidEntry>> supported_cpuid() override;
};

}  // namespace vireo
