// The VM generation ID (devices/platform/vm_gen_id.h): its 16 bytes in the reserved ACPI range, its
// change notification through the ACPI Generic Event Device on one I/O APIC input.
#include "arch/x86_64/memory_layout.h"
#include "machine/machine.h"

namespace vireo {

namespace {

// The GED's interrupt. GSIs in use: 0 and 2 (PIT: ISA IRQ 0 is overridden to pin 2), 1 (i8042),
// 4 (COM1), 16-23 (PCI INTx, level-triggered and shared, so no place for an edge-triggered
// source); the RTC has no interrupt. 5 is the first free ISA line (Firecracker also starts
// handing out GSIs at 5); being below 16 it needs no MADT override, as ISA IRQ 5 is
// identity-mapped and edge/active-high by default, what the GED's _CRS says.
//
// GSIs 0-15 also reach KVM's 8259 PIC, which a hardware-reduced Linux never programs; an edge on
// GSI 5 early in boot once arrived through the boot CPU's ExtINT LINT0 as vector 5 (#BR) and
// oopsed the std kernel. KvmVm masks the 8259s at creation, as firmware does, which closes that.
constexpr std::uint32_t kVmGenIdGsi = 5;

}  // namespace

Result<void> Machine::setup_vm_gen_id() {
    auto line = m_vm->create_irq_line(kVmGenIdGsi);
    if (!line) {
        return line.error();
    }
    IrqLine& irq = **line;
    m_irq_lines.push_back(std::move(line).value());
    auto dev = VmGenId::create(m_memory, GuestAddress(layout::kVmGenIdAddress), irq);
    if (!dev) {
        return dev.error();
    }
    m_vm_gen_id = std::move(dev).value();
    // No state section: a restored VM gets a new ID (restore_state regenerates it).
    return m_components.add("vm-gen-id", m_vm_gen_id, {.gsis = {kVmGenIdGsi}});
}

Result<void> Machine::regenerate_vm_id() {
    return m_vm_gen_id->regenerate();
}

}  // namespace vireo
