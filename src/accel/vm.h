// A virtual machine of some accelerator: guest memory slots and vCPUs (DESIGN.md §2).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "accel/accel_state.h"
#include "accel/vcpu.h"
#include "base/result.h"
#include "bus/io_event.h"
#include "irq/irq_line.h"
#include "irq/msi.h"
#include "memory/guest_address.h"
#include "memory/host_write_observer.h"

namespace vireo {

struct MemorySlot {
    std::uint32_t slot = 0;
    GuestAddress guest;
    std::uint64_t size = 0;
    void* host = nullptr;  // page-aligned, must stay mapped while the slot exists
    bool read_only = false;
    bool log_dirty = false;
};

// A Vm is also where MSI routes (irqfd + routing) and ioeventfds live, so devices get it as an
// MsiController / IoEventRegistry and never see the accelerator.
class Vm : public MsiController, public IoEventRegistry {
public:
    virtual ~Vm() = default;
    virtual Result<void> map_memory(const MemorySlot& slot) = 0;
    virtual Result<std::unique_ptr<Vcpu>> create_vcpu(std::uint32_t id) = 0;
    // An interrupt line into the in-kernel IOAPIC/PIC input `gsi` (needs VmOptions::irqchip).
    virtual Result<std::unique_ptr<IrqLine>> create_irq_line(std::uint32_t gsi) = 0;
    // Bitmap of the pages of `slot` written since the last call (one bit per 4 KiB page, bit i of
    // word i/64 for page i); the slot must have been mapped with log_dirty.
    virtual Result<void> get_dirty_log(std::uint32_t slot, std::span<std::uint64_t> bitmap) = 0;
    // Starts or stops the dirty log of a mapped slot while the VM runs (a live migration). When
    // it starts, the log is empty: pages count from then on.
    virtual Result<void> set_dirty_logging(std::uint32_t slot, bool on) = 0;
    // The paravirtual guest clock (kvmclock) in nanoseconds. Saved at pause and put back at
    // resume, so the guest does not see the time it spent paused as a jump.
    virtual Result<std::uint64_t> get_clock() = 0;
    virtual Result<void> set_clock(std::uint64_t ns) = 0;
    // The in-kernel PIC, IOAPIC and PIT (when the VM has them); clock_ns is left for the caller,
    // who knows when the guest stopped. Only while every vCPU is paused.
    virtual Result<VmPlatformState> save_platform_state() = 0;
    // Puts them back (not the clock: set_clock after the vCPUs' TSCs are restored).
    virtual Result<void> restore_platform_state(const VmPlatformState& state) = 0;
    // Who must hear of the VMM's own writes to guest RAM (memory/host_write_observer.h), for
    // GuestMemory::set_write_observer; nullptr (the default) when the accelerator needs no word
    // of them, as KVM does not. Lives as long as the Vm.
    virtual HostWriteObserver* host_write_observer() { return nullptr; }
};

struct VmOptions {
    // In-kernel interrupt controllers (PIC, IOAPIC, LAPIC) and PIT. Probe guests run without them
    // so that HLT exits to the VMM.
    bool irqchip = true;
};

class Accelerator {
public:
    virtual ~Accelerator() = default;
    virtual const char* name() const = 0;
    virtual Result<std::unique_ptr<Vm>> create_vm(const VmOptions& options) = 0;
    // The CPUID leaves this accelerator can present to a guest.
    virtual Result<std::vector<CpuidEntry>> supported_cpuid() = 0;
};

}  // namespace vireo
