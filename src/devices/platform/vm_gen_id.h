// The Virtual Machine Generation ID (Microsoft, "Virtual Machine Generation ID", 2012): a 128-bit
// random value in guest memory that changes whenever the VM may be running a second time from the
// same state (snapshot restore, clone). A guest that sees it change must not reuse what it derived
// from its earlier state; Linux's vmgenid driver (drivers/virt/vmgenid.c, CONFIG_VMGENID) feeds
// the new value to add_vmfork_randomness(), which reseeds the RNG at once.
//
// The device has no registers. The guest finds the ID through ACPI: Device(VGEN) with _HID
// "VMGENCTR" and Method ADDR returning Package {low 32 bits, high 32 bits} of its address; the
// driver maps those 16 bytes (write-back) and copies them on each Notify(VGEN, 0x80). vireo's
// ACPI is hardware-reduced, so the notification comes from the Generic Event Device (ACPI 6.4
// §5.6.9): an edge on the GED's interrupt makes its _EVT method run the Notify (acpi_devices()).
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
#include "devices/component.h"
#include "irq/irq_line.h"
#include "memory/guest_address.h"
#include "memory/guest_memory.h"

namespace vireo {

// What a snapshot saves: the ID the guest was last given.
struct VmGenIdState {
    std::array<std::uint8_t, 16> generation_id{};
};

class VmGenId final : public Component {
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

    // In \_SB_ (the placement's first GSI is the GED's interrupt):
    //   Device(VGEN): _HID "VMGENCTR" (the id Linux matches), _CID and _DDN "VM_Gen_Counter" (the
    //     spec's; ACPICA upper-cases a _CID string, which Linux also matches), Method ADDR
    //     returning Package {low 32 bits, high 32 bits} of the ID's guest-physical address.
    //     "VMGENCTR" is not a well-formed ACPI ID (iASL wants 4 hex digits after the vendor part)
    //     but no OS checks that at run time; QEMU's "QEMUVGID" and Firecracker's "FCVMGID" are
    //     alike.
    //   Device(GED0): _HID "ACPI0013", _UID 0, _CRS Interrupt(ResourceConsumer, Edge,
    //     ActiveHigh, Exclusive) {gsi}, Method _EVT(1) { If (Arg0 == gsi) { Notify(\_SB_.VGEN,
    //     0x80) } }.
    // Linux's GED driver (drivers/acpi/evged.c) requests the interrupt from _CRS and runs _EVT
    // with the GSI on each edge; Notify 0x80 makes the vmgenid driver re-read the ID.
    // Edge-triggered because the GED has no register to acknowledge a level with. The GSI must be
    // an I/O APIC input (< 24) other than 0 and 2 (the PIT's ISA IRQ and the pin it is routed
    // to); below 16 no MADT override is needed, as ISA IRQ n is identity-mapped, edge,
    // active-high by default. That no other device uses it is the registry's check.
    std::vector<acpi::Aml> acpi_devices(const Placement& placement) const override;

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
