#include "devices/platform/vm_gen_id.h"

#include <sys/random.h>

#include <cerrno>

#include <fmt/format.h>

namespace vireo {

namespace {

Result<void> host_random(std::span<std::uint8_t> out) {
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return Error::from_errno("vmgenid: getrandom");
        }
        done += static_cast<std::size_t>(n);
    }
    return ok();
}

// The one I/O APIC starts at GSI 0 and, like the 82093AA and KVM's model, has 24 inputs.
constexpr std::uint32_t kIoapicPins = 24;
// Notify value the VM Generation ID spec assigns to "the ID changed" (Linux's vmgenid driver acts
// on any notify).
constexpr std::uint8_t kVmGenIdChanged = 0x80;

}  // namespace

std::vector<acpi::Aml> VmGenId::acpi_devices(const Placement& placement) const {
    using acpi::Aml;
    if (placement.gsis.empty()) {
        return {Aml::failed(Error("vmgenid: the GED needs an interrupt"))};
    }
    const std::uint32_t gsi = placement.gsis.front();
    if (gsi >= kIoapicPins || gsi == 0 || gsi == 2) {
        return {Aml::failed(
            Error(fmt::format("vmgenid: GED GSI {} is not a free I/O APIC input (1 or 3-{})", gsi,
                              kIoapicPins - 1)))};
    }
    const std::uint64_t a = m_address.value;
    return {
        Aml::device("VGEN",
                    {Aml::name("_HID", Aml::string("VMGENCTR")),
                     Aml::name("_CID", Aml::string("VM_Gen_Counter")),
                     Aml::name("_DDN", Aml::string("VM_Gen_Counter")),
                     Aml::method("ADDR", 0, false,
                                 {Aml::return_value(Aml::package(
                                     {Aml::integer(a & 0xFFFFFFFF), Aml::integer(a >> 32)}))})}),
        Aml::device(
            "GED0",
            {Aml::name("_HID", Aml::string("ACPI0013")), Aml::name("_UID", Aml::integer(0)),
             Aml::name("_CRS", Aml::resource_template({acpi::extended_interrupt_descriptor(
                                   /*edge=*/true, /*active_low=*/false, /*shared=*/false, gsi)})),
             // _EVT: the GED driver calls it with the GSI that fired (§5.6.9).
             Aml::method("_EVT", 1, true,
                         {Aml::if_then(
                             Aml::lequal(Aml::arg(0), Aml::integer(gsi)),
                             {Aml::notify("\\_SB_.VGEN", Aml::integer(kVmGenIdChanged))})})}),
    };
}

Result<std::unique_ptr<VmGenId>> VmGenId::create(GuestMemory& memory, GuestAddress address,
                                                 IrqLine& irq, RandomSource random) {
    // The spec asks for an 8-byte aligned ID; keeping it inside one page means one mapping for
    // the guest's driver.
    if (address.value % 8 != 0 || address.value % kPageSize > kPageSize - kSize ||
        !memory.contains_range(address, kSize)) {
        return Error(fmt::format(
            "vmgenid: {:#x} is not an 8-byte aligned address of 16 bytes of guest RAM inside one "
            "4 KiB page",
            address.value));
    }
    if (!random) {
        random = host_random;
    }
    std::unique_ptr<VmGenId> dev(new VmGenId(memory, address, irq, std::move(random)));
    std::array<std::uint8_t, kSize> id{};
    if (auto r = dev->m_random(id); !r) {
        return r.error();
    }
    std::lock_guard lock(dev->m_mutex);
    if (auto r = dev->write_id(id); !r) {
        return r.error();
    }
    return dev;
}

std::array<std::uint8_t, 16> VmGenId::generation_id() const {
    std::lock_guard lock(m_mutex);
    return m_s.generation_id;
}

Result<void> VmGenId::write_id(const std::array<std::uint8_t, 16>& id) {
    if (auto r = m_memory.write(m_address, id); !r) {
        return r.error().wrap("vmgenid");
    }
    m_s.generation_id = id;
    return ok();
}

Result<void> VmGenId::regenerate() {
    std::array<std::uint8_t, kSize> id{};
    if (auto r = m_random(id); !r) {
        return r;
    }
    std::lock_guard lock(m_mutex);
    if (auto r = write_id(id); !r) {
        return r;
    }
    // The ID is in guest memory before the interrupt: the guest's handler reads it after this
    // edge (the ioctl behind set_level orders the store before the injection). The GED line is
    // edge-triggered (its _CRS says so), so one rising edge is one event; lowering it at once
    // leaves the line ready for the next.
    m_irq.set_level(true);
    m_irq.set_level(false);
    return ok();
}

VmGenIdState VmGenId::save_state() const {
    std::lock_guard lock(m_mutex);
    return m_s;
}

Result<void> VmGenId::restore_state(const VmGenIdState& state) {
    std::lock_guard lock(m_mutex);
    return write_id(state.generation_id);
}

}  // namespace vireo
