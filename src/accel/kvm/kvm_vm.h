#pragma once

#include <map>

#include "accel/kvm/kvm_irq_routing.h"
#include "accel/kvm/kvm_vcpu.h"
#include "accel/vm.h"
#include "base/unique_fd.h"

namespace vireo {

class KvmAccelerator;

class KvmVm final : public Vm {
public:
    KvmVm(UniqueFd fd, int run_size, KvmStateCaps caps)
        : m_fd(std::move(fd)),
          m_run_size(run_size),
          m_caps(std::make_shared<const KvmStateCaps>(std::move(caps))),
          m_routing(m_fd.get()) {}

    // x86 platform setup done once per VM: TSS and identity-map addresses (needed for real mode on
    // hosts without unrestricted guest), and the in-kernel irqchip and PIT when asked.
    Result<void> setup(const KvmAccelerator& kvm, const VmOptions& options);

    Result<void> map_memory(const MemorySlot& slot) override;
    Result<std::unique_ptr<Vcpu>> create_vcpu(std::uint32_t id) override;
    Result<std::unique_ptr<IrqLine>> create_irq_line(std::uint32_t gsi) override;
    Result<void> get_dirty_log(std::uint32_t slot, std::span<std::uint64_t> bitmap) override;
    Result<void> set_dirty_logging(std::uint32_t slot, bool on) override;

    Result<std::uint64_t> get_clock() override;
    Result<void> set_clock(std::uint64_t ns) override;
    Result<VmPlatformState> save_platform_state() override;
    Result<void> restore_platform_state(const VmPlatformState& state) override;
    Result<std::unique_ptr<MsiRoute>> create_msi_route() override;
    Result<void> add_ioevent(const IoEventAddress& where, int eventfd) override;
    Result<void> remove_ioevent(const IoEventAddress& where, int eventfd) override;

    int fd() const { return m_fd.get(); }

private:
    UniqueFd m_fd;
    int m_run_size;
    std::shared_ptr<const KvmStateCaps> m_caps;
    bool m_irqchip = false;
    // The mapped slots as last set: dirty-log bounds, and the flags set_dirty_logging changes.
    std::map<std::uint32_t, MemorySlot> m_slots;
    KvmIrqRouting m_routing;
};

}  // namespace vireo
