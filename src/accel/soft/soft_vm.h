// A VM of the soft accelerator: guest-physical memory, the ioeventfd table and its vCPUs.
// No interrupt controllers yet (VmOptions::irqchip is refused with a clear error).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "accel/soft/phys_memory.h"
#include "accel/vm.h"

namespace vireo::soft {

class SoftVm final : public Vm {
public:
    SoftVm() = default;

    Result<void> map_memory(const MemorySlot& slot) override;
    Result<std::unique_ptr<Vcpu>> create_vcpu(std::uint32_t id) override;
    Result<std::unique_ptr<IrqLine>> create_irq_line(std::uint32_t gsi) override;
    Result<void> get_dirty_log(std::uint32_t slot, std::span<std::uint64_t> bitmap) override;
    Result<std::uint64_t> get_clock() override;
    Result<void> set_clock(std::uint64_t ns) override;
    Result<VmPlatformState> save_platform_state() override;
    Result<void> restore_platform_state(const VmPlatformState& state) override;
    Result<std::unique_ptr<MsiRoute>> create_msi_route() override;
    Result<void> add_ioevent(const IoEventAddress& where, int eventfd) override;
    Result<void> remove_ioevent(const IoEventAddress& where, int eventfd) override;

    PhysMemory& memory() { return m_memory; }
    // True when a guest write of `data` at `address` matched an ioeventfd (which was then
    // signalled), so the write does not reach the IoHandler (KVM_IOEVENTFD semantics).
    bool ioevent_write(bool mmio, std::uint64_t address, std::span<const std::uint8_t> data);

private:
    struct IoEvent {
        IoEventAddress where;
        int fd;
    };
    PhysMemory m_memory;
    std::mutex m_ioevent_mutex;
    std::vector<IoEvent> m_ioevents;
    std::atomic<bool> m_have_ioevents{false};
    std::int64_t m_clock_offset_ns = 0;  // guest clock = CLOCK_MONOTONIC + offset
};

}  // namespace vireo::soft
