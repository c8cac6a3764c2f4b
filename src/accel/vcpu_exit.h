// Why Vcpu::run() returned: lifecycle events only; I/O never surfaces here.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace vireo {

enum class VcpuExitKind {
    Halt,           // HLT with no interrupt to wake it (only without an in-kernel irqchip)
    Shutdown,       // triple fault or another shutdown condition of the CPU
    Reset,          // the platform asked for a reset
    PowerOff,       // the platform asked for power-off
    Interrupted,    // Vcpu::request_exit() was called
    InternalError,  // the accelerator could not continue the guest (failed entry, emulation)
};

struct VcpuExit {
    VcpuExitKind kind;
    std::string detail;  // for InternalError and Shutdown: what the accelerator reported
};

std::string_view to_string(VcpuExitKind kind);

// Per-vCPU counters of every exit, by cause: the first tool for "why is this boot slow".
enum class ExitReason : std::uint8_t {
    PioRead,
    PioWrite,
    MmioRead,
    MmioWrite,
    Halt,
    Shutdown,
    SystemEvent,
    Interrupted,
    InternalError,
    Other,
    Count_,
};

struct ExitStats {
    std::array<std::uint64_t, static_cast<std::size_t>(ExitReason::Count_)> counts{};
    // Relaxed atomics: the vCPU thread counts while metrics are read from another thread.
    void add(ExitReason r) {
        std::atomic_ref(counts[static_cast<std::size_t>(r)])
            .fetch_add(1, std::memory_order_relaxed);
    }
    std::uint64_t operator[](ExitReason r) const {
        return std::atomic_ref(const_cast<std::uint64_t&>(counts[static_cast<std::size_t>(r)]))
            .load(std::memory_order_relaxed);
    }
    std::uint64_t total() const;
};

std::string_view to_string(ExitReason reason);

}  // namespace vireo
