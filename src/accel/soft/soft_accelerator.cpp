#include "accel/soft/soft_accelerator.h"

#include "accel/soft/cpuid_model.h"
#include "accel/soft/soft_vm.h"

namespace vireo {

Result<std::unique_ptr<Vm>> SoftAccelerator::create_vm(const VmOptions& options) {
    return std::unique_ptr<Vm>(std::make_unique<soft::SoftVm>(options.irqchip));
}

Result<std::vector<CpuidEntry>> SoftAccelerator::supported_cpuid() {
    return soft::cpuid_model();
}

}  // namespace vireo
