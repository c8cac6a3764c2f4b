// A VM of the soft accelerator: guest-physical memory, the ioeventfd table and its vCPUs, and
// with VmOptions::irqchip the userspace interrupt controllers: one LAPIC per vCPU and the
// IOAPIC, fed by IrqLines (GSI = IOAPIC pin; GSIs 0-15 but 2 also reach the 8259 pair, as with
// KVM's routing) and MSI routes, the 8259 pair on the BSP's LINT0, and the 8254 PIT (ISA IRQ 0:
// IOAPIC pin 2, the MADT's override, and 8259 IR0), served by the BSP's vCPU.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "accel/soft/kvm_clock.h"
#include "accel/soft/phys_memory.h"
#include "accel/soft/soft_ioapic.h"
#include "accel/soft/soft_lapic.h"
#include "accel/soft/soft_pic.h"
#include "accel/soft/soft_pit.h"
#include "accel/vm.h"

namespace vireo::soft {

class SoftVm final : public Vm {
public:
    explicit SoftVm(bool irqchip = false);

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
    // Device DMA and the loader invalidate decoded code like a guest store does.
    HostWriteObserver* host_write_observer() override { return &m_memory; }

    PhysMemory& memory() { return m_memory; }
    // The guest's kvmclock (its vCPUs write their time-info structures through it).
    KvmClock& kvm_clock() { return m_kvm_clock; }
    bool irqchip() const { return m_ioapic != nullptr; }
    SoftIoApic* ioapic() { return m_ioapic.get(); }
    // The PIT, with the irqchip; nullptr without.
    SoftPit* pit() { return m_pit.get(); }
    SoftPic* pic() { return m_pic.get(); }
    // The LAPIC registry (vCPUs register theirs at creation and remove it when destroyed).
    void add_lapic(SoftLapic* lapic);
    void remove_lapic(SoftLapic* lapic);
    // Sends a fixed/lowest-priority interrupt, INIT or SIPI to the LAPICs `dest` names.
    void deliver_interrupt(std::uint8_t dest, bool logical, std::uint8_t vector, bool level,
                           std::uint32_t mode = 0, SoftLapic* self = nullptr,
                           std::uint32_t shorthand = 0);
    void deliver_msi(const MsiMessage& m);
    void ipi(SoftLapic& from, std::uint32_t icr_high, std::uint32_t icr_low);
    // True when a guest write of `data` at `address` matched an ioeventfd (which was then
    // signalled), so the write does not reach the IoHandler (KVM_IOEVENTFD semantics).
    bool ioevent_write(bool mmio, std::uint64_t address, std::span<const std::uint8_t> data);

private:
    struct IoEvent {
        IoEventAddress where;
        int fd;
    };
    PhysMemory m_memory;
    std::unique_ptr<SoftIoApic> m_ioapic;
    std::unique_ptr<SoftPit> m_pit;
    std::unique_ptr<SoftPic> m_pic;
    void wake_bsp();
    std::mutex m_lapic_mutex;  // order: IOAPIC mutex, then this, then a LAPIC's
    std::vector<SoftLapic*> m_lapics;
    std::mutex m_ioevent_mutex;
    std::vector<IoEvent> m_ioevents;
    std::atomic<bool> m_have_ioevents{false};
    // guest clock = CLOCK_MONOTONIC + offset (read by vCPU threads through kvmclock)
    std::atomic<std::int64_t> m_clock_offset_ns{0};
    KvmClock m_kvm_clock{[this] { return get_clock().value(); }};
};

}  // namespace vireo::soft
