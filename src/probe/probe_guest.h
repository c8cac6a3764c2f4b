// A synthetic guest: a small RAM slot, a code snippet, one vCPU started directly in real mode,
// 64-bit kernel mode or 64-bit user mode. No firmware, no irqchip: HLT and every port or MMIO
// access reach the VMM. Used by the probe tests and `vireo-probe`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "accel/vm.h"
#include "memory/guest_memory.h"

namespace vireo::probe {

enum class CpuMode {
    Real,    // 16-bit real mode, CS=0, code at kCodeAddress
    Long64,  // 64-bit mode, CPL0, identity-mapped first GiB
    User64,  // 64-bit mode, CPL3 with IOPL=3 (so IN/OUT still exit to the VMM)
};

// Guest-physical layout of a probe guest (all inside the first 64 KiB).
inline constexpr std::uint64_t kGdtAddress = 0x500;
inline constexpr std::uint64_t kTssAddress = 0x600;
inline constexpr std::uint64_t kPml4Address = 0x1000;
inline constexpr std::uint64_t kPdptAddress = 0x2000;
inline constexpr std::uint64_t kPdAddress = 0x3000;
inline constexpr std::uint64_t kStackTop = 0x7ff0;
inline constexpr std::uint64_t kCodeAddress = 0x8000;
// The page tables map the first GiB; RAM is only the first few MiB, so an access here is MMIO.
inline constexpr std::uint64_t kUnmappedAddress = 0x30000000;

struct IoAccess {
    enum class Kind { PioRead, PioWrite, MmioRead, MmioWrite } kind;
    std::uint64_t address;
    std::size_t size;
    std::uint64_t value;  // little-endian value written, or returned for a read
    bool operator==(const IoAccess&) const = default;
};

// An IoHandler that records every access. Reads return the value set for that address or
// all-ones, as unclaimed I/O does on a PC.
class RecordingIo final : public IoHandler {
public:
    void pio_read(std::uint16_t port, std::span<std::uint8_t> data) override;
    void pio_write(std::uint16_t port, std::span<const std::uint8_t> data) override;
    void mmio_read(std::uint64_t address, std::span<std::uint8_t> data) override;
    void mmio_write(std::uint64_t address, std::span<const std::uint8_t> data) override;

    void set_read_value(std::uint64_t address, std::uint64_t value) {
        m_read_values[address] = value;
    }
    // Called after each access is recorded (on the vCPU thread).
    void on_access(std::function<void(const IoAccess&)> fn) { m_on_access = std::move(fn); }
    std::vector<IoAccess> accesses() const;

private:
    void record(IoAccess a);
    std::uint64_t read_value(std::uint64_t address) const;

    mutable std::mutex m_mutex;
    std::vector<IoAccess> m_accesses;
    std::unordered_map<std::uint64_t, std::uint64_t> m_read_values;
    std::function<void(const IoAccess&)> m_on_access;
};

class ProbeGuest {
public:
    static Result<std::unique_ptr<ProbeGuest>> create(Accelerator& accel, CpuMode mode,
                                                      std::span<const std::uint8_t> code,
                                                      std::uint64_t ram_size = 2 * 1024 * 1024);
    // A guest brought back from a snapshot: RAM from `ram` (its size is the RAM size) and the
    // vCPU's saved state; nothing else is set up.
    static Result<std::unique_ptr<ProbeGuest>> restore(Accelerator& accel,
                                                       std::span<const std::uint8_t> ram,
                                                       const VcpuState& vcpu);

    // Runs the vCPU on the calling thread. If it has not returned after `timeout`, a watchdog
    // calls request_exit() and run() comes back with Interrupted and timed_out() set.
    Result<VcpuExit> run(IoHandler& io, std::chrono::milliseconds timeout);
    bool timed_out() const { return m_timed_out; }

    Vm& vm() { return *m_vm; }
    Vcpu& vcpu() { return *m_vcpu; }
    GuestMemory& memory() { return m_memory; }

private:
    ProbeGuest(GuestMemory memory) : m_memory(std::move(memory)) {}
    // RAM of `ram_size` at 0, a VM without irqchip, the slot (dirty-logged) and vCPU 0.
    static Result<std::unique_ptr<ProbeGuest>> build(Accelerator& accel, std::uint64_t ram_size);
    Result<void> setup_long_mode(bool user);
    Result<void> setup_real_mode();

    GuestMemory m_memory;
    std::unique_ptr<Vm> m_vm;
    std::unique_ptr<Vcpu> m_vcpu;
    bool m_timed_out = false;
};

}  // namespace vireo::probe
