#include "accel/kvm/kvm_vcpu.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include "accel/kvm/kvm_uapi.h"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "accel/kvm/kvm_regs.h"

namespace vireo {

namespace {

void kick_handler(int /*signo*/) {}

}  // namespace

int vcpu_kick_signal() {
    static const int signo = [] {
        const int s = SIGRTMIN;
        struct sigaction sa {};
        sa.sa_handler = kick_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must come back with EINTR
        sigaction(s, &sa, nullptr);
        return s;
    }();
    return signo;
}

Result<std::unique_ptr<KvmVcpu>> KvmVcpu::create(UniqueFd fd, std::uint32_t id, int run_size,
                                                 std::shared_ptr<const KvmStateCaps> caps) {
    void* p = ::mmap(nullptr, static_cast<std::size_t>(run_size), PROT_READ | PROT_WRITE,
                     MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) {
        return Error::from_errno(fmt::format("vCPU {}: mmap of kvm_run", id));
    }
    vcpu_kick_signal();  // install the handler before anyone can kick this vCPU
    return std::unique_ptr<KvmVcpu>(
        new KvmVcpu(std::move(fd), id, static_cast<kvm_run*>(p), run_size, std::move(caps)));
}

KvmVcpu::~KvmVcpu() {
    static_cast<void>(::munmap(m_run, static_cast<std::size_t>(m_run_size)));
}

void KvmVcpu::request_exit() {
    // immediate_exit makes a KVM_RUN that has not entered the guest yet return EINTR at once
    // (after completing pending I/O); the signal forces out a KVM_RUN that is already inside.
    // Written through an atomic_ref: the vCPU thread reads the same byte.
    std::atomic_ref<std::uint8_t>(m_run->immediate_exit).store(1, std::memory_order_seq_cst);
    if (m_in_run.load(std::memory_order_seq_cst)) {
        pthread_kill(m_thread.load(), vcpu_kick_signal());
    }
}

Result<VcpuExit> KvmVcpu::run(IoHandler& io) {
    m_thread.store(pthread_self());
    m_in_run.store(true, std::memory_order_seq_cst);
    struct InRunGuard {
        std::atomic<bool>& flag;
        ~InRunGuard() { flag.store(false, std::memory_order_seq_cst); }
    } guard{m_in_run};

    // The kick signal must be deliverable while this thread is in KVM_RUN.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, vcpu_kick_signal());
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);

    VcpuExit exit{VcpuExitKind::Interrupted, {}};
    for (;;) {
        if (::ioctl(m_fd.get(), KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                std::atomic_ref<std::uint8_t>(m_run->immediate_exit).store(0);
                m_stats.add(ExitReason::Interrupted);
                return VcpuExit{VcpuExitKind::Interrupted, {}};
            }
            return Error::from_errno(fmt::format("vCPU {}: KVM_RUN", m_id));
        }
        if (handle_exit(io, exit)) {
            return exit;
        }
    }
}

