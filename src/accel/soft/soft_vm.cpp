#include "accel/soft/soft_vm.h"

#include <unistd.h>

#include <ctime>

#include <fmt/format.h>

#include "accel/soft/soft_vcpu.h"

namespace vireo::soft {

namespace {
std::uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}
}  // namespace

SoftVm::SoftVm(bool irqchip) {
    if (irqchip) {
        m_ioapic = std::make_unique<SoftIoApic>(
            [this](std::uint8_t dest, bool logical, std::uint8_t vector, bool level) {
                deliver_interrupt(dest, logical, vector, level);
            });
        m_pic = std::make_unique<SoftPic>([this] { wake_bsp(); });
        // ISA IRQ 0 -> GSI 2 (the MADT's interrupt source override): an edge on IOAPIC pin 2,
        // and on the 8259's IR0.
        constexpr std::uint32_t kPitPin = 2;
        m_pit = std::make_unique<SoftPit>(
            [this] {
                m_ioapic->set_level(kPitPin, true);
                m_ioapic->set_level(kPitPin, false);
                m_pic->set_irq(0, true);
                m_pic->set_irq(0, false);
            },
            // The BSP serves the PIT: a sleeping BSP re-arms its wait with the new deadline.
            [this] { wake_bsp(); });
    }
}

void SoftVm::wake_bsp() {
    std::lock_guard lock(m_lapic_mutex);
    for (SoftLapic* l : m_lapics) {
        if (l->id() == 0) {
            l->wake();
        }
    }
}

void SoftVm::add_lapic(SoftLapic* lapic) {
    std::lock_guard lock(m_lapic_mutex);
    m_lapics.push_back(lapic);
}

void SoftVm::remove_lapic(SoftLapic* lapic) {
    std::lock_guard lock(m_lapic_mutex);
    std::erase(m_lapics, lapic);
}

void SoftVm::deliver_interrupt(std::uint8_t dest, bool logical, std::uint8_t vector, bool level,
                               std::uint32_t mode, SoftLapic* self, std::uint32_t shorthand) {
    std::lock_guard lock(m_lapic_mutex);
    for (SoftLapic* l : m_lapics) {
        bool hit;
        switch (shorthand) {
            case 1:
                hit = l == self;
                break;  // self
            case 2:
                hit = true;
                break;  // all including self
            case 3:
                hit = l != self;
                break;  // all excluding self
            default:
                // Physical: the APIC ID or 0xff (broadcast); logical (flat model): the LDR bitmask.
                hit = logical ? (l->logical_id() & dest) != 0 : (l->id() == dest || dest == 0xff);
                break;
        }
        if (!hit) {
            continue;
        }
        switch (mode) {
            case 5:
                l->init_signal();
                break;  // INIT
            case 6:
                l->sipi(vector);
                break;  // start-up
            default:
                l->accept(vector, level);
                break;  // fixed, lowest priority (as fixed)
        }
        if (mode == 1) {
            break;  // lowest priority: one target is enough
        }
    }
}

void SoftVm::deliver_msi(const MsiMessage& m) {
    // MSI address bits 19:12 destination, bit 2 destination mode; data bits 7:0 vector,
    // 10:8 delivery mode, 15 trigger mode (SDM Vol. 3 §11.11).
    deliver_interrupt(static_cast<std::uint8_t>(m.address >> 12), (m.address & 4) != 0,
                      static_cast<std::uint8_t>(m.data), (m.data & 0x8000) != 0, (m.data >> 8) & 7);
}

void SoftVm::ipi(SoftLapic& from, std::uint32_t icr_high, std::uint32_t icr_low) {
    const std::uint32_t mode = (icr_low >> 8) & 7;
    if (mode == 5 && (icr_low & (1u << 14)) == 0) {
        return;  // INIT level de-assert: no action on xAPIC (SDM Vol. 3 §11.6.1)
    }
    deliver_interrupt(static_cast<std::uint8_t>(icr_high >> 24), (icr_low & (1u << 11)) != 0,
                      static_cast<std::uint8_t>(icr_low), false, mode, &from, (icr_low >> 18) & 3);
}

Result<void> SoftVm::map_memory(const MemorySlot& slot) {
    return m_memory.map(slot);
}

Result<std::unique_ptr<Vcpu>> SoftVm::create_vcpu(std::uint32_t id) {
    return std::unique_ptr<Vcpu>(std::make_unique<SoftVcpu>(*this, id));
}

namespace {

class SoftIrqLine final : public IrqLine {
public:
    SoftIrqLine(SoftIoApic& ioapic, SoftPic& pic, std::uint32_t pin)
        : m_ioapic(ioapic), m_pic(pic), m_pin(pin) {}
    void set_level(bool high) override {
        m_ioapic.set_level(m_pin, high);
        m_pic.set_irq(m_pin, high);  // GSIs 0-15 (not 2) reach the 8259 pair too
    }

private:
    SoftIoApic& m_ioapic;
    SoftPic& m_pic;
    std::uint32_t m_pin;
};

class SoftMsiRoute final : public MsiRoute {
public:
    explicit SoftMsiRoute(SoftVm& vm) : m_vm(vm) {}
    Result<void> set_message(const MsiMessage& message) override {
        std::lock_guard lock(m_mutex);
        m_message = message;
        return ok();
    }
    void trigger() override {
        MsiMessage m;
        {
            std::lock_guard lock(m_mutex);
            m = m_message;
        }
        m_vm.deliver_msi(m);
    }

private:
    SoftVm& m_vm;
    std::mutex m_mutex;
    MsiMessage m_message;
};

}  // namespace

