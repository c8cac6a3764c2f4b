// A vCPU of the soft accelerator: the interpreter on the calling thread, with port I/O and MMIO
// going to the IoHandler (or an ioeventfd) and lifecycle exits returned as with KVM.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "accel/soft/interpreter.h"
#include "accel/soft/soft_lapic.h"
#include "accel/vcpu.h"

namespace vireo::soft {

class SoftVm;

class SoftVcpu final : public Vcpu, private IoSink {
public:
    SoftVcpu(SoftVm& vm, std::uint32_t id);
    ~SoftVcpu() override;

    std::uint32_t id() const override { return m_id; }
    Result<VcpuExit> run(IoHandler& io) override;
    void request_exit() override {
        m_exit.store(true, std::memory_order_release);
        if (m_lapic) {
            m_lapic->wake();  // out of a HLT or wait-for-SIPI sleep
        }
    }
    Result<Regs> get_regs() override;
    Result<void> set_regs(const Regs& regs) override;
    Result<Sregs> get_sregs() override;
    Result<void> set_sregs(const Sregs& sregs) override;
    Result<void> set_cpuid(std::span<const CpuidEntry> entries) override;
    Result<void> set_msrs(std::span<const MsrEntry> msrs) override;
    Result<void> get_msrs(std::span<MsrEntry> msrs) override;
    Result<void> set_fpu(const FpuState& fpu) override;
    Result<LapicState> get_lapic() override;
    Result<void> set_lapic(const LapicState& lapic) override;
    Result<std::uint32_t> tsc_khz() override;
    Result<VcpuState> save_state() override;
    Result<void> restore_state(const VcpuState& state) override;
    const ExitStats& stats() const override { return m_stats; }

    Interpreter& interpreter() { return m_interp; }

private:
    void pio_read(std::uint16_t port, std::span<std::uint8_t> data) override;
    void pio_write(std::uint16_t port, std::span<const std::uint8_t> data) override;
    void mmio_read(std::uint64_t pa, std::span<std::uint8_t> data) override;
    void mmio_write(std::uint64_t pa, std::span<const std::uint8_t> data) override;

    SoftVm& m_vm;
    std::uint32_t m_id;
    std::vector<CpuidEntry> m_cpuid;
    Interpreter m_interp;
    std::atomic<bool> m_exit{false};
    IoHandler* m_io = nullptr;
    ExitStats m_stats;
    // With the irqchip: the run loop that accepts interrupts between slices and sleeps in HLT.
    Result<VcpuExit> run_with_irqchip();
    VcpuExit finish(const RunStop& stop);

    LapicState m_lapic_regs;             // without the irqchip: kept for get/set only
    std::unique_ptr<SoftLapic> m_lapic;  // with the irqchip
    // The kvmclock generation this vCPU's time-info structure was last written for.
    std::uint32_t m_kvmclock_generation = 0;
    bool platform_msr(std::uint32_t index, std::uint64_t& out, bool write, std::uint64_t in);
    void refresh_kvm_clock();
};

// MSRs the soft CPU lists in a saved state and accepts from the VMM (host-side access: no
// guest privilege checks).
bool soft_get_msr(const CpuState& s, std::uint32_t index, std::uint64_t& value);
bool soft_set_msr(CpuState& s, std::uint32_t index, std::uint64_t value);
const std::vector<std::uint32_t>& soft_saved_msrs();
// Host TSC frequency (calibrated once); the guest TSC runs at the same rate.
std::uint32_t host_tsc_khz();

}  // namespace vireo::soft
