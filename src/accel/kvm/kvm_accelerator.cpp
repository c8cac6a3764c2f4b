#include "accel/kvm/kvm_accelerator.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include "accel/kvm/kvm_uapi.h"

#include <cerrno>

#include <fmt/format.h>

#include "accel/kvm/kvm_vm.h"

namespace vireo {

namespace {

// KVM_GET_API_VERSION has returned 12 since Linux 2.6.22 and "will not change" (api.rst §4.1).
constexpr int kKvmApiVersion = 12;

struct RequiredCap {
    unsigned long cap;
    const char* name;
};
// Without these, vireo's vCPU loop and memory model cannot work.
constexpr RequiredCap kRequiredCaps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
};

}  // namespace

Result<std::unique_ptr<KvmAccelerator>> KvmAccelerator::open(const char* device) {
    UniqueFd fd(::open(device, O_RDWR | O_CLOEXEC));
    if (!fd.valid()) {
        return Error::from_errno(fmt::format("cannot open {}", device));
    }
    const int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
    if (version != kKvmApiVersion) {
        return Error(
            fmt::format("{}: KVM API version {}, vireo needs {}", device, version, kKvmApiVersion));
    }
    for (const auto& req : kRequiredCaps) {
        if (::ioctl(fd.get(), KVM_CHECK_EXTENSION, req.cap) <= 0) {
            return Error(fmt::format("{}: missing capability {}", device, req.name));
        }
    }
    const int run_size = ::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < static_cast<int>(sizeof(kvm_run))) {
        return Error::from_errno(fmt::format("{}: KVM_GET_VCPU_MMAP_SIZE", device));
    }
    return std::unique_ptr<KvmAccelerator>(new KvmAccelerator(std::move(fd), run_size));
}

int KvmAccelerator::check_extension(unsigned long cap) const {
    const int r = ::ioctl(m_fd.get(), KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

Result<std::unique_ptr<Vm>> KvmAccelerator::create_vm(const VmOptions& options) {
    int vm_fd;
    do {
        // KVM_CREATE_VM can fail with EINTR while the kernel sets up the VM's page tables.
        vm_fd = ::ioctl(m_fd.get(), KVM_CREATE_VM, 0);
    } while (vm_fd < 0 && errno == EINTR);
    if (vm_fd < 0) {
        return Error::from_errno("KVM_CREATE_VM");
    }
    auto msrs = saveable_msrs();
    if (!msrs) {
        return msrs.error();
    }
    KvmStateCaps caps;
    caps.xsave = check_extension(KVM_CAP_XSAVE) > 0;
    caps.xcrs = check_extension(KVM_CAP_XCRS) > 0;
    caps.debugregs = check_extension(KVM_CAP_DEBUGREGS) > 0;
    caps.vcpu_events = check_extension(KVM_CAP_VCPU_EVENTS) > 0;
    caps.tsc_control = check_extension(KVM_CAP_TSC_CONTROL) > 0;
    caps.msrs = std::move(msrs).value();
    auto vm = std::make_unique<KvmVm>(UniqueFd(vm_fd), m_run_size, std::move(caps));
    if (auto r = vm->setup(*this, options); !r) {
        return r.error();
    }
    return std::unique_ptr<Vm>(std::move(vm));
}

Result<std::vector<std::uint32_t>> KvmAccelerator::saveable_msrs() const {
    for (std::uint32_t n = 128; n <= 16384; n *= 2) {
        std::vector<std::uint8_t> buf(sizeof(kvm_msr_list) + n * sizeof(std::uint32_t));
        auto* list = reinterpret_cast<kvm_msr_list*>(buf.data());
        list->nmsrs = n;
        if (::ioctl(m_fd.get(), KVM_GET_MSR_INDEX_LIST, list) < 0) {
            if (errno == E2BIG) {
                continue;
            }
            return Error::from_errno("KVM_GET_MSR_INDEX_LIST");
        }
        return std::vector<std::uint32_t>(list->indices, list->indices + list->nmsrs);
    }
    return Error("KVM_GET_MSR_INDEX_LIST: more than 16384 MSRs");
}

Result<std::vector<CpuidEntry>> KvmAccelerator::supported_cpuid() {
    // The table size is not known up front: grow until KVM stops answering E2BIG.
    for (std::uint32_t n = 64; n <= 4096; n *= 2) {
        std::vector<std::uint8_t> buf(sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2));
        auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.data());
        cpuid->nent = n;
        if (::ioctl(m_fd.get(), KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
            if (errno == E2BIG) {
                continue;
            }
            return Error::from_errno("KVM_GET_SUPPORTED_CPUID");
        }
        std::vector<CpuidEntry> out;
        out.reserve(cpuid->nent);
        for (std::uint32_t i = 0; i < cpuid->nent; ++i) {
            const auto& e = cpuid->entries[i];
            out.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
        }
        return out;
    }
    return Error("KVM_GET_SUPPORTED_CPUID: table larger than 4096 entries");
}

}  // namespace vireo