Result<std::unique_ptr<IrqLine>> SoftVm::create_irq_line(std::uint32_t gsi) {
    if (!m_ioapic) {
        return Error("interrupt lines need the irqchip (VmOptions::irqchip)");
    }
    if (gsi >= SoftIoApic::kPins) {
        return Error(
            fmt::format("GSI {} out of range (IOAPIC has {} pins)", gsi, SoftIoApic::kPins));
    }
    return std::unique_ptr<IrqLine>(std::make_unique<SoftIrqLine>(*m_ioapic, *m_pic, gsi));
}

Result<std::unique_ptr<MsiRoute>> SoftVm::create_msi_route() {
    if (!m_ioapic) {
        return Error("MSI routes need the irqchip (VmOptions::irqchip)");
    }
    return std::unique_ptr<MsiRoute>(std::make_unique<SoftMsiRoute>(*this));
}

Result<void> SoftVm::get_dirty_log(std::uint32_t slot, std::span<std::uint64_t> bitmap) {
    return m_memory.get_dirty_log(slot, bitmap);
}

Result<void> SoftVm::set_dirty_logging(std::uint32_t slot, bool on) {
    return m_memory.set_dirty_logging(slot, on);
}

Result<std::uint64_t> SoftVm::get_clock() {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(monotonic_ns()) +
                                      m_clock_offset_ns.load(std::memory_order_relaxed));
}

Result<void> SoftVm::set_clock(std::uint64_t ns) {
    m_clock_offset_ns.store(
        static_cast<std::int64_t>(ns) - static_cast<std::int64_t>(monotonic_ns()),
        std::memory_order_relaxed);
    m_kvm_clock.clock_set();  // each vCPU's kvmclock structure follows before it runs again
    return ok();
}

Result<VmPlatformState> SoftVm::save_platform_state() {
    VmPlatformState s;
    s.accelerator = "soft";
    s.irqchip = m_ioapic != nullptr;
    if (m_ioapic) {
        s.ioapic = m_ioapic->save();
        s.pit = m_pit->save();
        s.pic_master = m_pic->save(0);
        s.pic_slave = m_pic->save(1);
    }
    return s;
}

Result<void> SoftVm::restore_platform_state(const VmPlatformState& state) {
    if (state.accelerator != "soft") {
        return Error(
            fmt::format("soft: cannot restore platform state saved by '{}'", state.accelerator));
    }
    if (state.irqchip != (m_ioapic != nullptr)) {
        return Error("soft: saved state and VM differ in having an irqchip");
    }
    if (m_ioapic && !m_ioapic->restore(state.ioapic)) {
        return Error("soft: bad IOAPIC state");
    }
    if (m_pit && !m_pit->restore(state.pit)) {
        return Error("soft: bad PIT state");
    }
    if (m_pic && (!m_pic->restore(0, state.pic_master) || !m_pic->restore(1, state.pic_slave))) {
        return Error("soft: bad 8259 state");
    }
    return ok();
}

Result<void> SoftVm::add_ioevent(const IoEventAddress& where, int eventfd) {
    if (where.length != 1 && where.length != 2 && where.length != 4 && where.length != 8) {
        return Error(fmt::format("ioeventfd: bad length {}", where.length));
    }
    if (eventfd < 0) {
        return Error("ioeventfd: bad descriptor");
    }
    std::lock_guard lock(m_ioevent_mutex);
    for (const auto& e : m_ioevents) {
        if (e.where == where) {
            return Error(fmt::format("ioeventfd: {:#x} already registered", where.address));
        }
    }
    m_ioevents.push_back({where, eventfd});
    m_have_ioevents = true;
    return ok();
}

Result<void> SoftVm::remove_ioevent(const IoEventAddress& where, int eventfd) {
    std::lock_guard lock(m_ioevent_mutex);
    const auto n = std::erase_if(
        m_ioevents, [&](const IoEvent& e) { return e.where == where && e.fd == eventfd; });
    m_have_ioevents = !m_ioevents.empty();
    if (n == 0) {
        return Error(fmt::format("ioeventfd: {:#x} not registered", where.address));
    }
    return ok();
}

bool SoftVm::ioevent_write(bool mmio, std::uint64_t address, std::span<const std::uint8_t> data) {
    if (!m_have_ioevents.load(std::memory_order_relaxed)) {
        return false;
    }
    std::uint64_t value = 0;
    std::memcpy(&value, data.data(), std::min<std::size_t>(data.size(), 8));
    std::lock_guard lock(m_ioevent_mutex);
    for (const auto& e : m_ioevents) {
        if (e.where.mmio != mmio || e.where.address != address || e.where.length != data.size()) {
            continue;
        }
        if (e.where.datamatch && *e.where.datamatch != value) {
            continue;
        }
        const std::uint64_t one = 1;
        // A full counter (EAGAIN) still leaves the fd readable: nothing is lost.
        if (::write(e.fd, &one, sizeof(one)) < 0) {
            // EAGAIN: the counter is full, the fd stays readable; nothing is lost.
        }
        return true;
    }
    return false;
}

}  // namespace vireo::soft
