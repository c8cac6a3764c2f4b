// The KVM accelerator: /dev/kvm, its API version and capabilities.
#pragma once

#include <memory>

#include "accel/vm.h"
#include "base/unique_fd.h"

namespace vireo {

class KvmAccelerator final : public Accelerator {
public:
    // Opens /dev/kvm (or `device`) and checks KVM_GET_API_VERSION == 12 and the capabilities
    // vireo cannot run without.
    static Result<std::unique_ptr<KvmAccelerator>> open(const char* device = "/dev/kvm");

    const char* name() const override { return "kvm"; }
    Result<std::unique_ptr<Vm>> create_vm(const VmOptions& options) override;
    Result<std::vector<CpuidEntry>> supported_cpuid() override;

    // KVM_CHECK_EXTENSION on the system fd; 0 when absent.
    int check_extension(unsigned long cap) const;
    int system_fd() const { return m_fd.get(); }
    // KVM_GET_MSR_INDEX_LIST: the MSRs KVM can save and restore for a guest.
    Result<std::vector<std::uint32_t>> saveable_msrs() const;

private:
    explicit KvmAccelerator(UniqueFd fd, int run_size)
        : m_fd(std::move(fd)), m_run_size(run_size) {}
    UniqueFd m_fd;
    int m_run_size;  // KVM_GET_VCPU_MMAP_SIZE: size of each vCPU's shared kvm_run area
};

}  // namespace vireo
