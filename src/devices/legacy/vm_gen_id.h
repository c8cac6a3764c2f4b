// The Virtual Machine Generation ID (Microsoft, "Virtual Machine Generation ID", 2012): a 128-bit
// random value in guest memory that changes whenever the VM may be running a second time from the
// same state (snapshot restore, clone). A guest that sees it change must not reuse what it derived
// from its earlier state; Linux's vmgenid driver (drivers/virt/vmgenid.c, CONFIG_VMGENID) feeds
// the new value to add_vmfork_randomness(), which reseeds the RNG at once.
//
// The device has no registers. The guest finds the ID through ACPI: Device(VGEN) with _HID
// "VMGENCTR" and Method ADDR returning Package {low 32 bits, high 32 bits} of its address; the
// driver maps those 16 bytes (write-back) and copies them on each Notify(VGEN, 0x80). vireo's
// ACPI is hardware-reduced, so the notification comes from the Generic Event Device
// (acpi::VmGenIdDesc): an edge on the GED's interrupt makes its _EVT method run the Notify.
//
// The 16 bytes must sit where the OS does not allocate (vireo: layout::kVmGenIdAddress, in the
// e820-reserved ACPI range), 8-byte aligned. The VMM only ever writes them; what the guest writes
// there is never read back (save_state() returns the VMM's own copy).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "base/result.h"
#include "irq/irq_line.h"
#include "memory/guest_address.h"
#include "memory/guest_memory.h"

namespace vireo {

// What a snapshot saves: the ID the guest was last given.
struct VmGenIdState {
    std::array<std::uint8_t, 16> generation_id{};
};

class VmGenId final {
public:
    static constexpr std::uint64_t kSize = 16;
    // Fills the span with random bytes; the default reads getrandom(2).
    using RandomSource = std::function<Result<void>(std::span<std::uint8_t>)>;

    // Draws the first ID and writes it at `address` (8-byte aligned, inside guest RAM). `irq` is
    // the GED's interrupt line; `memory` and `irq` must outlive the device.
    static Result<std::unique_ptr<VmGenId>> create(GuestMemory& memory, GuestAddress address,
                                                   IrqLine& irq, RandomSource random = {});

    GuestAddress address() const { return m_address; }
    std::array<std::uint8_t, 16> generation_id() const;

    // A fresh random ID into guest memory, then an edge on the GED line (raise, lower) so the
    // guest re-reads it. Thread-safe; the guest may be running. On error nothing changed.
    Result<void> regenerate();

    VmGenIdState save_state() const;
    // Puts `state`'s ID back into guest memory, without an interrupt: a restored guest already
    // read it before the snapshot. To give it a new one, call regenerate() afterwards.
    Result<void> restore_state(const VmGenIdState& state);

private:
    VmGenId(GuestMemory& memory, GuestAddress address, IrqLine& irq, RandomSource random)
        : m_memory(memory), m_address(address), m_irq(irq), m_random(std::move(random)) {}
    Result<void> write_id(const std::array<std::uint8_t, 16>& id);  // m_mutex held

    mutable std::mutex m_mutex;
    GuestMemory& m_memory;
    const GuestAddress m_address;
    IrqLine& m_irq;
    RandomSource m_random;
    VmGenIdState m_s;  // guarded by m_mutex
};

}  // namespace vireo