bool KvmVcpu::handle_exit(IoHandler& io, VcpuExit& exit) {
    kvm_run& run = *m_run;
    switch (run.exit_reason) {
        case KVM_EXIT_IO: {
            // The data of `count` accesses of `size` bytes each sits at data_offset inside the
            // kvm_run mapping (api.rst "KVM_EXIT_IO"); KVM bounds it by the mapping size, but a
            // corrupted offset must still never send us outside it.
            const std::size_t size = run.io.size;
            const std::size_t total = size * run.io.count;
            if (size == 0 || run.io.data_offset > static_cast<std::uint64_t>(m_run_size) ||
                total > static_cast<std::size_t>(m_run_size) - run.io.data_offset) {
                m_stats.add(ExitReason::InternalError);
                exit = {VcpuExitKind::InternalError, "KVM_EXIT_IO data outside kvm_run"};
                return true;
            }
            auto* data = reinterpret_cast<std::uint8_t*>(m_run) + run.io.data_offset;
            for (std::size_t i = 0; i < run.io.count; ++i) {
                std::span<std::uint8_t> chunk(data + i * size, size);
                if (run.io.direction == KVM_EXIT_IO_OUT) {
                    m_stats.add(ExitReason::PioWrite);
                    io.pio_write(run.io.port, chunk);
                } else {
                    m_stats.add(ExitReason::PioRead);
                    io.pio_read(run.io.port, chunk);
                }
            }
            return false;
        }
        case KVM_EXIT_MMIO: {
            const std::size_t len =
                run.mmio.len > sizeof(run.mmio.data) ? sizeof(run.mmio.data) : run.mmio.len;
            std::span<std::uint8_t> data(run.mmio.data, len);
            if (run.mmio.is_write != 0) {
                m_stats.add(ExitReason::MmioWrite);
                io.mmio_write(run.mmio.phys_addr, data);
            } else {
                m_stats.add(ExitReason::MmioRead);
                io.mmio_read(run.mmio.phys_addr, data);
            }
            return false;
        }
        case KVM_EXIT_HLT:
            m_stats.add(ExitReason::Halt);
            exit = {VcpuExitKind::Halt, {}};
            return true;
        case KVM_EXIT_SHUTDOWN:
            m_stats.add(ExitReason::Shutdown);
            exit = {VcpuExitKind::Shutdown, "the CPU shut down (triple fault)"};
            return true;
        case KVM_EXIT_SYSTEM_EVENT:
            m_stats.add(ExitReason::SystemEvent);
            switch (run.system_event.type) {
                case KVM_SYSTEM_EVENT_RESET:
                    exit = {VcpuExitKind::Reset, {}};
                    return true;
                case KVM_SYSTEM_EVENT_SHUTDOWN:
                    exit = {VcpuExitKind::PowerOff, {}};
                    return true;
                case KVM_SYSTEM_EVENT_CRASH:
                    exit = {VcpuExitKind::Shutdown, "the guest reported a crash"};
                    return true;
                default:
                    exit = {VcpuExitKind::InternalError,
                            fmt::format("unknown system event {}", run.system_event.type)};
                    return true;
            }
        case KVM_EXIT_FAIL_ENTRY:
            m_stats.add(ExitReason::InternalError);
            exit = {VcpuExitKind::InternalError,
                    fmt::format("VM entry failed, hardware reason {:#x}",
                                run.fail_entry.hardware_entry_failure_reason)};
            return true;
        case KVM_EXIT_INTERNAL_ERROR:
            m_stats.add(ExitReason::InternalError);
            exit = {VcpuExitKind::InternalError,
                    fmt::format("KVM internal error, suberror {}", run.internal.suberror)};
            return true;
        case KVM_EXIT_INTR:
            m_stats.add(ExitReason::Interrupted);
            exit = {VcpuExitKind::Interrupted, {}};
            return true;
        default:
            m_stats.add(ExitReason::Other);
            exit = {VcpuExitKind::InternalError,
                    fmt::format("unhandled KVM exit reason {}", run.exit_reason)};
            return true;
    }
}

Result<Regs> KvmVcpu::get_regs() {
    kvm_regs k{};
    if (::ioctl(m_fd.get(), KVM_GET_REGS, &k) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_REGS", m_id));
    }
    return kvm::from_kvm(k);
}

Result<void> KvmVcpu::set_regs(const Regs& regs) {
    kvm_regs k = kvm::to_kvm(regs);
    if (::ioctl(m_fd.get(), KVM_SET_REGS, &k) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_REGS", m_id));
    }
    return ok();
}

Result<Sregs> KvmVcpu::get_sregs() {
    kvm_sregs k{};
    if (::ioctl(m_fd.get(), KVM_GET_SREGS, &k) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_SREGS", m_id));
    }
    return kvm::from_kvm(k);
}

Result<void> KvmVcpu::set_sregs(const Sregs& sregs) {
    kvm_sregs current{};
    if (::ioctl(m_fd.get(), KVM_GET_SREGS, &current) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_SREGS", m_id));
    }
    kvm_sregs k = kvm::to_kvm(sregs, current);
    if (::ioctl(m_fd.get(), KVM_SET_SREGS, &k) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_SREGS", m_id));
    }
    return ok();
}

