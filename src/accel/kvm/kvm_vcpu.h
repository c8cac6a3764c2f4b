#pragma once

#include <pthread.h>

#include <atomic>
#include <memory>
#include <vector>

#include "accel/vcpu.h"
#include "base/unique_fd.h"

struct kvm_run;

namespace vireo {

// What KVM offers for saving vCPU state, probed once per VM.
struct KvmStateCaps {
    bool xsave = false;               // KVM_GET/SET_XSAVE, else KVM_GET/SET_FPU
    bool xcrs = false;                // KVM_GET/SET_XCRS
    bool debugregs = false;           // KVM_GET/SET_DEBUGREGS
    bool vcpu_events = false;         // KVM_GET/SET_VCPU_EVENTS
    bool tsc_control = false;         // KVM_SET_TSC_KHZ
    std::vector<std::uint32_t> msrs;  // KVM_GET_MSR_INDEX_LIST
};

class KvmVcpu final : public Vcpu {
public:
    // Takes ownership of the vCPU fd and maps its kvm_run area.
    static Result<std::unique_ptr<KvmVcpu>> create(UniqueFd fd, std::uint32_t id, int run_size,
                                                   std::shared_ptr<const KvmStateCaps> caps);
    ~KvmVcpu() override;

    std::uint32_t id() const override { return m_id; }
    Result<VcpuExit> run(IoHandler& io) override;
    void request_exit() override;
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

private:
    KvmVcpu(UniqueFd fd, std::uint32_t id, kvm_run* run, int run_size,
            std::shared_ptr<const KvmStateCaps> caps)
        : m_fd(std::move(fd)),
          m_id(id),
          m_run(run),
          m_run_size(run_size),
          m_caps(std::move(caps)) {}
    // The saveable MSRs this vCPU can actually read (KVM lists some a given CPU lacks).
    Result<std::vector<MsrEntry>> read_saveable_msrs();
    // KVM_SET_MSRS for a saved list, tolerating refusals of values the MSR already holds.
    Result<void> restore_msrs(std::span<const MsrEntry> saved);
    // Handles one KVM exit; returns true when run() must return `exit`.
    bool handle_exit(IoHandler& io, VcpuExit& exit);

    UniqueFd m_fd;
    std::uint32_t m_id;
    kvm_run* m_run;
    int m_run_size;
    ExitStats m_stats;
    std::shared_ptr<const KvmStateCaps> m_caps;
    std::vector<CpuidEntry> m_cpuid;        // as last set, for save_state()
    std::vector<std::uint32_t> m_msr_list;  // filtered saveable MSRs; empty until first save
    // The thread inside run(), for the kick signal; valid while m_in_run is true.
    std::atomic<pthread_t> m_thread{};
    std::atomic<bool> m_in_run{false};
};

// The signal that kicks a vCPU thread out of KVM_RUN. Installed once, with an empty handler and
// without SA_RESTART, so a blocked KVM_RUN returns EINTR.
int vcpu_kick_signal();

}  // namespace vireo
