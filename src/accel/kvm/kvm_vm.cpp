#include "accel/kvm/kvm_vm.h"

#include <sys/ioctl.h>
#include "accel/kvm/kvm_uapi.h"

#include <fmt/format.h>

#include "accel/kvm/kvm_accelerator.h"
#include "accel/kvm/kvm_vcpu.h"

namespace vireo {

namespace {

// Three pages just below the 4 GiB BIOS area that the guest never sees as RAM: KVM needs them for
// the real-mode TSS and the identity-mapped page table on Intel hosts without unrestricted guest.
// Same placement as QEMU and Firecracker; the e820 map must keep them reserved.
constexpr std::uint64_t kTssAddress = 0xfffbd000;
constexpr std::uint64_t kIdentityMapAddress = 0xfffbc000;

}  // namespace

Result<void> KvmVm::setup(const KvmAccelerator& kvm, const VmOptions& options) {
    if (kvm.check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
        std::uint64_t addr = kIdentityMapAddress;
        if (::ioctl(m_fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0) {
            return Error::from_errno("KVM_SET_IDENTITY_MAP_ADDR");
        }
    }
    if (kvm.check_extension(KVM_CAP_SET_TSS_ADDR) > 0) {
        if (::ioctl(m_fd.get(), KVM_SET_TSS_ADDR, kTssAddress) < 0) {
            return Error::from_errno("KVM_SET_TSS_ADDR");
        }
    }
    if (options.irqchip) {
        if (kvm.check_extension(KVM_CAP_IRQCHIP) <= 0) {
            return Error("KVM has no in-kernel irqchip (KVM_CAP_IRQCHIP)");
        }
        if (::ioctl(m_fd.get(), KVM_CREATE_IRQCHIP, 0) < 0) {
            return Error::from_errno("KVM_CREATE_IRQCHIP");
        }
        // KVM's 8259 pair starts unprogrammed (vector base 0) with every input unmasked, and
        // GSIs 0-15 reach it as well as the IOAPIC. A guest that never programs it (Linux on
        // vireo's hardware-reduced ACPI, whose MADT has no PCAT_COMPAT) would take any ISA edge
        // through the boot CPU's ExtINT LINT0 as vector 0-15, i.e. as an exception (#BR for
        // IRQ 5, seen in the nested host). Firmware leaves the 8259s masked; so does vireo. A
        // guest that uses them programs them (ICW1-4) and sets its own mask.
        for (std::uint32_t chip_id : {0U, 1U}) {  // KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE
            kvm_irqchip chip{};
            chip.chip_id = chip_id;
            if (::ioctl(m_fd.get(), KVM_GET_IRQCHIP, &chip) < 0) {
                return Error::from_errno("KVM_GET_IRQCHIP (8259)");
            }
            chip.chip.pic.imr = 0xff;
            if (::ioctl(m_fd.get(), KVM_SET_IRQCHIP, &chip) < 0) {
                return Error::from_errno("KVM_SET_IRQCHIP (8259)");
            }
        }
        kvm_pit_config pit{};
        // KVM_PIT_SPEAKER_DUMMY: the PC speaker port (0x61) is handled in the kernel too.
        pit.flags = KVM_PIT_SPEAKER_DUMMY;
        if (::ioctl(m_fd.get(), KVM_CREATE_PIT2, &pit) < 0) {
            return Error::from_errno("KVM_CREATE_PIT2");
        }
        m_irqchip = true;
    }
    return ok();
}

Result<void> KvmVm::map_memory(const MemorySlot& slot) {
    kvm_userspace_memory_region region{};
    region.slot = slot.slot;
    region.guest_phys_addr = slot.guest.value;
    region.memory_size = slot.size;
    region.userspace_addr = reinterpret_cast<std::uint64_t>(slot.host);
    region.flags =
        (slot.read_only ? KVM_MEM_READONLY : 0U) | (slot.log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0U);
    if (::ioctl(m_fd.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        return Error::from_errno(fmt::format("KVM_SET_USER_MEMORY_REGION slot {} at {:#x}+{:#x}",
                                             slot.slot, slot.guest.value, slot.size));
    }
    if (slot.size == 0) {
        m_slots.erase(slot.slot);  // a zero-sized region deletes the slot
    } else {
        m_slots[slot.slot] = slot;
    }
    return ok();
}

Result<std::unique_ptr<Vcpu>> KvmVm::create_vcpu(std::uint32_t id) {
    const int fd = ::ioctl(m_fd.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
    if (fd < 0) {
        return Error::from_errno(fmt::format("KVM_CREATE_VCPU {}", id));
    }
    auto vcpu = KvmVcpu::create(UniqueFd(fd), id, m_run_size, m_caps);
    if (!vcpu) {
        return vcpu.error();
    }
    return std::unique_ptr<Vcpu>(std::move(vcpu).value());
}

namespace {

// KVM_IRQ_LINE on one GSI of the in-kernel irqchip (routed to both the PIC and the IOAPIC for
// GSIs 0-15, the IOAPIC only above).
class KvmIrqLine final : public IrqLine {
public:
    KvmIrqLine(int vm_fd, std::uint32_t gsi) : m_vm_fd(vm_fd), m_gsi(gsi) {}
    void set_level(bool high) override {
        kvm_irq_level level{};
        level.irq = m_gsi;
        level.level = high ? 1 : 0;
        // Fails only for an invalid GSI, which create_irq_line() rules out.
        static_cast<void>(::ioctl(m_vm_fd, KVM_IRQ_LINE, &level));
    }

private:
    int m_vm_fd;
    std::uint32_t m_gsi;
};

// The in-kernel IOAPIC has 24 pins (KVM_IOAPIC_NUM_PINS).
constexpr std::uint32_t kIoapicPins = 24;

}  // namespace

Result<std::unique_ptr<IrqLine>> KvmVm::create_irq_line(std::uint32_t gsi) {
    if (!m_irqchip) {
        return Error("interrupt lines need the in-kernel irqchip");
    }
    if (gsi >= kIoapicPins) {
        return Error(fmt::format("GSI {} out of range (IOAPIC has {} pins)", gsi, kIoapicPins));
    }
    return std::unique_ptr<IrqLine>(std::make_unique<KvmIrqLine>(m_fd.get(), gsi));
}

Result<std::uint64_t> KvmVm::get_clock() {
    kvm_clock_data clock{};
    if (::ioctl(m_fd.get(), KVM_GET_CLOCK, &clock) < 0) {
        return Error::from_errno("KVM_GET_CLOCK");
    }
    return static_cast<std::uint64_t>(clock.clock);
}

Result<void> KvmVm::set_clock(std::uint64_t ns) {
    kvm_clock_data clock{};
    clock.clock = ns;
    if (::ioctl(m_fd.get(), KVM_SET_CLOCK, &clock) < 0) {
        return Error::from_errno("KVM_SET_CLOCK");
    }
    return ok();
}

Result<std::unique_ptr<MsiRoute>> KvmVm::create_msi_route() {
    if (!m_irqchip) {
        return Error("MSI routes need the in-kernel irqchip");
    }
    return m_routing.create_msi_route();
}

namespace {

Result<void> ioeventfd(int vm_fd, const IoEventAddress& where, int eventfd, bool assign) {
    if (where.length != 1 && where.length != 2 && where.length != 4 && where.length != 8) {
        return Error(fmt::format("ioeventfd: bad length {}", where.length));
    }
    kvm_ioeventfd io{};
    io.addr = where.address;
    io.len = where.length;
    io.fd = eventfd;
    io.flags = (where.mmio ? 0U : static_cast<std::uint32_t>(KVM_IOEVENTFD_FLAG_PIO)) |
               (assign ? 0U : static_cast<std::uint32_t>(KVM_IOEVENTFD_FLAG_DEASSIGN));
    if (where.datamatch) {
        io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
        io.datamatch = *where.datamatch;
    }
    if (::ioctl(vm_fd, KVM_IOEVENTFD, &io) < 0) {
        return Error::from_errno(fmt::format("KVM_IOEVENTFD {} {} at {:#x}",
                                             assign ? "assign" : "deassign",
                                             where.mmio ? "mmio" : "pio", where.address));
    }
    return ok();
}

}  // namespace

Result<void> KvmVm::add_ioevent(const IoEventAddress& where, int eventfd) {
    return ioeventfd(m_fd.get(), where, eventfd, true);
}

Result<void> KvmVm::remove_ioevent(const IoEventAddress& where, int eventfd) {
    return ioeventfd(m_fd.get(), where, eventfd, false);
}

Result<void> KvmVm::get_dirty_log(std::uint32_t slot, std::span<std::uint64_t> bitmap) {
    const auto it = m_slots.find(slot);
    if (it == m_slots.end()) {
        return Error(fmt::format("dirty log: no memory slot {}", slot));
    }
    // KVM writes one bit per page of the slot, rounded up to 64-bit words.
    const std::uint64_t pages = it->second.size / 4096;
    if (bitmap.size() < (pages + 63) / 64) {
        return Error(fmt::format("dirty log: bitmap of {} words too small for slot {} ({} pages)",
                                 bitmap.size(), slot, pages));
    }
    kvm_dirty_log log{};
    log.slot = slot;
    log.dirty_bitmap = bitmap.data();
    if (::ioctl(m_fd.get(), KVM_GET_DIRTY_LOG, &log) < 0) {
        return Error::from_errno(fmt::format("KVM_GET_DIRTY_LOG slot {}", slot));
    }
    return ok();
}

Result<void> KvmVm::set_dirty_logging(std::uint32_t slot, bool on) {
    const auto it = m_slots.find(slot);
    if (it == m_slots.end()) {
        return Error(fmt::format("dirty log: no memory slot {}", slot));
    }
    if (it->second.log_dirty == on) {
        return ok();
    }
    // Re-registering a slot with only its flags changed is how KVM starts and stops the log
    // (KVM_MR_FLAGS_ONLY); the guest keeps running and its mappings stay.
    MemorySlot changed = it->second;
    changed.log_dirty = on;
    return map_memory(changed);
}

}  // namespace vireo