Result<void> KvmVcpu::set_cpuid(std::span<const CpuidEntry> entries) {
    std::vector<std::uint8_t> buf(sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2));
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.data());
    cpuid->nent = static_cast<std::uint32_t>(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        auto& k = cpuid->entries[i];
        k.function = e.function;
        k.index = e.index;
        k.flags = e.flags;
        k.eax = e.eax;
        k.ebx = e.ebx;
        k.ecx = e.ecx;
        k.edx = e.edx;
    }
    if (::ioctl(m_fd.get(), KVM_SET_CPUID2, cpuid) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_CPUID2", m_id));
    }
    m_cpuid.assign(entries.begin(), entries.end());
    return ok();
}

}  // namespace vireo

namespace vireo {

namespace {

// kvm_msrs followed by its entries, as KVM_GET_MSRS/KVM_SET_MSRS take them.
std::vector<std::uint8_t> msr_buffer(std::span<const MsrEntry> msrs) {
    std::vector<std::uint8_t> buf(sizeof(kvm_msrs) + msrs.size() * sizeof(kvm_msr_entry));
    auto* k = reinterpret_cast<kvm_msrs*>(buf.data());
    k->nmsrs = static_cast<std::uint32_t>(msrs.size());
    for (std::size_t i = 0; i < msrs.size(); ++i) {
        k->entries[i].index = msrs[i].index;
        k->entries[i].data = msrs[i].data;
    }
    return buf;
}

}  // namespace

Result<void> KvmVcpu::set_msrs(std::span<const MsrEntry> msrs) {
    auto buf = msr_buffer(msrs);
    // KVM_SET_MSRS returns how many entries it set, stopping at the first it refuses.
    const int n = ::ioctl(m_fd.get(), KVM_SET_MSRS, buf.data());
    if (n < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_MSRS", m_id));
    }
    if (static_cast<std::size_t>(n) != msrs.size()) {
        return Error(fmt::format("vCPU {}: KVM_SET_MSRS refused MSR {:#x}", m_id,
                                 msrs[static_cast<std::size_t>(n)].index));
    }
    return ok();
}

Result<void> KvmVcpu::get_msrs(std::span<MsrEntry> msrs) {
    auto buf = msr_buffer(msrs);
    const int n = ::ioctl(m_fd.get(), KVM_GET_MSRS, buf.data());
    if (n < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_MSRS", m_id));
    }
    if (static_cast<std::size_t>(n) != msrs.size()) {
        return Error(fmt::format("vCPU {}: KVM_GET_MSRS cannot read MSR {:#x}", m_id,
                                 msrs[static_cast<std::size_t>(n)].index));
    }
    const auto* k = reinterpret_cast<const kvm_msrs*>(buf.data());
    for (std::size_t i = 0; i < msrs.size(); ++i) {
        msrs[i].data = k->entries[i].data;
    }
    return ok();
}

Result<void> KvmVcpu::set_fpu(const FpuState& fpu) {
    kvm_fpu k{};
    k.fcw = fpu.fcw;
    k.mxcsr = fpu.mxcsr;
    if (::ioctl(m_fd.get(), KVM_SET_FPU, &k) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_FPU", m_id));
    }
    return ok();
}

Result<LapicState> KvmVcpu::get_lapic() {
    kvm_lapic_state k{};
    if (::ioctl(m_fd.get(), KVM_GET_LAPIC, &k) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_LAPIC", m_id));
    }
    static_assert(sizeof(k.regs) == sizeof(LapicState::regs));
    LapicState s;
    std::memcpy(s.regs.data(), k.regs, sizeof(k.regs));
    return s;
}

Result<void> KvmVcpu::set_lapic(const LapicState& lapic) {
    kvm_lapic_state k{};
    std::memcpy(k.regs, lapic.regs.data(), sizeof(k.regs));
    if (::ioctl(m_fd.get(), KVM_SET_LAPIC, &k) < 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_SET_LAPIC", m_id));
    }
    return ok();
}

Result<std::uint32_t> KvmVcpu::tsc_khz() {
    const int khz = ::ioctl(m_fd.get(), KVM_GET_TSC_KHZ, 0);
    if (khz <= 0) {
        return Error::from_errno(fmt::format("vCPU {}: KVM_GET_TSC_KHZ", m_id));
    }
    return static_cast<std::uint32_t>(khz);
}

}  // namespace vireo
